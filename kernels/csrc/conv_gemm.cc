// Convolutions as im2col + SGEMM, with the OpenBLAS found at run time (Blas in kernels.h): best for
// weight gradients at large fan-in, 1x1 convolutions and large fan-in over few pixels, and the only path for
// what the direct kernels lack (other kernel sizes and strides). Below 256 output pixels per sample the
// samples of a batch are folded side by side into one matrix (fold_samples).
#include "kernels.h"

// Pixels per im2col block of all C*K*K rows: whole 64-pixel multiples, at least 256 (fewer pixels per
// call and SGEMM spends its time re-packing the weights).
static int64_t gemm_tile(int64_t R, int64_t OHW) {
  const int64_t t = std::max<int64_t>(256, kBlockFloats / R / 64 * 64);
  return std::min(t, OHW);
}

// gemm_tile, made smaller (whole 64-pixel multiples, at least 256) where N samples of OHW pixels would
// otherwise give fewer than two tasks per thread (128 -> 128 1x1 at 64 x 64 px, batch 1: one block).
static int64_t pixel_tile(int64_t R, int64_t OHW, int64_t N) {
  const int64_t t = gemm_tile(R, OHW), want = (2 * pool_threads() + N - 1) / N;
  if ((OHW + t - 1) / t >= want) return t;
  return std::min(OHW, std::max<int64_t>(256, (OHW + want - 1) / want + 63) / 64 * 64);
}


// A 1x1 convolution at stride 1 (so without padding): x[n] is already its own im2col matrix [C, H*W].
static bool pointwise(const Geo& g) { return g.K == 1 && g.S == 1 && g.P == 0; }

// col[r - r0, j] = x[c, oh*S + kh - P, ow*S + kw - P] (zero outside) for the unrolled rows r = (c, kh, kw)
// in [r0, r1) and the output pixels p0 + j = (oh, ow), j < np. x is one sample.
static void im2col(const float* x, const Geo& g, int64_t r0, int64_t r1, int64_t p0, int64_t np, float* col,
                   int64_t ldc = 0) {
  if (ldc == 0) ldc = np;
  const int64_t K = g.K, S = g.S, P = g.P, H = g.H, W = g.W, OW = g.OW;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t c = r / (K * K), kh = r / K % K, kw = r % K;
    float* dst = col + (r - r0) * ldc;
    for (int64_t j = 0, p = p0; j < np;) {
      const int64_t oh = p / OW, ow = p % OW, run = std::min(np - j, OW - ow);
      const int64_t ih = oh * S + kh - P, iw0 = ow * S + kw - P;
      if (ih < 0 || ih >= H) {
        std::fill(dst + j, dst + j + run, 0.f);
      } else if (S == 1) {
        const int64_t lo = std::min(run, std::max<int64_t>(0, -iw0));
        const int64_t hi = std::max(lo, std::min(run, W - iw0));
        std::fill(dst + j, dst + j + lo, 0.f);
        memcpy(dst + j + lo, x + (c * H + ih) * W + iw0 + lo, (hi - lo) * sizeof(float));
        std::fill(dst + j + hi, dst + j + run, 0.f);
      } else {
        const float* src = x + (c * H + ih) * W;
        for (int64_t t = 0; t < run; ++t) {
          const int64_t iw = iw0 + t * S;
          dst[j + t] = (iw >= 0 && iw < W) ? src[iw] : 0.f;
        }
      }
      j += run;
      p += run;
    }
  }
}

// The adjoint of im2col over all pixels: dx[c, oh*S + kh - P, ow*S + kw - P] += col[r - r0, oh*OW + ow].
static void col2im_add(const float* col, const Geo& g, int64_t r0, int64_t r1, float* dx, int64_t ldc = 0) {
  const int64_t K = g.K, S = g.S, P = g.P, H = g.H, W = g.W, OH = g.OH, OW = g.OW;
  if (ldc == 0) ldc = OH * OW;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t c = r / (K * K), kh = r / K % K, kw = r % K;
    const float* src = col + (r - r0) * ldc;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t ih = oh * S + kh - P;
      if (ih < 0 || ih >= H) continue;
      float* row = dx + (c * H + ih) * W;
      const float* s = src + oh * OW;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t iw = ow * S + kw - P;
        if (iw >= 0 && iw < W) row[iw] += s[ow];
      }
    }
  }
}

// The rows [r0, r0 + nr) x pixels [p0, p0 + np) of sample x's im2col matrix, for SGEMM: a pointwise
// convolution's x itself (row stride ld = OHW, nothing copied), else im2col into `col` (ld = np).
static const float* im2col_rows(const float* x, const Geo& g, int64_t r0, int64_t nr, int64_t p0, int64_t np,
                                std::vector<float>& col, int64_t& ld) {
  if (pointwise(g)) {
    ld = g.OHW();
    return x + r0 * ld + p0;
  }
  col.resize((size_t)(nr * np));
  im2col(x, g, r0, r0 + nr, p0, np, col.data());
  ld = np;
  return col.data();
}

// Sample folding. Below kFoldMaxPositions output pixels per sample, one SGEMM per sample has too few
// columns: it re-reads the whole weight matrix (and, for the weight gradient, re-writes dw) for every
// sample, and the deep layers of a batch-32 critic (512 -> 1024 4x4 at 4 x 4 px: 32 MB of weights, 16
// columns) become memory-bound. Folded, the im2col matrices (or dy) of nb samples sit side by side, so each
// SGEMM has nb * OHW >= kFoldColumns columns and the weights are read once per group of samples.
// FACEGAN_NATIVE_FOLD=0 turns it off (to compare).
static const int64_t kFoldMaxPositions = 256, kFoldColumns = 512;

static int64_t fold_samples(const Geo& g) {
  const char* e = std::getenv("FACEGAN_NATIVE_FOLD");
  if ((e && e[0] == '0') || g.N == 1 || g.OHW() >= kFoldMaxPositions) return 1;
  return std::min(g.N, (kFoldColumns + g.OHW() - 1) / g.OHW());
}

// dyg[o, s*OHW + p] = dy[n0 + s, o, p] for the ns samples of a group.
static void gather_samples(const float* dy, int64_t n0, int64_t ns, int64_t O, int64_t OHW, float* dyg) {
  parallel_for(O, [&](int64_t o) {
    for (int64_t s = 0; s < ns; ++s)
      memcpy(dyg + (o * ns + s) * OHW, dy + ((n0 + s) * O + o) * OHW, OHW * sizeof(float));
  });
}

// Runs body(n0, ns, cols, dyg) for each group of up to nb samples, dyg holding their dy side by side.
template <class F>
static void each_sample_group(const float* dy, const Geo& g, int64_t nb, F&& body) {
  const int64_t OHW = g.OHW();
  FloatBuf dyg((size_t)(g.O * nb * OHW));
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t ns = std::min(nb, g.N - n0);
    gather_samples(dy, n0, ns, g.O, OHW, dyg.data());
    body(n0, ns, ns * OHW, (const float*)dyg.data());
  }
}

// Blocks of whole 16s of `n` rows, about `per_thread` per thread.
static int64_t row_block(int64_t n, int64_t per_thread) {
  const int64_t want = per_thread * pool_threads();
  return std::max<int64_t>(16, ((n + want - 1) / want + 15) / 16 * 16);
}

static void conv_fwd_folded(const float* x, const float* w, const float* b, float* y, const Geo& g, int64_t nb) {
  const int64_t OHW = g.OHW(), R = g.R(), O = g.O, CHW = g.C * g.H * g.W;
  const Blas& blas = Blas::get();
  FloatBuf col((size_t)(R * nb * OHW)), out((size_t)(O * nb * OHW));
  const int64_t ob = row_block(O, 2), oblocks = (O + ob - 1) / ob, rb = 64, rblocks = (R + rb - 1) / rb;
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t ns = std::min(nb, g.N - n0), cols = ns * OHW;
    parallel_for(rblocks * ns, [&](int64_t t) {
      const int64_t s = t % ns, r0 = t / ns * rb;
      im2col(x + (n0 + s) * CHW, g, r0, std::min(R, r0 + rb), 0, OHW, col.data() + r0 * cols + s * OHW, cols);
    });
    parallel_for(oblocks, [&](int64_t blk) {
      const int64_t o0 = blk * ob, no = std::min(ob, O - o0);
      blas.gemm(false, false, no, cols, R, w + o0 * R, R, col.data(), cols, 0.f, out.data() + o0 * cols, cols);
      for (int64_t s = 0; s < ns; ++s)
        for (int64_t o = o0; o < o0 + no; ++o) {
          const float* src = out.data() + o * cols + s * OHW;
          float* dst = y + ((n0 + s) * O + o) * OHW;
          for (int64_t p = 0; p < OHW; ++p) dst[p] = src[p] + b[o];
        }
    });
  }
}

// dx[n] = col2im(w^T dy[n]) for a group of samples at once, in blocks of input channels.
static void conv_dgrad_folded(const float* dy, const float* w, float* dx, const Geo& g, int64_t nb) {
  const int64_t OHW = g.OHW(), R = g.R(), O = g.O, KK = g.K * g.K, CHW = g.C * g.H * g.W, HW = g.H * g.W;
  const Blas& blas = Blas::get();
  const int64_t threads = pool_threads();
  int64_t cb = std::max<int64_t>(1, kBlockFloats / (KK * nb * OHW));
  cb = std::min(cb, std::max<int64_t>(1, (g.C + 2 * threads - 1) / (2 * threads)));
  const int64_t blocks = (g.C + cb - 1) / cb;
  each_sample_group(dy, g, nb, [&](int64_t n0, int64_t ns, int64_t cols, const float* dyg) {
    parallel_for(blocks, [&](int64_t blk) {
      thread_local std::vector<float> col;
      const int64_t c0 = blk * cb, nc = std::min(cb, g.C - c0), r0 = c0 * KK, nr = nc * KK;
      col.resize((size_t)(nr * cols));
      blas.gemm(true, false, nr, cols, O, w + r0, R, dyg, cols, 0.f, col.data(), cols);
      for (int64_t s = 0; s < ns; ++s) {
        float* dxn = dx + (n0 + s) * CHW;
        std::fill(dxn + c0 * HW, dxn + (c0 + nc) * HW, 0.f);
        col2im_add(col.data() + s * OHW, g, r0, r0 + nr, dxn, cols);
      }
    });
  });
}

// dw = sum over groups of dyg[O, cols] x col[C*K*K, cols]^T, each task owning a block of dw's columns.
static void conv_wgrad_folded(const float* dy, const float* x, float* dw, const Geo& g, int64_t nb) {
  const int64_t OHW = g.OHW(), R = g.R(), O = g.O, CHW = g.C * g.H * g.W;
  const Blas& blas = Blas::get();
  int64_t rb = std::max<int64_t>(16, kBlockFloats / (nb * OHW) / 16 * 16);
  rb = std::min(rb, row_block(R, 4));
  const int64_t blocks = (R + rb - 1) / rb;
  each_sample_group(dy, g, nb, [&](int64_t n0, int64_t ns, int64_t cols, const float* dyg) {
    parallel_for(blocks, [&](int64_t blk) {
      thread_local std::vector<float> col;
      const int64_t r0 = blk * rb, nr = std::min(rb, R - r0);
      col.resize((size_t)(nr * cols));
      for (int64_t s = 0; s < ns; ++s)
        im2col(x + (n0 + s) * CHW, g, r0, r0 + nr, 0, OHW, col.data() + s * OHW, cols);
      blas.gemm(false, true, O, nr, cols, dyg, cols, col.data(), cols, n0 ? 1.f : 0.f, dw + r0, R);
    });
  });
}

// y[n] = w[O, C*K*K] x col(x[n])[C*K*K, pixels] + b, in blocks of pixels.
// Where the samples' pixel blocks are fewer than two per thread (a deep layer at batch 1: 7 x 7 px, one
// block), the outputs are split too, each task building its block's im2col itself (a copy of R x np
// values beside an O x R x np product). 512 -> 1024 4x4 at 7 x 7 px, batch 1: 11.7 ms as one
// task, 7.1 ms in four (8.3 against 12.3 ms inside the U-GAT-IT step, instrumented build).
void conv_fwd_gemm(const float* x, const float* w, const float* b, float* y, const Geo& g) {
  if (const int64_t nb = fold_samples(g); nb > 1) return conv_fwd_folded(x, w, b, y, g, nb);
  const int64_t OHW = g.OHW(), R = g.R(), O = g.O, CHW = g.C * g.H * g.W;
  const int64_t T = pixel_tile(R, OHW, g.N), tiles = (OHW + T - 1) / T, want = 2 * pool_threads();
  const int64_t ob = g.N * tiles >= want ? O
                     : std::max<int64_t>(kGemmMinOut, (O * g.N * tiles / want + 15) / 16 * 16);
  const int64_t oblocks = (O + ob - 1) / ob;
  const Blas& blas = Blas::get();
  parallel_for(g.N * tiles * oblocks, [&](int64_t task) {
    thread_local std::vector<float> col;
    const int64_t o0 = task % oblocks * ob, no = std::min(ob, O - o0), pt = task / oblocks;
    const int64_t n = pt / tiles, p0 = pt % tiles * T, np = std::min(T, OHW - p0);
    int64_t ld;
    const float* cols = im2col_rows(x + n * CHW, g, 0, R, p0, np, col, ld);
    float* yn = y + (n * O + o0) * OHW + p0;
    for (int64_t o = 0; o < no; ++o) std::fill(yn + o * OHW, yn + o * OHW + np, b[o0 + o]);
    blas.gemm(false, false, no, np, R, w + o0 * R, R, cols, ld, 1.f, yn, OHW);
  });
}

// dx[n] = col2im(w^T[C*K*K, O] x dy[n][O, pixels]), in blocks of input channels (disjoint parts of dx).
// Pointwise: dx[n] = w^T dy[n] itself, in blocks of pixels (each task reads only its pixels of dy).
void conv_dgrad_gemm(const float* dy, const float* w, float* dx, const Geo& g) {
  if (const int64_t nb = fold_samples(g); nb > 1) return conv_dgrad_folded(dy, w, dx, g, nb);
  const Blas& blas = Blas::get();
  if (pointwise(g)) {
    const int64_t HW = g.H * g.W, T = pixel_tile(g.O, HW, g.N), tiles = (HW + T - 1) / T;
    parallel_for(g.N * tiles, [&](int64_t task) {
      const int64_t n = task / tiles, p0 = task % tiles * T, np = std::min(T, HW - p0);
      blas.gemm(true, false, g.C, np, g.O, w, g.C, dy + n * g.O * HW + p0, HW, 0.f, dx + n * g.C * HW + p0, HW);
    });
    return;
  }
  const int64_t KK = g.K * g.K, R = g.R(), OHW = g.OHW(), CHW = g.C * g.H * g.W;
  const int64_t threads = pool_threads();
  int64_t cb = std::max<int64_t>(1, kBlockFloats / (KK * OHW));
  cb = std::min(cb, std::max<int64_t>(1, (g.C + 2 * threads - 1) / (2 * threads)));
  const int64_t blocks = (g.C + cb - 1) / cb;
  parallel_for(g.N * blocks, [&](int64_t task) {
    thread_local std::vector<float> col;
    const int64_t n = task / blocks, c0 = task % blocks * cb, nc = std::min(cb, g.C - c0);
    const int64_t r0 = c0 * KK, nr = nc * KK;
    float* dxn = dx + n * CHW;
    std::fill(dxn + c0 * g.H * g.W, dxn + (c0 + nc) * g.H * g.W, 0.f);
    col.resize((size_t)(nr * OHW));
    blas.gemm(true, false, nr, OHW, g.O, w + r0, R, dy + n * g.O * OHW, OHW, 0.f, col.data(), OHW);
    col2im_add(col.data(), g, r0, r0 + nr, dxn);
  });
}

// dw[O, C*K*K] = sum over samples of dy[O, pixels] x col[C*K*K, pixels]^T, blocked one of two ways:
// - by rows of col (columns of dw) when C*K*K is large against the pixel count: each task owns its
//   columns of dw and runs over all pixels (dy is re-read once per block);
// - else by pixels: one partial dw per thread, added up at the end (dw is re-written once per block).
// The extra memory traffic is about O*pixels per row block against 2*O*C*K*K per pixel block.
void conv_wgrad_gemm(const float* dy, const float* x, float* dw, const Geo& g) {
  if (const int64_t nb = fold_samples(g); nb > 1) return conv_wgrad_folded(dy, x, dw, g, nb);
  const int64_t OHW = g.OHW(), R = g.R(), O = g.O, CHW = g.C * g.H * g.W;
  const Blas& blas = Blas::get();
  if (2 * R >= OHW) {
    const int64_t threads = pool_threads();
    int64_t rb = std::max<int64_t>(16, kBlockFloats / OHW / 16 * 16);
    rb = std::min(rb, std::max<int64_t>(16, (R + 4 * threads - 1) / (4 * threads) + 15) / 16 * 16);
    const int64_t blocks = (R + rb - 1) / rb;
    parallel_for(blocks, [&](int64_t blk) {
      thread_local std::vector<float> col;
      const int64_t r0 = blk * rb, nr = std::min(rb, R - r0);
      for (int64_t n = 0; n < g.N; ++n) {
        int64_t ld;
        const float* cols = im2col_rows(x + n * CHW, g, r0, nr, 0, OHW, col, ld);
        blas.gemm(false, true, O, nr, OHW, dy + n * O * OHW, OHW, cols, ld, n ? 1.f : 0.f, dw + r0, R);
      }
    });
    return;
  }
  const int64_t T = gemm_tile(R, OHW), tiles = (OHW + T - 1) / T, tasks = g.N * tiles;
  const int64_t parts = std::min<int64_t>(tasks, pool_threads());
  std::vector<float> acc((size_t)((parts - 1) * O * R));
  parallel_for(parts, [&](int64_t part) {
    thread_local std::vector<float> col;
    float* out = part == 0 ? dw : &acc[(size_t)((part - 1) * O * R)];
    bool first = true;
    for (int64_t task = part; task < tasks; task += parts) {
      const int64_t n = task / tiles, p0 = task % tiles * T, np = std::min(T, OHW - p0);
      int64_t ld;
      const float* cols = im2col_rows(x + n * CHW, g, 0, R, p0, np, col, ld);
      blas.gemm(false, true, O, R, np, dy + n * O * OHW + p0, OHW, cols, ld, first ? 0.f : 1.f, out, R);
      first = false;
    }
  });
  for (int64_t part = 1; part < parts; ++part) {
    const float* a = &acc[(size_t)((part - 1) * O * R)];
    parallel_for((O * R + 4095) / 4096, [&](int64_t blk) {
      for (int64_t i = blk * 4096; i < std::min(O * R, (blk + 1) * 4096); ++i) dw[i] += a[i];
    });
  }
}
