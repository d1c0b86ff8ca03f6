// Experiment (bench/conv_kernels.py), not used by the library: a direct NCHW convolution for MindSpore's
// ops.Custom(func_type="aot") on CPU. Stride 1, zero padding (cfg[1]), any square kernel. Each task is
// (block of 8 output channels, output row); the row is computed 32 pixels at a time (two 16-float
// vectors) with 16 accumulators, looping over input channel, kernel row and kernel column, the weights
// broadcast from a copy laid out [block][c][kh][kw][8]. GCC vector extensions: -O3 -march=native picks
// AVX-512 where the CPU has it. Per call it re-lays the weights and copies the input into a zero-padded
// buffer (both are small next to the convolution on the shapes measured).
#include <cstdint>
#include <cstring>
#include <vector>
#include <algorithm>
typedef float v16 __attribute__((vector_size(64)));
static inline v16 ld(const float* p) { v16 v; memcpy(&v, p, 64); return v; }
static inline void st(float* p, v16 v) { memcpy(p, &v, 64); }
static inline v16 bc(float s) { return (v16){s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s}; }

extern "C" int ConvDirect(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                          void* stream, void* extra) {
  const float* x = (const float*)params[0];
  const float* w = (const float*)params[1];
  const int32_t* cfg = (const int32_t*)params[2];
  float* y = (float*)params[3];
  const int64_t N = shapes[0][0], C = shapes[0][1], H = shapes[0][2], W = shapes[0][3];
  const int64_t O = shapes[1][0], K = shapes[1][2];
  const int64_t P = cfg[1];
  const int64_t Hp = H + 2 * P, Wp = W + 2 * P + 32;   // slack so the last vector loads stay inside
  const int64_t OH = Hp - K + 1, OW = W + 2 * P - K + 1;
  const int64_t OB = (O + 7) / 8;
  std::vector<float> wt((size_t)OB * C * K * K * 8, 0.f);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < K * K; ++k)
        wt[(((o / 8) * C + c) * K * K + k) * 8 + o % 8] = w[(o * C + c) * K * K + k];
  std::vector<float> xp((size_t)C * Hp * Wp + 64, 0.f);
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * H * W;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        memcpy(&xp[(c * Hp + h + P) * Wp + P], xn + (c * H + h) * W, W * sizeof(float));
    float* yn = y + n * O * OH * OW;
#pragma omp parallel for num_threads(2) schedule(dynamic, 1) collapse(2)
    for (int64_t ob = 0; ob < OB; ++ob) {
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t nout = std::min<int64_t>(8, O - ob * 8);
        for (int64_t ow0 = 0; ow0 < OW; ow0 += 32) {
          v16 a0[8], a1[8];
          for (int o = 0; o < 8; ++o) { a0[o] = bc(0.f); a1[o] = bc(0.f); }
          const float* wb = &wt[(size_t)ob * C * K * K * 8];
          for (int64_t c = 0; c < C; ++c) {
            for (int64_t kh = 0; kh < K; ++kh) {
              const float* row = &xp[(c * Hp + oh + kh) * Wp + ow0];
              for (int64_t kw = 0; kw < K; ++kw, wb += 8) {
                const v16 v0 = ld(row + kw), v1 = ld(row + kw + 16);
#pragma GCC unroll 8
                for (int o = 0; o < 8; ++o) { const v16 b = bc(wb[o]); a0[o] += v0 * b; a1[o] += v1 * b; }
              }
            }
          }
          const int64_t rem = std::min<int64_t>(32, OW - ow0);
          for (int64_t o = 0; o < nout; ++o) {
            float* dst = yn + ((ob * 8 + o) * OH + oh) * OW + ow0;
            if (rem == 32) { st(dst, a0[o]); st(dst + 16, a1[o]); }
            else { float tmp[32]; st(tmp, a0[o]); st(tmp + 16, a1[o]); memcpy(dst, tmp, rem * sizeof(float)); }
          }
        }
      }
    }
  }
  return 0;
}
