// Convolutions: the entry points MindSpore calls (ops.Custom, func_type="aot"; kernels/ops.py) and the rules
// that pick a path per call.
//
// Why: MindSpore 2.10's oneDNN runs NCHW convolutions on these CPUs at 15-90 GFLOP/s (capped at AVX2; its
// AVX-512 path is a reference loop), PyTorch's at 45-150; its ReverseV2, StridedSlice and ReduceSum around
// them cost tens of milliseconds more per call (bench/conv_kernels.py).
//
// Conv2dFwd(x[N,C,H,W], w[O,C,K,K], b[O], pad[p + 1], stride[s]) -> y[N,O,OH,OW], OH = (H+2p-K)/s + 1
//   square kernel, zero padding p <= K-1 on all sides, bias added (pass zeros for none).
// Conv2dDgrad(dy, w, x, pad, stride) -> dx: the input gradient (x for its shape).
// Conv2dWgrad(dy, x, w, pad, stride) -> dw: the weight gradient (w for its shape).
// ConvTransposeFwd(x, w, b, pad, stride, outpad) -> y: PyTorch's ConvTranspose2d (the input gradient of
//   the matching convolution, plus the bias).
// BiasGrad(dy) -> db.
// The padding p and the stride s are the lengths of int32 arguments (shape inference sees shapes only);
// their values are not read.
//
// Three implementations, chosen per call and per part (use_winograd, use_gemm):
// - direct (conv_direct.cc): GCC vector extensions; the forward, the input gradient and (from 9 outputs
//   over many pixels) the weight gradient blocked like a GEMM over the padded input read in place
//   (WideConv), strided convolutions split into stride-1 phases; else a weight gradient of a few outputs
//   x K taps over 16 pixels;
// - im2col + SGEMM (conv_gemm.cc): with the OpenBLAS that NumPy's wheel carries (kernels/ops.py passes its
//   path in FACEGAN_BLAS_LIB; each call single-threaded inside our own pool). Best for weight gradients at
//   large fan-in, 1x1 convolutions and large fan-in over few pixels, and the only path for what the direct
//   kernels lack (direct_covers). FACEGAN_NATIVE_GEMM=0 / 1 forces the direct / GEMM path where both exist;
// - Winograd F(4x4, 3x3) (winograd.cc) for 3x3 stride-1 convolutions with enough channels and pixels (the
//   residual blocks of CycleGAN and U-GAT-IT). FACEGAN_NATIVE_WINOGRAD=0 / 1 forces it off / on.
// The crossovers below were measured on the raw kernels with bench/raw_conv.py (ms, one path against the
// other, batch 1 unless said).
#include "kernels.h"

// Which convolutions go through SGEMM where the direct kernels cover them (bench/conv_kernels.py and
// bench/raw_conv.py):
// - forward (and the stride-1 input gradient, which is a forward on dy): the blocked direct kernel, except
//   with fewer than kGemmMaxPositions output pixels, fan-in C*K*K >= 1024 and >= 32 outputs (the deepest
//   discriminator layers: 1024 -> 2048 4x4 at 7 x 7 output pixels 52-66 ms GEMM against 77-84 direct,
//   whose wide positions and packed weights cost more than the arithmetic there);
// - the input gradient of a stride-1 4x4 convolution into >= kDgrad4GemmMinOut channels with fan-in O*K*K
//   >= 1024: SGEMM (ms direct / SGEMM: 128 -> 256 at 31 x 31 px 10.0 / 5.9, 256 -> 512
//   at 31 x 31 38.8 / 22.9, 512 -> 1024 at 7 x 7 56.5 / 7.9; 64 -> 128 at 63 x 63 5.9 / 5.8; 32 -> 64 at
//   127 x 127 5.9 / 8.1);
// - the input gradient of a strided convolution: by phases on the direct kernel from kPhaseDgradMinPixels
//   input pixels on (below, each phase has too few positions to share out: 256 -> 512 4x4 stride 2 at
//   18 x 18 px 7.8 ms against 3.0 SGEMM; 64 -> 128 4x4 at 66 x 66 2.3 against 2.8);
// - the weight gradient: the blocked direct kernel with > 8 outputs over >= kBlockedWgradMinPositions
//   output pixels (conv_wgrad_direct); else SGEMM at fan-in >= 1024 with >= 16 outputs (64 ->
//   32 3x3 at 256 px 28.9 / 32.6 ms 4-output direct kernel against 38.5 / 34.6 GEMM in two runs);
// - 1x1 convolutions (the direct kernels have none at stride > 1). At stride 1 the input is its own im2col
//   matrix (`pointwise`): SGEMM reads it and writes the output in place. Ms, direct / SGEMM,
//   at 256 px, batch 2: 32 -> 3 forward 2.0-2.6 / 1.15, the input gradient of 3 -> 32 2.7-4.1 / 1.3-1.5;
//   32 -> 32 weight gradient 6.8 / 3.7, 64 -> 256 at 64 px forward 2.5 / 1.7.
static const int64_t kGemmMaxPositions = 128, kGemmMinFanIn = 1024;
static const int64_t kWgradGemmMinFanIn = 1024, kWgradGemmMinOut = 16, kBlockedWgradMinPositions = 2048;
static const int64_t kPhaseDgradMinPixels = 2048, kDgrad4GemmMinOut = 128;

// Whether a weight gradient takes the blocked direct kernel (conv_wgrad_direct): K > 1, more than 8
// outputs over at least kBlockedWgradMinPositions output pixels; at stride S > 1, ceil(K / S) = 2 taps
// per phase row (3x3 and 4x4 kernels at stride 2).
bool blocked_wgrad(int64_t K, int64_t S, int64_t O, int64_t OHW) {
  if (S > 1 && (K < S || phase_taps(K, S, 0) != 2)) return false;
  return K > 1 && O > 8 && OHW >= kBlockedWgradMinPositions;
}

// Whether the direct kernels can run this part of a convolution at all. Stride 1: K in {1, 3, 4, 7} (the
// weight gradient's 4-output kernel covers the rest). Stride S > 1 (K >= S): the forward's K*K taps, every
// output phase of the input gradient (ceil((K - a) / S) x ceil((K - b) / S) taps), the blocked weight gradient.
bool direct_covers(int64_t K, int64_t S, int64_t O, int64_t OHW, ConvPart part) {
  if (S == 1) return K == 1 || K == 3 || K == 4 || K == 7;
  if (K < S) return false;
  if (part == kForward) return wide_taps(K * K);
  if (part == kWeightGrad) return blocked_wgrad(K, S, O, OHW);
  for (int64_t a = 0; a < S; ++a)
    for (int64_t b = 0; b < S; ++b)
      if (!wide_taps(phase_taps(K, S, a) * phase_taps(K, S, b))) return false;
  return true;
}

// The path of one part of a convolution: fan-in and outputs as that part sees them (the input gradient:
// O*K*K and C), OHW its output pixels per sample.
bool use_gemm(int64_t fan_in, int64_t O, int64_t K, int64_t S, int64_t OHW, ConvPart part) {
  if (!Blas::get().ok()) return false;
  if (!direct_covers(K, S, O, OHW, part)) return true;
  const char* e = std::getenv("FACEGAN_NATIVE_GEMM");
  if (e && (e[0] == '0' || e[0] == '1')) return e[0] == '1';
  if (K == 1) return true;
  if (part == kWeightGrad)
    return !blocked_wgrad(K, S, O, OHW) && fan_in >= kWgradGemmMinFanIn && O >= kWgradGemmMinOut;
  if (part == kInputGrad && S > 1 && OHW < kPhaseDgradMinPixels) return true;
  if (part == kInputGrad && S == 1 && K == 4 && O >= kDgrad4GemmMinOut && fan_in >= kGemmMinFanIn) return true;
  return OHW < kGemmMaxPositions && fan_in >= kGemmMinFanIn && O >= kGemmMinOut;
}

// For kernels/ops.py's picks_gemm (ctypes): the path one part (0: forward, 1: weight gradient, 2: input
// gradient) of a convolution takes, OHW the output pixels per sample of that part.
FG_EXPORT int ConvUsesGemm(int64_t fan_in, int64_t O, int64_t K, int64_t S, int64_t OHW, int64_t part) {
  return use_gemm(fan_in, O, K, S, OHW, ConvPart(part)) ? 1 : 0;
}

// Whether the kernels take a convolution at all (kernels/ops.py asks before it swaps a layer): square
// kernel K, stride S, zero padding P <= K - 1, C input channels. Stride 1 with K in {1, 3, 4, 7} and fan-in
// up to kDirectMaxFanIn runs on the direct kernels (above it they are no faster than MindSpore's own
// convolution, bench/conv_kernels.py); everything else needs the SGEMM path: a BLAS, and
// FACEGAN_NATIVE_GEMM not 0. A transposed convolution is an input gradient: SGEMM, output_padding < S.
static const int64_t kDirectMaxFanIn = 128 * 9;

static bool gemm_allowed() {
  const char* e = std::getenv("FACEGAN_NATIVE_GEMM");
  return Blas::get().ok() && !(e && e[0] == '0');
}

FG_EXPORT int ConvSupported(int64_t C, int64_t K, int64_t S, int64_t P) {
  if (K < 1 || S < 1 || P < 0 || P > K - 1) return 0;
  if (S == 1 && (K == 1 || K == 3 || K == 4 || K == 7) && C * K * K <= kDirectMaxFanIn) return 1;
  return gemm_allowed() ? 1 : 0;
}

FG_EXPORT int ConvTransposeSupported(int64_t K, int64_t S, int64_t P, int64_t OP) {
  return (K >= 1 && S >= 1 && P >= 0 && P <= K - 1 && OP >= 0 && OP < S && gemm_allowed()) ? 1 : 0;
}

// y = conv(x, w) + b (b null: none), direct or GEMM by use_gemm.
void conv_fwd(const float* x, const float* w, const float* b, float* y, const Geo& g) {
  std::vector<float> zeros;
  if (!b) {
    zeros.assign((size_t)g.O, 0.f);
    b = zeros.data();
  }
  if (use_winograd(g.C, g.O, g.K, g.S, g.OHW()))
    wino::conv_fwd(x, w, b, y, g);
  else if (use_gemm(g.C * g.K * g.K, g.O, g.K, g.S, g.OHW(), kForward))
    conv_fwd_gemm(x, w, b, y, g);
  else
    conv_fwd_direct(x, w, b, y, g);
}

// The padding P and stride S arrive as the lengths (P + 1, S) of two int32 arguments. Without a BLAS only
// what the direct kernels cover runs (ConvSupported sends strided convolutions only when there is one).
bool geo_ok(const Geo& g, ConvPart part) {
  if (!(g.P <= g.K - 1 && g.S >= 1 && g.OH >= 1 && g.OW >= 1)) return false;
  const int64_t O = part == kInputGrad ? g.C : g.O, OHW = part == kInputGrad ? g.H * g.W : g.OHW();
  return Blas::get().ok() || direct_covers(g.K, g.S, O, OHW, part);
}

// Conv2dFwd(x[N,C,H,W], w[O,C,K,K], b[O], pad[p + 1], stride[s]) -> y[N,O,OH,OW].
FG_EXPORT int Conv2dFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                         void* stream, void* extra) {
  if (nparam != 6) return 1;
  const Geo g(shapes[0][0], shapes[0][1], shapes[0][2], shapes[0][3], shapes[1][0], shapes[1][2], shapes[3][0] - 1,
              shapes[4][0]);
  if (!geo_ok(g, kForward) || shapes[1][1] != g.C) return 1;
  conv_fwd((const float*)params[0], (const float*)params[1], (const float*)params[2], (float*)params[5], g);
  return 0;
}



// dx = the input gradient of conv(x, w) with geometry g, given dy. Where use_gemm picks SGEMM: w^T x dy,
// scattered back by col2im (1024 -> 2048 4x4 at 10 x 10 px: the flipped copy of its 134 MB weight alone took
// longer than the product). Else stride 1: the forward kernel on dy with the flipped, transposed weights
// and padding K-1-p (flipped here: MindSpore's ReverseV2 took 53 ms on a 512x256x4x4 weight); larger
// strides: conv_dgrad_phases.
void conv_dgrad(const float* dy, const float* w, float* dx, const Geo& g) {
  const bool wino = use_winograd(g.O, g.C, g.K, g.S, g.H * g.W);   // (taken by conv_fwd below)
  if (!wino && use_gemm(g.O * g.K * g.K, g.C, g.K, g.S, g.H * g.W, kInputGrad)) {   // (w^T read in place)
    conv_dgrad_gemm(dy, w, dx, g);
    return;
  }
  if (g.S > 1) {
    conv_dgrad_phases(dy, w, dx, g);
    return;
  }
  const int64_t C = g.C, O = g.O, K = g.K;
  std::vector<float> wt((size_t)(C * O * K * K));
  parallel_for(C, [&](int64_t c) {
    for (int64_t o = 0; o < O; ++o)
      for (int64_t k = 0; k < K * K; ++k) wt[(size_t)((c * O + o) * K * K + k)] = w[(o * C + c) * K * K + K * K - 1 - k];
  });
  conv_fwd(dy, wt.data(), nullptr, dx, Geo(g.N, O, g.OH, g.OW, C, K, K - 1 - g.P, 1));
}

// Conv2dDgrad(dy[N,O,OH,OW], w[O,C,K,K], x[N,C,H,W], pad, stride) -> dx[N,C,H,W] (x for its shape only).
FG_EXPORT int Conv2dDgrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                           void* stream, void* extra) {
  if (nparam != 6) return 1;
  const Geo g(shapes[2][0], shapes[2][1], shapes[2][2], shapes[2][3], shapes[1][0], shapes[1][2], shapes[3][0] - 1,
              shapes[4][0]);
  if (!geo_ok(g, kInputGrad) || shapes[0][1] != g.O || shapes[0][2] != g.OH || shapes[0][3] != g.OW) return 1;
  conv_dgrad((const float*)params[0], (const float*)params[1], (float*)params[5], g);
  return 0;
}

// ConvTransposeFwd(x[N,Ci,H,W], w[Ci,Co,K,K], b[Co], pad[p + 1], stride[s], outpad[op + 1]) ->
//   y[N,Co,(H-1)s-2p+K+op, ...]: PyTorch's ConvTranspose2d (weights in its layout), i.e. the input gradient
//   of a convolution Co -> Ci with the same kernel, padding and stride, evaluated at x, plus the bias.
FG_EXPORT int ConvTransposeFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                                void* stream, void* extra) {
  if (nparam != 7) return 1;
  const int64_t N = shapes[0][0], Ci = shapes[0][1], H = shapes[0][2], W = shapes[0][3];
  const int64_t Co = shapes[1][1], K = shapes[1][2], P = shapes[3][0] - 1, S = shapes[4][0], OP = shapes[5][0] - 1;
  if (shapes[1][0] != Ci || OP >= S) return 1;
  const Geo g(N, Co, (H - 1) * S - 2 * P + K + OP, (W - 1) * S - 2 * P + K + OP, Ci, K, P, S);
  if (!geo_ok(g, kInputGrad) || g.OH != H || g.OW != W) return 1;
  float* y = (float*)params[6];
  const float* b = (const float*)params[2];
  conv_dgrad((const float*)params[0], (const float*)params[1], y, g);
  const int64_t M = g.H * g.W;
  parallel_for(N * Co, [&](int64_t nc) {
    const float bias = b[nc % Co];
    for (float* v = y + nc * M; v < y + (nc + 1) * M; ++v) *v += bias;
  });
  return 0;
}

// BiasGrad(dy[N,O,H,W]) -> db[O] = sum of dy over samples and pixels. (MindSpore's ReduceSum over axes
// (0, 2, 3) took 4 ms per call on a 64x256x256 gradient.)
FG_EXPORT int BiasGrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
                        void* extra) {
  if (nparam != 2 || ndims[0] != 4) return 1;
  const float* dy = (const float*)params[0];
  float* db = (float*)params[1];
  const int64_t N = shapes[0][0], O = shapes[0][1], M = shapes[0][2] * shapes[0][3];
  parallel_for(O, [&](int64_t o) {
    v16 acc = bc(0.f);
    float tail = 0.f;
    for (int64_t n = 0; n < N; ++n) {
      const float* r = dy + (n * O + o) * M;
      int64_t i = 0;
      for (; i + 16 <= M; i += 16) acc += ld(r + i);
      for (; i < M; ++i) tail += r[i];
    }
    db[o] = hsum(acc) + tail;
  });
  return 0;
}

// dw = the weight gradient of conv(x, w) with geometry g, given dy: Winograd, SGEMM or direct as the rules
// pick. False for a kernel size the direct kernels lack (geo_ok has ruled that out where there is no BLAS).
bool conv_wgrad(const float* dy, const float* x, float* dw, const Geo& g) {
  const int64_t O = g.O, OH = g.OH, OW = g.OW, C = g.C, K = g.K, S = g.S;
  if (use_winograd(C, O, K, S, OH * OW)) {
    wino::conv_wgrad(dy, x, dw, g);
    return true;
  }
  if (use_gemm(C * K * K, O, K, S, OH * OW, kWeightGrad)) {
    conv_wgrad_gemm(dy, x, dw, g);
    return true;
  }
  return conv_wgrad_by_direct(dy, x, dw, g);
}

// Conv2dWgrad(dy[N,O,OH,OW], x[N,C,H,W], w[O,C,K,K], pad, stride) -> dw[O,C,K,K] (w for its shape only).
FG_EXPORT int Conv2dWgrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                           void* stream, void* extra) {
  if (nparam != 6) return 1;
  const Geo g(shapes[1][0], shapes[1][1], shapes[1][2], shapes[1][3], shapes[2][0], shapes[2][2], shapes[3][0] - 1,
              shapes[4][0]);
  if (!geo_ok(g, kWeightGrad) || shapes[0][1] != g.O || shapes[0][2] != g.OH || shapes[0][3] != g.OW) return 1;
  return conv_wgrad((const float*)params[0], (const float*)params[1], (float*)params[5], g) ? 0 : 1;
}
