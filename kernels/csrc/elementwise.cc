#include "kernels.h"

// ---------------------------------------------------------------------------------------------------
// PadUp(x[N,C,H,W], pad[p + 1], up[u]) -> y[N,C,uH+2p,uW+2p]: nearest upsampling by u (1 or 2), then
//   reflection padding p (PyTorch's ReflectionPad2d: the edge row is not repeated). p and u are the
//   lengths of the two last arguments (shape inference sees shapes only).
// PadUpGrad(dy[N,C,uH+2p,uW+2p], x[N,C,H,W], pad, up) -> dx: every dy element added to the x element it
//   was copied from (x is passed for its shape only).
FG_EXPORT int PadUp(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
                     void* extra) {
  if (nparam != 4) return 1;
  const float* x = (const float*)params[0];
  float* y = (float*)params[3];
  const int64_t N = shapes[0][0], C = shapes[0][1], H = shapes[0][2], W = shapes[0][3];
  const int64_t P = shapes[1][0] - 1, U = shapes[2][0];
  const int64_t Ho = U * H + 2 * P, Wo = U * W + 2 * P;
  if (P >= U * H || P >= U * W) return 1;   // PyTorch's limit: padding smaller than the (upsampled) size
  std::vector<int64_t> ri, ci;
  source_index(Ho, H, P, U, ri);
  source_index(Wo, W, P, U, ci);
  parallel_for(N * C, [&](int64_t nc) {
    const float* xs = x + nc * H * W;
    float* ys = y + nc * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const float* xr = xs + ri[(size_t)oh] * W;
      float* yr = ys + oh * Wo;
      if (U == 1) {
        memcpy(yr + P, xr, W * sizeof(float));
      } else {
        for (int64_t j = 0; j < W; ++j) yr[P + 2 * j] = yr[P + 2 * j + 1] = xr[j];
      }
      fill_edges(yr, xr, ci, P, Wo);
    }
  });
  return 0;
}

FG_EXPORT int PadUpGrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                         void* stream, void* extra) {
  if (nparam != 5) return 1;
  const float* dy = (const float*)params[0];
  float* dx = (float*)params[4];
  const int64_t N = shapes[1][0], C = shapes[1][1], H = shapes[1][2], W = shapes[1][3];
  const int64_t P = shapes[2][0] - 1, U = shapes[3][0];
  const int64_t Ho = U * H + 2 * P, Wo = U * W + 2 * P;
  if (shapes[0][2] != Ho || shapes[0][3] != Wo) return 1;
  std::vector<int64_t> ri, ci;
  source_index(Ho, H, P, U, ri);
  source_index(Wo, W, P, U, ci);
  parallel_for(N * C, [&](int64_t nc) {
    const float* gs = dy + nc * Ho * Wo;
    float* ds = dx + nc * H * W;
    std::fill(ds, ds + H * W, 0.f);
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const float* gr = gs + oh * Wo;
      float* dr = ds + ri[(size_t)oh] * W;
      if (U == 1) {
        for (int64_t j = 0; j < W; ++j) dr[j] += gr[P + j];
      } else {
        for (int64_t j = 0; j < W; ++j) dr[j] += gr[P + 2 * j] + gr[P + 2 * j + 1];
      }
      fold_edges(dr, gr, ci, P, Wo);
    }
  });
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// AvgPool2(x[N,C,H,W]) -> y[N,C,H/2,W/2]: 2 x 2 average pooling with stride 2 and no padding (PyTorch's
//   AvgPool2d(2, 2): an odd last row or column is dropped). photo2cartoon's hourglass pools this way.
// AvgPool2Grad(dy[N,C,H/2,W/2], x) -> dx: each dy element / 4 into its four sources, 0 in a dropped row or
//   column (x is passed for its shape only).
FG_EXPORT int AvgPool2(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
                        void* extra) {
  if (nparam != 2 || ndims[0] != 4) return 1;
  const float* x = (const float*)params[0];
  float* y = (float*)params[1];
  const int64_t N = shapes[0][0], C = shapes[0][1], H = shapes[0][2], W = shapes[0][3];
  const int64_t Ho = H / 2, Wo = W / 2;
  parallel_for(N * C, [&](int64_t nc) {
    const float* xs = x + nc * H * W;
    float* ys = y + nc * Ho * Wo;
    for (int64_t i = 0; i < Ho; ++i) {
      const float* r0 = xs + 2 * i * W;
      const float* r1 = r0 + W;
      float* yr = ys + i * Wo;
      for (int64_t j = 0; j < Wo; ++j) yr[j] = ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1])) * 0.25f;
    }
  });
  return 0;
}

FG_EXPORT int AvgPool2Grad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                            void* stream, void* extra) {
  if (nparam != 3 || ndims[1] != 4) return 1;
  const float* dy = (const float*)params[0];
  float* dx = (float*)params[2];
  const int64_t N = shapes[1][0], C = shapes[1][1], H = shapes[1][2], W = shapes[1][3];
  const int64_t Ho = H / 2, Wo = W / 2;
  if (shapes[0][2] != Ho || shapes[0][3] != Wo) return 1;
  parallel_for(N * C, [&](int64_t nc) {
    const float* gs = dy + nc * Ho * Wo;
    float* ds = dx + nc * H * W;
    for (int64_t i = 0; i < Ho; ++i) {
      const float* gr = gs + i * Wo;
      float* d0 = ds + 2 * i * W;
      float* d1 = d0 + W;
      for (int64_t j = 0; j < Wo; ++j) {
        const float g = gr[j] * 0.25f;
        d0[2 * j] = d0[2 * j + 1] = d1[2 * j] = d1[2 * j + 1] = g;
      }
      if (W & 1) d0[W - 1] = d1[W - 1] = 0.f;
    }
    if (H & 1) std::fill(ds + (H - 1) * W, ds + H * W, 0.f);
  });
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// Leaky ReLU with PyTorch's semantics (slope on x <= 0, the gradient at 0 included):
// LeakyRelu(x, cfg[f32: slope]) -> y = x > 0 ? x : slope * x
// LeakyReluGrad(x, dy, cfg) -> dx = x > 0 ? dy : slope * dy. It is linear in dy, so its own gradient in dy is
//   LeakyReluGrad(x, G) and in x zero: the WGAN-GP critic's second-order gradient needs no other kernel.
// MindSpore's leaky_relu is maximum(slope * x, x), whose gradient is six ops (compare, select, and a
// division that splits ties) over the whole activation; for the critic's second order, more again.
static int leaky_relu(int nparam, void** params, int* ndims, int64_t** shapes, bool grad) {
  const int n_in = grad ? 3 : 2;
  if (nparam != n_in + 1) return 1;
  int64_t n = 1;
  for (int d = 0; d < ndims[0]; ++d) n *= shapes[0][d];
  if (grad) {
    if (ndims[1] != ndims[0]) return 1;
    for (int d = 0; d < ndims[0]; ++d)
      if (shapes[1][d] != shapes[0][d]) return 1;
  }
  const float* x = (const float*)params[0];
  const float* v = (const float*)params[grad ? 1 : 0];
  const float slope = ((const float*)params[n_in - 1])[0];
  float* out = (float*)params[n_in];
  const int64_t chunk = 1 << 15;
  parallel_for((n + chunk - 1) / chunk, [&](int64_t c) {
    const int64_t lo = c * chunk, hi = std::min(n, lo + chunk);
    for (int64_t i = lo; i < hi; ++i) out[i] = x[i] > 0.f ? v[i] : slope * v[i];
  });
  return 0;
}

FG_EXPORT int LeakyRelu(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                         void* stream, void* extra) {
  return leaky_relu(nparam, params, ndims, shapes, false);
}

FG_EXPORT int LeakyReluGrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                             void* stream, void* extra) {
  return leaky_relu(nparam, params, ndims, shapes, true);
}
