#include "kernels.h"

// Winograd's limits (use_winograd): the measured crossovers, and a memory bound. Its scratch buffer, kept
// by each calling thread, holds the 36 transformed weight matrices (36 * C * O floats: 38 MB at 512 -> 512)
// and one chunk of tiles (about kWinoChunkFloats floats).
static const int64_t kWinoChunkFloats = int64_t(1) << 21, kWinoMinChannels = 32, kWinoMinChannelSum = 96,
                     kWinoMinPixels = 1024, kWinoMaxChannelProduct = 512 * 512;

// ---------------------------------------------------------------------------------------------------
// Winograd F(4x4, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016) for 3x3
// convolutions at stride 1. Each 4 x 4 tile of output pixels comes from the 6 x 6 tile of input pixels
// around it as
//   y_tile[o] = AT (sum over c of U[o, c] . V[c]) AT^T,  U[o, c] = G w[o, c] G^T,  V[c] = BT x_tile[c] BT^T
// (. elementwise), so for each of the 36 elements k the sum over c is one GEMM, U[k] (O x C) x V[k] (C x
// tiles): 36 multiplications per tile and channel pair against 144 direct. The weight gradient is its
// adjoint, dU[k] = sum over tiles of D[k] (O x tiles) x V[k]^T with D = AT^T dy_tile AT, and dw[o, c] =
// G^T dU[o, c] G; the input gradient is this forward on dy (conv_dgrad). Tiles go in chunks of whole tile
// rows (Plan): transform, 36 single-threaded SGEMMs shared over the pool, transform back.
// The transforms run on 16 tiles per vector: a row of pixels is split into its 4 phases (pixel 4t + r to
// lane t of plane r), so tap j of the tiles t.. is plane j % 4 read from t + j / 4 on.
// (Raw kernels, median ms direct -> Winograd, batch 2: 256 -> 256 at 64 px forward 48.7 ->
// 25.8, input gradient 54.7 -> 46.0, weight gradient 60.8 -> 28.3; 128 -> 128 at 64 px 13.0 -> 9.3, 14.1 ->
// 10.0, 15.9 -> 8.9; 64 -> 32 at 256 px 43.7 -> 30.3, 30.1 -> 24.9, 44.2 -> 37.9. Slower with 16 channels
// or fewer on a side (32 -> 16 at 256 px 0.9-1.5x the time, 16 -> 8 1.4-1.8x: the transforms, not the
// products, are then the cost) and under 32 x 32 output pixels (256 -> 256 at 16 x 16: forward and input
// gradient 1.2-1.5x); use_winograd.)
namespace wino {
constexpr int M = 4, A = 6, A2 = 36;
constexpr float BT[A][A] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                            {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
constexpr float G[A][3] = {{1.f / 4, 0, 0},           {-1.f / 6, -1.f / 6, -1.f / 6}, {-1.f / 6, 1.f / 6, -1.f / 6},
                           {1.f / 24, 1.f / 12, 1.f / 6}, {1.f / 24, -1.f / 12, 1.f / 6}, {0, 0, 1}};
constexpr float AT[M][A] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

#if defined(__AVX512F__)
typedef int32_t iv16 __attribute__((vector_size(64)));

// 64 floats -> their 4 phases: p[r * ps + t] = s[4t + r], t < 16.
static inline void split4(const float* s, float* p, int64_t ps) {
  const v16 v0 = ld(s), v1 = ld(s + 16), v2 = ld(s + 32), v3 = ld(s + 48);
  const iv16 ea = {0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29};
  const iv16 eb = {2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31};
  const iv16 lo = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const iv16 hi = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  const v16 a0 = __builtin_shuffle(v0, v1, ea), b0 = __builtin_shuffle(v0, v1, eb);   // t 0..7: r 0|1, 2|3
  const v16 a1 = __builtin_shuffle(v2, v3, ea), b1 = __builtin_shuffle(v2, v3, eb);   // t 8..15
  st(p, __builtin_shuffle(a0, a1, lo));
  st(p + ps, __builtin_shuffle(a0, a1, hi));
  st(p + 2 * ps, __builtin_shuffle(b0, b1, lo));
  st(p + 3 * ps, __builtin_shuffle(b0, b1, hi));
}

// The inverse: d[4t + r] = p[r * ps + t], t < 16.
static inline void join4(const float* p, int64_t ps, float* d) {
  const iv16 lo = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const iv16 hi = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  const iv16 e0 = {0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27};
  const iv16 e1 = {4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31};
  const v16 p0 = ld(p), p1 = ld(p + ps), p2 = ld(p + 2 * ps), p3 = ld(p + 3 * ps);
  const v16 a0 = __builtin_shuffle(p0, p1, lo), a1 = __builtin_shuffle(p0, p1, hi);   // r 0|1: t 0..7, 8..15
  const v16 b0 = __builtin_shuffle(p2, p3, lo), b1 = __builtin_shuffle(p2, p3, hi);   // r 2|3
  st(d, __builtin_shuffle(a0, b0, e0));
  st(d + 16, __builtin_shuffle(a0, b0, e1));
  st(d + 32, __builtin_shuffle(a1, b1, e0));
  st(d + 48, __builtin_shuffle(a1, b1, e1));
}
#else
typedef int32_t iv8 __attribute__((vector_size(32)));

// 64 floats -> their 4 phases: p[r * ps + t] = s[4t + r], t < 16 (in 8-float vectors: per 4 t, the pairs
// (r 0|1, r 2|3), then t 0..3 and 4..7 joined).
static inline void split4(const float* s, float* p, int64_t ps) {
  const iv8 ea = {0, 4, 8, 12, 1, 5, 9, 13}, eb = {2, 6, 10, 14, 3, 7, 11, 15};
  const iv8 lo = {0, 1, 2, 3, 8, 9, 10, 11}, hi = {4, 5, 6, 7, 12, 13, 14, 15};
  for (int h = 0; h < 2; ++h, s += 32) {   // t 0..7, then 8..15
    v8 u[4];
    memcpy(u, s, sizeof(u));
    const v8 a0 = __builtin_shuffle(u[0], u[1], ea), b0 = __builtin_shuffle(u[0], u[1], eb);   // t 0..3
    const v8 a1 = __builtin_shuffle(u[2], u[3], ea), b1 = __builtin_shuffle(u[2], u[3], eb);   // t 4..7
    const v8 r[4] = {__builtin_shuffle(a0, a1, lo), __builtin_shuffle(a0, a1, hi), __builtin_shuffle(b0, b1, lo),
                     __builtin_shuffle(b0, b1, hi)};
    for (int k = 0; k < 4; ++k) memcpy(p + k * ps + 8 * h, &r[k], sizeof(v8));
  }
}

// The inverse: d[4t + r] = p[r * ps + t], t < 16.
static inline void join4(const float* p, int64_t ps, float* d) {
  const iv8 lo = {0, 1, 2, 3, 8, 9, 10, 11}, hi = {4, 5, 6, 7, 12, 13, 14, 15};
  const iv8 e0 = {0, 4, 8, 12, 1, 5, 9, 13}, e1 = {2, 6, 10, 14, 3, 7, 11, 15};
  for (int h = 0; h < 2; ++h, d += 32) {   // t 0..7, then 8..15
    v8 q[4];
    for (int k = 0; k < 4; ++k) memcpy(&q[k], p + k * ps + 8 * h, sizeof(v8));
    const v8 x0 = __builtin_shuffle(q[0], q[1], lo), y0 = __builtin_shuffle(q[2], q[3], lo);   // t 0..3
    const v8 x1 = __builtin_shuffle(q[0], q[1], hi), y1 = __builtin_shuffle(q[2], q[3], hi);   // t 4..7
    const v8 r[4] = {__builtin_shuffle(x0, y0, e0), __builtin_shuffle(x0, y0, e1), __builtin_shuffle(x1, y1, e0),
                     __builtin_shuffle(x1, y1, e1)};
    memcpy(d, r, sizeof(r));
  }
}
#endif

static inline void st_n(float* p, v16 v, int64_t n) {
  if (n >= 16)
    st(p, v);
  else
    memcpy(p, &v, (size_t)n * sizeof(float));
}

// Tiles of a convolution's output, TH x TW per sample, in chunks of whole tile rows (row n*TH + th). A row
// of tiles is split into phase planes of Wp floats (TW + 1 tiles: the last tile's taps reach into the next
// tile, rounded up to whole vectors).
struct Plan {
  int64_t TH, TW, Wp, rows, rows_per_chunk;
  Plan(const Geo& g, int64_t channels)
      : TH((g.OH + M - 1) / M), TW((g.OW + M - 1) / M), Wp((TW + 1 + 15) / 16 * 16), rows(g.N * TH) {
    rows_per_chunk = std::max<int64_t>(1, kWinoChunkFloats / (A2 * channels * TW));
  }
  int64_t chunk_tiles() const { return std::min(rows, rows_per_chunk) * TW; }
};

// A float buffer kept by the calling thread between calls (a fresh one would be page-faulted in again on
// every call: 17 MB for 256 -> 256 channels).
static float* scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// U[k][r][s] = (G w G^T)[k] for the r-th of R x S kernels (w[r * S + s], 3x3 each), 16 kernels s at a
// time (one vector lane each).
static void weights(const float* w, int64_t R, int64_t S, float* U) {
  parallel_for(R, [=](int64_t r) {   // (by value: the vector stores may alias anything captured by reference)
    for (int64_t s0 = 0; s0 < S; s0 += 16) {
      const int64_t ns = std::min<int64_t>(16, S - s0);
      float gs[9][16] = {};
      for (int q = 0; q < 9; ++q)
        for (int64_t l = 0; l < ns; ++l) gs[q][l] = w[(r * S + s0 + l) * 9 + q];
      v16 g[9], t[A][3];
      for (int q = 0; q < 9; ++q) g[q] = ld(gs[q]);
#pragma GCC unroll 8
      for (int i = 0; i < A; ++i)
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
#pragma GCC unroll 8
      for (int i = 0; i < A; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < A; ++j)
          st_n(U + ((i * A + j) * R + r) * S + s0, t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2], ns);
    }
  });
}

// `len` floats of a row, `off` zeros before them and zeros after, as 4 phase planes of ps floats (lin: 64
// floats of scratch for the blocks at the row's ends).
static void row_phases(const float* row, int64_t len, int64_t off, int64_t ps, float* lin, float* p) {
  for (int64_t t = 0; t < ps; t += 16) {
    const int64_t u = 4 * t - off;   // the block's first pixel
    if (u >= 0 && u + 64 <= len) {
      split4(row + u, p + t, ps);
      continue;
    }
    const int64_t lo = std::max<int64_t>(0, -u), hi = std::max(lo, std::min<int64_t>(64, len - u));
    std::fill(lin, lin + 64, 0.f);
    if (hi > lo) memcpy(lin + lo, row + u + lo, (size_t)(hi - lo) * sizeof(float));
    split4(lin, p + t, ps);
  }
}

// sum over j of R[j] s[j] for a row R of one of the constant matrices above: the zero terms skipped, the
// +-1 terms added or subtracted (the loops that call it are unrolled, so R[j] is known when compiling).
template <int NJ>
static inline __attribute__((always_inline)) v16 combine(const float (&R)[NJ], const v16* s) {
  v16 acc = bc(0.f);
  bool first = true;
#pragma GCC unroll 8
  for (int j = 0; j < NJ; ++j) {
    if (R[j] == 0.f) continue;
    const v16 term = R[j] == 1.f ? s[j] : R[j] == -1.f ? -s[j] : R[j] * s[j];
    acc = first ? term : acc + term;
    first = false;
  }
  return acc;
}

// A transposed constant matrix as rows (the output gradient's transform uses AT's columns).
struct ATcols {
  float r[A][M];
  constexpr ATcols() : r() {
    for (int a = 0; a < A; ++a)
      for (int i = 0; i < M; ++i) r[a][i] = AT[i][a];
  }
};
constexpr ATcols kATt;

// One tile row of a plane: rows[i] (NI phase-split rows of 4 * Wp floats) -> the tiles' transform
// d[(a * A + b) * ks + t] = sum over i, j of L[a][i] R[b][j] row_i[4t + j], t < TW (tmp: A * 4 * Wp floats).
template <int NI, int NJ>
static void tile_row(const float* rows, const float (&L)[A][NI], const float (&R)[A][NJ], int64_t Wp, int64_t TW,
                     float* tmp, float* d, int64_t ks) {
  const int64_t len = 4 * Wp;
  for (int64_t u = 0; u < len; u += 16) {
    v16 s[NI];
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i) s[i] = ld(rows + i * len + u);
#pragma GCC unroll 8
    for (int a = 0; a < A; ++a) st(tmp + a * len + u, combine<NI>(L[a], s));
  }
  for (int a = 0; a < A; ++a) {   // (a outermost: A output streams at a time)
    const float* p = tmp + a * len;
    float* da = d + a * A * ks;
    for (int64_t t = 0; t < TW; t += 16) {
      v16 s[NJ];
#pragma GCC unroll 8
      for (int j = 0; j < NJ; ++j) s[j] = ld(p + (j % 4) * Wp + t + j / 4);
#pragma GCC unroll 8
      for (int b = 0; b < A; ++b) st_n(da + b * ks + t, combine<NJ>(R[b], s), TW - t);
    }
  }
}

// The tiles' transform for the tile rows [r0, r1) of `planes` planes per sample, each H x W, zero-padded by
// P: tile (th, tw) of plane q takes the NI x NI window at rows 4th - P .. and columns 4tw - P .., and
// out[k][q][t] = (L window L^T)[k] (t counted from r0's first tile). NI = 6: the input transform (x, L =
// BT), V of the forward and the weight gradient; NI = 4: the output gradient's (dy, P = 0, L = AT^T), D.
template <int NI>
static void tiles(const float* src, int64_t planes, int64_t H, int64_t W, int64_t P, const Plan& pl, int64_t r0,
                  int64_t r1, float* out) {
  const int64_t TH = pl.TH, TW = pl.TW, Wp = pl.Wp, nr = r1 - r0, nt = nr * TW;
  parallel_for(planes * nr, [=](int64_t task) {
    const int64_t q = task / nr, row = r0 + task % nr, n = row / TH, th = row % TH;
    thread_local std::vector<float> buf;
    buf.resize((size_t)((NI + A) * 4 * Wp + 64));
    float* in = buf.data();   // the window's NI rows, phase-split; then the vertical pass; then 64 floats
    for (int i = 0; i < NI; ++i) {
      const int64_t ih = th * M - P + i;
      if (ih >= 0 && ih < H)
        row_phases(src + ((n * planes + q) * H + ih) * W, W, P, Wp, in + (NI + A) * 4 * Wp, in + i * 4 * Wp);
      else
        std::fill(in + i * 4 * Wp, in + (i + 1) * 4 * Wp, 0.f);
    }
    float* d = out + q * nt + (row - r0) * TW;
    if constexpr (NI == A)   // (the matrix named here, not passed in: its entries fold into the code)
      tile_row<A, A>(in, BT, BT, Wp, TW, in + A * 4 * Wp, d, planes * nt);
    else
      tile_row<M, M>(in, kATt.r, kATt.r, Wp, TW, in + M * 4 * Wp, d, planes * nt);
  });
}

// y[n, o, 4th + i, 4tw + j] = b[o] + (AT Y_tile AT^T)[i][j] for the tiles of rows [r0, r1), Y[k][o][t]
// (readable 16 floats past its end).
static void output(const float* Y, const float* b, const Geo& g, const Plan& pl, int64_t r0, int64_t r1, float* y) {
  const int64_t O = g.O, OH = g.OH, OW = g.OW, TH = pl.TH, TW = pl.TW, Wp = pl.Wp, nr = r1 - r0;
  const int64_t nt = nr * TW;
  parallel_for(O * nr, [=](int64_t task) {
    const int64_t o = task / nr, row = r0 + task % nr, n = row / TH, th = row % TH;
    thread_local std::vector<float> buf;
    buf.resize((size_t)(M * 4 * Wp + 64));
    float* out = buf.data();   // out[i][j][t]: output row 4th + i, column 4t + j
    float* lin = out + M * 4 * Wp;
    const float* ys = Y + o * nt + (row - r0) * TW;
    const v16 bias = bc(b[o]);
    for (int64_t t = 0; t < TW; t += 16) {
      v16 z[M][A];   // z[i][bb] = sum over a of AT[i][a] Y[a*A + bb]
#pragma GCC unroll 8
      for (int bb = 0; bb < A; ++bb) {
        v16 s[A];
#pragma GCC unroll 8
        for (int a = 0; a < A; ++a) s[a] = ld(ys + (a * A + bb) * O * nt + t);
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i) z[i][bb] = combine<A>(AT[i], s);
      }
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < M; ++j) st(out + (i * 4 + j) * Wp + t, bias + combine<A>(AT[j], z[i]));
    }
    for (int i = 0; i < M; ++i) {
      const int64_t oh = th * M + i;
      if (oh >= OH) break;
      float* d = y + ((n * O + o) * OH + oh) * OW;
      int64_t t = 0;
      for (; 4 * t + 64 <= OW; t += 16) join4(out + i * 4 * Wp + t, Wp, d + 4 * t);
      if (4 * t < OW) {
        join4(out + i * 4 * Wp + t, Wp, lin);
        memcpy(d + 4 * t, lin, (size_t)(OW - 4 * t) * sizeof(float));
      }
    }
  });
}

// y = conv(x, w) + b, 3x3 at stride 1.
void conv_fwd(const float* x, const float* w, const float* b, float* y, const Geo& g) {
  const int64_t C = g.C, O = g.O;
  const Plan pl(g, C + O);
  const int64_t ct = pl.chunk_tiles();
  float* U = scratch((size_t)(A2 * (O * C + (C + O) * ct) + 16));
  float* V = U + A2 * O * C;
  float* Y = V + A2 * C * ct;
  weights(w, O, C, U);
  for (int64_t r0 = 0; r0 < pl.rows; r0 += pl.rows_per_chunk) {
    const int64_t r1 = std::min(pl.rows, r0 + pl.rows_per_chunk), nt = (r1 - r0) * pl.TW;
    tiles<A>(x, C, g.H, g.W, g.P, pl, r0, r1, V);
    parallel_for(A2, [&](int64_t k) {
      Blas::get().gemm(false, false, O, nt, C, U + k * O * C, C, V + k * C * nt, nt, 0.f, Y + k * O * nt, nt);
    });
    output(Y, b, g, pl, r0, r1, y);
  }
}

// dw = the weight gradient of a 3x3 stride-1 convolution.
void conv_wgrad(const float* dy, const float* x, float* dw, const Geo& g) {
  const int64_t C = g.C, O = g.O;
  const Plan pl(g, C + O);
  const int64_t ct = pl.chunk_tiles();
  float* dU = scratch((size_t)(A2 * (O * C + (C + O) * ct)));
  float* V = dU + A2 * O * C;
  float* D = V + A2 * C * ct;
  for (int64_t r0 = 0; r0 < pl.rows; r0 += pl.rows_per_chunk) {
    const int64_t r1 = std::min(pl.rows, r0 + pl.rows_per_chunk), nt = (r1 - r0) * pl.TW;
    tiles<A>(x, C, g.H, g.W, g.P, pl, r0, r1, V);
    tiles<M>(dy, O, g.OH, g.OW, 0, pl, r0, r1, D);
    parallel_for(A2, [&](int64_t k) {
      Blas::get().gemm(false, true, O, C, nt, D + k * O * nt, nt, V + k * C * nt, nt, r0 == 0 ? 0.f : 1.f,
                       dU + k * O * C, C);
    });
  }
  // dw[o, c] = G^T dU[o, c] G, 16 input channels at a time.
  parallel_for(O, [&](int64_t o) {
    for (int64_t c0 = 0; c0 < C; c0 += 16) {
      const int64_t nc = std::min<int64_t>(16, C - c0);
      v16 t[3][A];
#pragma GCC unroll 8
      for (int i = 0; i < 3; ++i)
#pragma GCC unroll 8
        for (int bb = 0; bb < A; ++bb) t[i][bb] = bc(0.f);
      for (int a = 0; a < A; ++a)
#pragma GCC unroll 8
        for (int bb = 0; bb < A; ++bb) {
          v16 u = bc(0.f);
          memcpy(&u, dU + ((a * A + bb) * O + o) * C + c0, (size_t)nc * sizeof(float));
#pragma GCC unroll 3
          for (int i = 0; i < 3; ++i)
            if (G[a][i] != 0.f) t[i][bb] += G[a][i] * u;
        }
      float r[9][16];
#pragma GCC unroll 3
      for (int i = 0; i < 3; ++i)
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) {
          v16 acc = bc(0.f);
#pragma GCC unroll 8
          for (int bb = 0; bb < A; ++bb)
            if (G[bb][j] != 0.f) acc += G[bb][j] * t[i][bb];
          memcpy(r[i * 3 + j], &acc, sizeof(acc));
        }
      for (int64_t l = 0; l < nc; ++l)
        for (int q = 0; q < 9; ++q) dw[(o * C + c0 + l) * 9 + q] = r[q][l];
    }
  });
}
}  // namespace wino

// Whether Winograd runs a 3x3 stride-1 convolution's forward (and so its input gradient, a forward on dy:
// C and O swapped, OHW the input's pixels) or its weight gradient: C input channels, O outputs, OHW output
// pixels per sample. FACEGAN_NATIVE_WINOGRAD=0 / 1 forces it off / on (on only where a BLAS is loaded).
bool use_winograd(int64_t C, int64_t O, int64_t K, int64_t S, int64_t OHW) {
  if (K != 3 || S != 1 || !Blas::get().ok()) return false;
  const char* e = std::getenv("FACEGAN_NATIVE_WINOGRAD");
  if (e && (e[0] == '0' || e[0] == '1')) return e[0] == '1';
  return std::min(C, O) >= kWinoMinChannels && C + O >= kWinoMinChannelSum && OHW >= kWinoMinPixels &&
         C * O <= kWinoMaxChannelProduct;
}

// For kernels/ops.py's picks_winograd (ctypes).
FG_EXPORT int ConvUsesWinograd(int64_t C, int64_t O, int64_t K, int64_t S, int64_t OHW) {
  return use_winograd(C, O, K, S, OHW) ? 1 : 0;
}
