#include "kernels.h"

// ---------------------------------------------------------------------------------------------------
// photo2cartoon's hourglass unit (ConvBlock with dim_in == dim_out == C, C a multiple of 4) as one op per
// direction:
//   x1 = conv3x3(nap(x), w1) (C/2 channels), x2 = conv3x3(nap(x1), w2) (C/4), x3 = conv3x3(nap(x2), w3) (C/4),
//   out = x + concat(x1, x2, x3),
// nap = instance norm -> ReLU -> reflection pad 1 (cfg as NormActPadFwd); the convolutions have no bias and
// no padding of their own and run by the same rules (Winograd, SGEMM, direct) as Conv2dFwd.
// ConvBlockFwd(x[N,C,H,W], w1[C/2,C,3,3], w2[C/4,C/2,3,3], w3[C/4,C/4,3,3], cfg) -> out[N,C,H,W],
//   cat[N,C,H,W] (concat(x1, x2, x3), for the backward).
// ConvBlockBwd(x, cat, dout, w1, w2, w3, cfg) -> dx, dw1, dw2, dw3: the padded activations recomputed from
//   x, x1 and x2; each slice of dout added to the gradient of the input it belongs to inside nap_bwd.
// The kernels and their order of additions are those of the separate ops (NormActPad, Conv2d, Concat, Add
// and their gradients), so the values are the same. What it saves: per block 7 MindSpore ops forward and
// about 14 backward, among them AddN, Concat and slices, which MindSpore runs on one thread.
struct BlockScratch {
  std::vector<float> a, da, t[2], x1, x2, g3;
};

static BlockScratch& block_scratch() {   // (one per thread, shared by both directions)
  thread_local BlockScratch s;
  return s;
}

static float* grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// Channels [c0, c0 + Cs) of the N samples of a C-channel tensor with planes of M floats: a pointer into it
// when N == 1, else a contiguous copy in buf.
static const float* channels(const float* t, int64_t N, int64_t C, int64_t c0, int64_t Cs, int64_t M,
                             std::vector<float>& buf) {
  if (N == 1) return t + c0 * M;
  float* d = grow(buf, (size_t)(N * Cs * M));
  parallel_for(N, [&](int64_t n) { memcpy(d + n * Cs * M, t + (n * C + c0) * M, Cs * M * sizeof(float)); });
  return d;
}

static bool conv_block_geo(int64_t** shapes, int* ndims, int64_t& N, int64_t& C, int64_t& H, int64_t& W) {
  if (ndims[0] != 4) return false;
  N = shapes[0][0]; C = shapes[0][1]; H = shapes[0][2]; W = shapes[0][3];
  if (C < 4 || C % 4 || H < 2 || W < 2) return false;
  const int64_t want[3][2] = {{C / 2, C}, {C / 4, C / 2}, {C / 4, C / 4}};
  for (int k = 0; k < 3; ++k) {
    const int64_t* s = shapes[1 + k];
    if (ndims[1 + k] != 4 || s[0] != want[k][0] || s[1] != want[k][1] || s[2] != 3 || s[3] != 3) return false;
    const Geo g(N, want[k][1], H + 2, W + 2, want[k][0], 3, 0, 1);
    if (!geo_ok(g, kForward) || !geo_ok(g, kInputGrad) || !geo_ok(g, kWeightGrad)) return false;
  }
  return true;
}

FG_EXPORT int ConvBlockFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                            void* stream, void* extra) {
  if (nparam != 7) return 1;
  int64_t N, C, H, W;
  if (!conv_block_geo(shapes, ndims, N, C, H, W)) return 1;
  const float* x = (const float*)params[0];
  const float* cfg = (const float*)params[4];
  float* out = (float*)params[5];
  float* cat = (float*)params[6];
  const int64_t M = H * W, Cs[3] = {C / 2, C / 4, C / 4}, c0[3] = {0, C / 2, 3 * C / 4};
  BlockScratch& s = block_scratch();
  float* a = grow(s.a, (size_t)(N * C * (H + 2) * (W + 2)));
  const float* in = x;
  int64_t cin = C;
  for (int k = 0; k < 3; ++k) {
    nap_fwd(in, N, cin, H, W, 1, cfg, a);
    float* y = N == 1 ? cat + c0[k] * M : grow(s.t[k % 2], (size_t)(N * Cs[k] * M));
    conv_fwd(a, (const float*)params[1 + k], nullptr, y, Geo(N, cin, H + 2, W + 2, Cs[k], 3, 0, 1));
    if (N > 1)
      parallel_for(N, [&](int64_t n) { memcpy(cat + (n * C + c0[k]) * M, y + n * Cs[k] * M, Cs[k] * M * sizeof(float)); });
    in = y;
    cin = Cs[k];
  }
  parallel_for(N * C, [&](int64_t r) {
    const float* xs = x + r * M;
    const float* cs = cat + r * M;
    float* os = out + r * M;
    for (int64_t i = 0; i < M; ++i) os[i] = xs[i] + cs[i];
  });
  return 0;
}

FG_EXPORT int ConvBlockBwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                            void* stream, void* extra) {
  if (nparam != 11) return 1;
  int64_t N, C, H, W;
  int nd[4] = {ndims[0], ndims[3], ndims[4], ndims[5]};
  int64_t* sh[4] = {shapes[0], shapes[3], shapes[4], shapes[5]};
  if (!conv_block_geo(sh, nd, N, C, H, W)) return 1;
  for (int i = 1; i <= 2; ++i)
    if (ndims[i] != 4 || !std::equal(shapes[i], shapes[i] + 4, shapes[0])) return 1;
  const float* x = (const float*)params[0];
  const float* cat = (const float*)params[1];
  const float* dout = (const float*)params[2];
  const float* cfg = (const float*)params[6];
  float* dx = (float*)params[7];
  const int64_t M = H * W, Cs[3] = {C / 2, C / 4, C / 4}, Cin[3] = {C, C / 2, C / 4};
  BlockScratch& s = block_scratch();
  const size_t padded = (size_t)(N * C * (H + 2) * (W + 2));
  float* a = grow(s.a, padded);
  float* da = grow(s.da, padded);
  const float* in[3] = {x, channels(cat, N, C, 0, C / 2, M, s.x1), channels(cat, N, C, C / 2, C / 4, M, s.x2)};
  // dout's slice added to the gradient of each unit's input: x1's (channels 0..C/2) to unit 2's, x2's
  // (C/2..3C/4) to unit 3's, and all of it (the residual) to x's.
  const int64_t add_at[3] = {0, 0, C / 2};
  const float* g = channels(dout, N, C, 3 * C / 4, C / 4, M, s.g3);
  for (int k = 2; k >= 0; --k) {
    const Geo gk(N, Cin[k], H + 2, W + 2, Cs[k], 3, 0, 1);
    nap_fwd(in[k], N, Cin[k], H, W, 1, cfg, a);
    if (!conv_wgrad(g, a, (float*)params[8 + k], gk)) return 1;
    conv_dgrad(g, (const float*)params[3 + k], da, gk);
    float* gin = k == 0 ? dx : grow(s.t[k % 2], (size_t)(N * Cin[k] * M));
    nap_bwd(in[k], a, da, N, Cin[k], H, W, 1, cfg, gin, dout + add_at[k] * M, C * M);
    g = gin;
  }
  return 0;
}
