#include "kernels.h"

// ---------------------------------------------------------------------------------------------------
// Row normalisation (instance norm: a row is one (sample, channel); layer norm: a row is one sample).
// RowNormFwd(x, cfg[f32: eps, unbiased, kind]) -> y = (x - mean) * r, r = 1 / sqrt(var + eps),
//   var = sum (x - mean)^2 / d with d = n (biased, InstanceNorm2d) or n - 1 (unbiased, torch.var: LIN and
//   adaLIN; a row of one element gives NaN, as in PyTorch). kind 0: rows = shape[0] * shape[1] (instance);
//   kind 1: rows = shape[0] (layer).
// RowNormBwd(x, dy, cfg) -> dx = r * (dy - mean(dy) - xh * sum(dy * xh) / d), xh = (x - mean) * r, the
//   statistics recomputed from x.
// Rows are split into chunks that stay in L2; each chunk's mean and centred sums are taken in two
// passes over the (cached) chunk and combined exactly (Chan et al.), so a row with a large mean and a
// small spread loses nothing to cancellation. The whole op reads x twice (forward) or three times
// (backward) from memory.
static const int64_t kChunk = 16384;

struct ChunkStats {
  double n = 0, mean = 0, m2 = 0;     // count, mean of (x - x0), sum of (x - x0 - mean)^2
  double sdy = 0, sdyxc = 0;          // sum of dy, sum of dy * (x - x0 - mean)   (backward only)
};

// Every value is taken relative to x0, the row's first element: x - x0 is exact for the values near it,
// so a row with a large mean and a tiny spread keeps its precision (a float mean of values near 300 is
// only good to 3e-5, a 0.3 % error at a spread of 0.01).
static void chunk_stats(const float* x, const float* dy, int64_t m, float x0, ChunkStats& s) {
  const v16 x0v = bc(x0);
  v16 acc = bc(0.f);
  int64_t i = 0;
  for (; i + 16 <= m; i += 16) acc += ld(x + i) - x0v;
  float tail = 0.f;
  for (; i < m; ++i) tail += x[i] - x0;
  const float mean = (hsum(acc) + tail) / (float)m;
  const v16 mv = bc(mean);
  v16 a2 = bc(0.f), ad = bc(0.f), adx = bc(0.f);
  float t2 = 0.f, td = 0.f, tdx = 0.f;
  i = 0;
  if (dy) {
    for (; i + 16 <= m; i += 16) {
      const v16 c = (ld(x + i) - x0v) - mv, g = ld(dy + i);
      a2 += c * c; ad += g; adx += g * c;
    }
    for (; i < m; ++i) { const float c = (x[i] - x0) - mean; t2 += c * c; td += dy[i]; tdx += dy[i] * c; }
  } else {
    for (; i + 16 <= m; i += 16) { const v16 c = (ld(x + i) - x0v) - mv; a2 += c * c; }
    for (; i < m; ++i) { const float c = (x[i] - x0) - mean; t2 += c * c; }
  }
  s.n = (double)m; s.mean = mean; s.m2 = hsum(a2) + t2; s.sdy = hsum(ad) + td; s.sdyxc = hsum(adx) + tdx;
}

// Per row, exactly combined over its chunks (Chan et al.), in double: the first element x0, the mean of
// (x - x0), the centred sum of squares, and for the backward sum(dy) and sum(dy * (x - mean)).
struct RowMoments { float x0; double dmean, m2, sdy, sdyxc; };

// A row's moments from its chunks' statistics, combined exactly (Chan et al.) in double.
static RowMoments combine_chunks(const ChunkStats* cs, int64_t nch, float x0, bool with_dy) {
  double n = 0, mean = 0, m2 = 0;
  for (int64_t k = 0; k < nch; ++k) {                          // Chan's pairwise combination
    const ChunkStats& c = cs[k];
    const double tot = n + c.n, d = c.mean - mean;
    mean += d * c.n / tot;
    m2 += c.m2 + d * d * n * c.n / tot;
    n = tot;
  }
  double sdy = 0, sdyxc = 0;
  if (with_dy)
    for (int64_t k = 0; k < nch; ++k) {                        // sum dy (x - mean) = sum over chunks of
      const ChunkStats& c = cs[k];                             // dy (x - chunk mean) + (chunk mean - mean) sum dy
      sdy += c.sdy;
      sdyxc += c.sdyxc + (c.mean - mean) * c.sdy;
    }
  return {x0, mean, m2, sdy, sdyxc};
}

static void row_moments(const float* x, const float* dy, int64_t R, int64_t M, std::vector<RowMoments>& out) {
  const int64_t nch = (M + kChunk - 1) / kChunk;
  std::vector<ChunkStats> cs((size_t)(R * nch));
  parallel_for(R * nch, [&](int64_t t) {
    const int64_t r = t / nch, k = t % nch;
    const int64_t lo = k * kChunk, m = std::min<int64_t>(kChunk, M - lo);
    chunk_stats(x + r * M + lo, dy ? dy + r * M + lo : nullptr, m, x[r * M], cs[(size_t)t]);
  });
  out.resize((size_t)R);
  for (int64_t r = 0; r < R; ++r) out[(size_t)r] = combine_chunks(&cs[(size_t)(r * nch)], nch, x[r * M], dy != nullptr);
}

// y[i] = a * ((x[i] - x0) - dm) + b over each row (plus p * dy[i] when dy is given), written in the same
// chunks the statistics used. The row's constants are locals: read through a struct or vector inside the
// loop they may alias y, and GCC then does not vectorise it.
static void row_affine(const float* x, const float* dy, float* y, int64_t R, int64_t M,
                       const std::vector<RowMoments>& mo, const std::vector<double>& a,
                       const std::vector<double>& b, const std::vector<double>& p) {
  const int64_t nch = (M + kChunk - 1) / kChunk;
  parallel_for(R * nch, [&](int64_t t) {
    const int64_t r = t / nch, lo = t % nch * kChunk, hi = std::min<int64_t>(M, lo + kChunk);
    const float x0 = mo[(size_t)r].x0, dm = (float)mo[(size_t)r].dmean;
    const float ar = (float)a[(size_t)r], br = (float)b[(size_t)r];
    const float* xr = x + r * M;
    float* yr = y + r * M;
    if (dy) {
      const float pr = (float)p[(size_t)r];
      const float* gr = dy + r * M;
      for (int64_t i = lo; i < hi; ++i) yr[i] = pr * gr[i] + ar * ((xr[i] - x0) - dm) + br;
    } else {
      for (int64_t i = lo; i < hi; ++i) yr[i] = ar * ((xr[i] - x0) - dm) + br;
    }
  });
}

static bool row_shape(int* ndims, int64_t** shapes, int kind, int64_t& R, int64_t& M) {
  if (ndims[0] < 2) return false;
  int64_t total = 1;
  for (int d = 0; d < ndims[0]; ++d) total *= shapes[0][d];
  R = kind == 0 ? shapes[0][0] * shapes[0][1] : shapes[0][0];
  M = R > 0 ? total / R : 0;
  return true;
}

static int64_t numel(int nd, const int64_t* sh) {
  int64_t t = 1;
  for (int d = 0; d < nd; ++d) t *= sh[d];
  return t;
}

FG_EXPORT int RowNormFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                          void* stream, void* extra) {
  if (nparam != 3) return 1;
  const float* x = (const float*)params[0];
  const float* cfg = (const float*)params[1];
  float* y = (float*)params[2];
  int64_t R, M;
  if (!row_shape(ndims, shapes, (int)cfg[2], R, M)) return 1;
  std::vector<RowMoments> mo;
  row_moments(x, nullptr, R, M, mo);
  const double d = cfg[1] != 0.f ? (double)M - 1 : (double)M;
  std::vector<double> a((size_t)R), b((size_t)R, 0.0);
  for (int64_t r = 0; r < R; ++r) a[(size_t)r] = 1.0 / std::sqrt(mo[(size_t)r].m2 / d + (double)cfg[0]);
  row_affine(x, nullptr, y, R, M, mo, a, b, a);
  return 0;
}

FG_EXPORT int RowNormBwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                          void* stream, void* extra) {
  if (nparam != 4) return 1;
  const float* x = (const float*)params[0];
  const float* dy = (const float*)params[1];
  const float* cfg = (const float*)params[2];
  float* dx = (float*)params[3];
  int64_t R, M;
  if (!row_shape(ndims, shapes, (int)cfg[2], R, M)) return 1;
  std::vector<RowMoments> mo;
  row_moments(x, dy, R, M, mo);
  // dx = r * (dy - mean(dy) - xh * sum(dy * xh) / d), xh = (x - mean) * r: affine in dy and (x - mean)
  const double n = (double)M, d = cfg[1] != 0.f ? n - 1 : n;
  std::vector<double> p((size_t)R), q((size_t)R), c((size_t)R);
  for (int64_t r = 0; r < R; ++r) {
    const RowMoments& m = mo[(size_t)r];
    const double rstd = 1.0 / std::sqrt(m.m2 / d + (double)cfg[0]);
    p[(size_t)r] = rstd;
    q[(size_t)r] = -rstd * rstd * rstd * m.sdyxc / d;
    c[(size_t)r] = -rstd * m.sdy / n;
  }
  row_affine(x, dy, dx, R, M, mo, q, c, p);
  return 0;
}

// RowStats(x[N,C,...]) -> s[N*C, 2]: each (sample, channel) row's mean and unbiased variance (divided by
//   max(M - 1, 1)), from the same exactly combined moments as the norms. Forward only: the running statistics
//   of layers.TrackedInstanceNorm2d.
FG_EXPORT int RowStats(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                        void* stream, void* extra) {
  if (nparam != 2) return 1;
  const float* x = (const float*)params[0];
  float* out = (float*)params[1];
  int64_t R, M;
  if (!row_shape(ndims, shapes, 0, R, M) || numel(ndims[1], shapes[1]) != 2 * R) return 1;
  std::vector<RowMoments> mo;
  row_moments(x, nullptr, R, M, mo);
  const double d = (double)std::max<int64_t>(M - 1, 1);
  for (int64_t r = 0; r < R; ++r) {
    out[2 * r] = (float)((double)mo[(size_t)r].x0 + mo[(size_t)r].dmean);
    out[2 * r + 1] = (float)(mo[(size_t)r].m2 / d);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// Layer-instance normalisation with its affine, in one op (U-GAT-IT's adaLIN / LIN, photo2cartoon's
// Soft-AdaLIN), both variances unbiased (torch.var):
// LinMixFwd(x[N,C,H,W], rho[C], gamma[N,C] or [C], beta like gamma, cfg[f32: eps]) -> y =
//   gamma * (rho * (x - mi) * ri + (1 - rho) * (x - ml) * rl) + beta,
//   mi, ri = mean and 1/sqrt(var + eps) of each (n, c) plane; ml, rl the same over each sample (n).
//   rho, gamma, beta may have any shape with that many elements ((1,C,1,1) parameters, (N,C) FC outputs).
// LinMixBwd(x, dy, rho, gamma, cfg) -> dx, drho, dgamma, dbeta (each the shape of its input; a shared
//   gamma's gradient is summed over n).
// cfg[1], when given and 0: the instance variance biased (divided by H*W, InstanceNorm2d's), so rho = 1 is an
//   affine instance norm (StarGAN's, layers.TrackedInstanceNorm2d in training mode).
// Per (n, c) the output is an affine function of x, and the input gradient one of x and dy, so each
// direction is one pass for the statistics (plus sums of dy and dy * x backward) and one writing pass,
// instead of two row norms, the mixing, the affine and their gradients as separate MindSpore ops.
// The layer statistics are combined exactly from the planes' (mean, centred sum of squares).
struct LinCoef { double mi, ri, ml, rl; };

static void lin_coefs(const std::vector<RowMoments>& mo, int64_t N, int64_t C, int64_t M, double eps, double di,
                      std::vector<LinCoef>& co) {
  co.resize((size_t)(N * C));
  const double L = (double)(C * M);
  for (int64_t n = 0; n < N; ++n) {
    double ml = 0, m2l = 0;
    for (int64_t c = 0; c < C; ++c) {
      const RowMoments& m = mo[(size_t)(n * C + c)];
      ml += ((double)m.x0 + m.dmean) / (double)C;
    }
    for (int64_t c = 0; c < C; ++c) {
      const RowMoments& m = mo[(size_t)(n * C + c)];
      const double d = (double)m.x0 + m.dmean - ml;
      m2l += m.m2 + (double)M * d * d;
    }
    const double rl = 1.0 / std::sqrt(m2l / (L - 1) + eps);
    for (int64_t c = 0; c < C; ++c) {
      const RowMoments& m = mo[(size_t)(n * C + c)];
      co[(size_t)(n * C + c)] = {(double)m.x0 + m.dmean, 1.0 / std::sqrt(m.m2 / di + eps), ml, rl};
    }
  }
}

// The instance variance's divisor: M - 1 (torch.var), or M when cfg has a second element that is 0.
static double instance_divisor(const float* cfg, int nd, const int64_t* sh, int64_t M) {
  return numel(nd, sh) > 1 && cfg[1] == 0.f ? (double)M : (double)(M - 1);
}

FG_EXPORT int LinMixFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                         void* stream, void* extra) {
  if (nparam != 6 || ndims[0] != 4) return 1;
  const float* x = (const float*)params[0];
  const float* rho = (const float*)params[1];
  const float* gamma = (const float*)params[2];
  const float* beta = (const float*)params[3];
  const float* cfg = (const float*)params[4];
  float* y = (float*)params[5];
  const int64_t N = shapes[0][0], C = shapes[0][1], M = shapes[0][2] * shapes[0][3];
  const int64_t ng = numel(ndims[2], shapes[2]);
  if (numel(ndims[1], shapes[1]) != C || (ng != C && ng != N * C) || numel(ndims[3], shapes[3]) != ng) return 1;
  const int64_t gs = ng == C ? 0 : C;           // gamma / beta stride over n
  std::vector<RowMoments> mo;
  row_moments(x, nullptr, N * C, M, mo);
  std::vector<LinCoef> co;
  lin_coefs(mo, N, C, M, (double)cfg[0], instance_divisor(cfg, ndims[4], shapes[4], M), co);
  std::vector<double> a((size_t)(N * C)), b((size_t)(N * C));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const LinCoef& k = co[(size_t)(n * C + c)];
      const double r = rho[c], g = gamma[n * gs + c];
      a[(size_t)(n * C + c)] = g * (r * k.ri + (1 - r) * k.rl);
      b[(size_t)(n * C + c)] = g * (1 - r) * k.rl * (k.mi - k.ml) + beta[n * gs + c];
    }
  row_affine(x, nullptr, y, N * C, M, mo, a, b, a);
  return 0;
}

FG_EXPORT int LinMixBwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                         void* stream, void* extra) {
  if (nparam != 9 || ndims[0] != 4) return 1;
  const float* x = (const float*)params[0];
  const float* dy = (const float*)params[1];
  const float* rho = (const float*)params[2];
  const float* gamma = (const float*)params[3];
  const float* cfg = (const float*)params[4];
  float* dx = (float*)params[5];
  float* drho = (float*)params[6];
  float* dgamma = (float*)params[7];
  float* dbeta = (float*)params[8];
  const int64_t N = shapes[0][0], C = shapes[0][1], M = shapes[0][2] * shapes[0][3];
  const int64_t ng = numel(ndims[3], shapes[3]);
  if (numel(ndims[2], shapes[2]) != C || (ng != C && ng != N * C)) return 1;
  const int64_t gs = ng == C ? 0 : C;
  const double Md = (double)M, L = (double)(C * M), di = instance_divisor(cfg, ndims[4], shapes[4], M);
  std::vector<RowMoments> mo;
  row_moments(x, dy, N * C, M, mo);
  std::vector<LinCoef> co;
  lin_coefs(mo, N, C, M, (double)cfg[0], di, co);
  std::vector<double> p((size_t)(N * C)), q((size_t)(N * C)), r0((size_t)(N * C)), si((size_t)(N * C)),
      sl((size_t)(N * C));
  std::vector<double> dr((size_t)C, 0.0), dg((size_t)ng, 0.0), db((size_t)ng, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    double v1 = 0, v2 = 0;   // sums over c of (1 - rho) g sum(dy) and of (1 - rho) g sum(dy * xl)
    for (int64_t c = 0; c < C; ++c) {
      const size_t i = (size_t)(n * C + c);
      const LinCoef& k = co[i];
      const RowMoments& m = mo[i];
      const double r = rho[c], g = gamma[n * gs + c];
      si[i] = k.ri * m.sdyxc;                                  // sum dy * xi
      sl[i] = k.rl * (m.sdyxc + (k.mi - k.ml) * m.sdy);        // sum dy * xl
      db[(size_t)(n * gs + c)] += m.sdy;
      dg[(size_t)(n * gs + c)] += r * si[i] + (1 - r) * sl[i];
      dr[(size_t)c] += g * (si[i] - sl[i]);
      v1 += (1 - r) * g * m.sdy;
      v2 += (1 - r) * g * sl[i];
    }
    for (int64_t c = 0; c < C; ++c) {
      const size_t i = (size_t)(n * C + c);
      const LinCoef& k = co[i];
      const double r = rho[c], g = gamma[n * gs + c];
      const double a = r * g * k.ri, l2 = k.rl * k.rl * v2 / (L - 1);
      p[i] = a + (1 - r) * g * k.rl;
      q[i] = -a * k.ri * si[i] / di - l2;
      r0[i] = -a * mo[i].sdy / Md - k.rl * v1 / L - l2 * (k.mi - k.ml);
    }
  }
  row_affine(x, dy, dx, N * C, M, mo, q, r0, p);
  for (int64_t c = 0; c < C; ++c) drho[c] = (float)dr[(size_t)c];
  for (int64_t i = 0; i < ng; ++i) { dgamma[i] = (float)dg[(size_t)i]; dbeta[i] = (float)db[(size_t)i]; }
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// Instance norm, ReLU and reflection padding as one op: the pre-activation units of photo2cartoon's
// ConvBlock and the IN -> ReLU -> ReflectionPad2d -> conv runs of the U-GAT-IT and CycleGAN residual blocks.
// NormActPadFwd(x[N,C,H,W], cfg[f32: eps, unbiased, relu], pad[p + 1]) -> y[N,C,H+2p,W+2p] =
//   reflection_pad(act((x - mean) * r), p), r and the variance as in RowNormFwd (instance rows), act = ReLU
//   when cfg[2] != 0, else the identity. The same arithmetic as RowNormFwd, so the same values.
// NormActPadBwd(x, y, dy, cfg, pad) -> dx: each element of dy added to the element of the plane it was
//   copied from, where y > 0 (ReLU; y is the forward's output, and a padded element equals its source),
//   then the instance-norm gradient. One plane at a time (<= 256 KB at 256 x 256): the folded gradient
//   stays in L2 and never goes to memory.
// Against the three ops (RowNorm, ReLU, PadUp) and their three gradients this saves two passes over the
// activation forward, four backward, four op launches, and the unpadded activations kept for the backward.
static bool norm_act_pad_geo(int* ndims, int64_t** shapes, int pad_arg, int64_t& N, int64_t& C, int64_t& H,
                             int64_t& W, int64_t& P) {
  if (ndims[0] != 4) return false;
  N = shapes[0][0]; C = shapes[0][1]; H = shapes[0][2]; W = shapes[0][3];
  P = shapes[pad_arg][0] - 1;
  return P >= 0 && (P == 0 || (P < H && P < W)) && H * W > 0;
}

// y = reflection_pad(act(instance_norm(x)), P) for x[N,C,H,W]: NormActPadFwd's arithmetic.
void nap_fwd(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t P, const float* cfg,
                    float* y) {
  const int64_t R = N * C, M = H * W, Ho = H + 2 * P, Wo = W + 2 * P;
  const bool relu = cfg[2] != 0.f;
  std::vector<RowMoments> mo;
  row_moments(x, nullptr, R, M, mo);
  const double d = cfg[1] != 0.f ? (double)M - 1 : (double)M;
  std::vector<int64_t> ri, ci;
  source_index(Ho, H, P, 1, ri);
  source_index(Wo, W, P, 1, ci);
  parallel_for(R, [&](int64_t r) {
    const float x0 = mo[(size_t)r].x0, dm = (float)mo[(size_t)r].dmean;
    const float a = (float)(1.0 / std::sqrt(mo[(size_t)r].m2 / d + (double)cfg[0]));
    const float* xs = x + r * M;
    float* ys = y + r * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const float* xr = xs + ri[(size_t)oh] * W;
      float* yr = ys + oh * Wo;
      float* yi = yr + P;
      if (relu) {
        for (int64_t j = 0; j < W; ++j) { const float v = a * ((xr[j] - x0) - dm); yi[j] = v > 0.f ? v : 0.f; }
      } else {
        for (int64_t j = 0; j < W; ++j) yi[j] = a * ((xr[j] - x0) - dm);
      }
      fill_edges(yr, yi, ci, P, Wo);
    }
  });
}

// dx = the gradient of nap_fwd at x (y its output) given dy, plus `add` when not null: a tensor of C-channel
// samples `add_stride` floats apart, added after the norm gradient (ConvBlockBwd's concatenation slices).
void nap_bwd(const float* x, const float* y, const float* dy, int64_t N, int64_t C, int64_t H, int64_t W,
                    int64_t P, const float* cfg, float* dx, const float* add = nullptr, int64_t add_stride = 0) {
  const int64_t R = N * C, M = H * W, Ho = H + 2 * P, Wo = W + 2 * P;
  const bool relu = cfg[2] != 0.f;
  const double n = (double)M, d = cfg[1] != 0.f ? n - 1 : n, eps = (double)cfg[0];
  const int64_t nch = (M + kChunk - 1) / kChunk;
  std::vector<int64_t> ri, ci;
  source_index(Ho, H, P, 1, ri);
  source_index(Wo, W, P, 1, ci);
  parallel_for(R, [&](int64_t r) {
    thread_local std::vector<float> gbuf;
    thread_local std::vector<ChunkStats> cs;
    gbuf.assign((size_t)M, 0.f);
    cs.assign((size_t)nch, ChunkStats());
    float* g = gbuf.data();
    const float* ys = y + r * Ho * Wo;
    const float* gs = dy + r * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; ++oh) {               // fold (and mask) the padded gradient
      const float* yr = ys + oh * Wo;
      const float* gr = gs + oh * Wo;
      float* dr = g + ri[(size_t)oh] * W;
      const float* yi = yr + P;
      const float* gi = gr + P;
      if (relu) {
        for (int64_t j = 0; j < W; ++j) dr[j] += yi[j] > 0.f ? gi[j] : 0.f;
        for (int64_t ow = 0; ow < P; ++ow) {
          if (yr[ow] > 0.f) dr[ci[(size_t)ow]] += gr[ow];
          if (yr[Wo - 1 - ow] > 0.f) dr[ci[(size_t)(Wo - 1 - ow)]] += gr[Wo - 1 - ow];
        }
      } else {
        for (int64_t j = 0; j < W; ++j) dr[j] += gi[j];
        fold_edges(dr, gr, ci, P, Wo);
      }
    }
    const float* xs = x + r * M;
    for (int64_t k = 0; k < nch; ++k) {
      const int64_t lo = k * kChunk;
      chunk_stats(xs + lo, g + lo, std::min<int64_t>(kChunk, M - lo), xs[0], cs[(size_t)k]);
    }
    const RowMoments m = combine_chunks(cs.data(), nch, xs[0], true);
    // dx = r * (g - mean(g) - xh * sum(g * xh) / d), xh = (x - mean) * r, as in RowNormBwd
    const double rstd = 1.0 / std::sqrt(m.m2 / d + eps);
    const float pr = (float)rstd, qr = (float)(-rstd * rstd * rstd * m.sdyxc / d), cr = (float)(-rstd * m.sdy / n);
    const float x0 = m.x0, dm = (float)m.dmean;
    float* ds = dx + r * M;
    if (add) {
      const float* as = add + r / C * add_stride + r % C * M;
      for (int64_t i = 0; i < M; ++i) {
        const float v = pr * g[i] + qr * ((xs[i] - x0) - dm) + cr;   // (rounded, then added: as two ops)
        ds[i] = v + as[i];
      }
    } else {
      for (int64_t i = 0; i < M; ++i) ds[i] = pr * g[i] + qr * ((xs[i] - x0) - dm) + cr;
    }
  });
}

FG_EXPORT int NormActPadFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                             void* stream, void* extra) {
  if (nparam != 4) return 1;
  int64_t N, C, H, W, P;
  if (!norm_act_pad_geo(ndims, shapes, 2, N, C, H, W, P)) return 1;
  nap_fwd((const float*)params[0], N, C, H, W, P, (const float*)params[1], (float*)params[3]);
  return 0;
}

FG_EXPORT int NormActPadBwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                             void* stream, void* extra) {
  if (nparam != 6) return 1;
  int64_t N, C, H, W, P;
  if (!norm_act_pad_geo(ndims, shapes, 4, N, C, H, W, P)) return 1;
  const int64_t Ho = H + 2 * P, Wo = W + 2 * P;
  if (shapes[1][2] != Ho || shapes[1][3] != Wo || shapes[2][2] != Ho || shapes[2][3] != Wo) return 1;
  nap_bwd((const float*)params[0], (const float*)params[1], (const float*)params[2], N, C, H, W, P,
          (const float*)params[3], (float*)params[5]);
  return 0;
}
