// Direct convolution kernels (GCC vector extensions): the forward of any stride, the input gradient of
// strided convolutions by output phases, and the weight gradient, each blocked like a GEMM over the padded
// input read in place.
#include "kernels.h"

// ---------------------------------------------------------------------------------------------------
// Direct convolution blocked like a GEMM over "wide" positions (WideConv). Output position q = oh*Wq + ow
// of a sample (0 <= ow < Wq; the columns ow >= OW are computed and dropped) is
//   y[o, q] = b[o] + sum over input channels c and taps t of w[o, c, t] * x[c * cs + off[t] + q],
// so for every (c, t) the inputs of consecutive positions are consecutive floats: a GEMM whose input
// operand is read in place (no im2col copy, no BLAS packing).
// - stride 1: x is the zero-padded input with rows of Wq = W + 2P floats and off[kh*K + kw] = kh*Wq + kw;
// - stride S > 1: x is split into S x S phases, plane (a, b) of channel c holding xpad[S*i + a, S*j + b]
//   (phase_split), and tap (kh, kw) reads plane (kh % S, kw % S) at (kh / S) * Wq + kw / S: exactly the
//   K*K real taps, each a stride-1 slice;
// - the input gradient of a strided convolution (conv_dgrad_phases): one WideConv per output phase,
//   over dy, with that phase's taps.
// A micro tile keeps MR outputs x NR vectors of positions in registers, each step one vector load per
// position vector and one broadcast weight per output. A task is one sample's block of positions for all
// outputs, run in chunks of kChunkChannels input channels: the chunk's input rows stay in L1 while every
// output block passes over them.
// (Raw kernels, 6-10 alternating rounds: 256 -> 256 3x3 at 64 px 22-25 ms against 31-33 on the
// im2col + SGEMM path, PyTorch's 26-27; 16 -> 8 at 256 px 1.8 against 2.3 for the previous direct kernel,
// which kept 8 outputs x 32 pixels per task and re-read the whole input for every 8 outputs.)
static const int64_t kChunkChannels = 16, kTilePositions = 384;

// x must be readable up to x[(N-1)*xs + (C-1)*cs + max(off) + OH*Wq + kWideTail) (the last block of
// positions is rounded up to whole micro tiles; what those extra positions read is dropped).
static const int64_t kWideTail = 64;

struct WideConv {
  const float* x;
  int64_t N, C, xs, cs;        // samples and input channels, their strides in x
  std::vector<int64_t> off;    // the taps' offsets
  int64_t Wq, OH, OW;          // positions per output row, output rows, kept columns
  const float* w;              // [O][C][taps]
  const float* b;              // [O]
  int64_t O;
  float* y;
  int64_t ys, yo, yr, yc;      // y[n, o, oh, ow] is y[n*ys + o*yo + oh*yr + ow*yc]
};

template <int KT, int MR, int NR>
static inline void blocked_tile(const float* xq, int64_t cs, const int64_t* off, const float* wp, int64_t cc,
                                float* acc, int64_t lda) {
  v16 a[MR][NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) a[i][j] = ld(acc + i * lda + 16 * j);
  for (int64_t c = 0; c < cc; ++c, xq += cs)
#pragma GCC unroll 16
    for (int t = 0; t < KT; ++t, wp += MR) {
      const float* r = xq + off[t];
      v16 xv[NR];
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) xv[j] = ld(r + 16 * j);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const v16 s = bc(wp[i]);
#pragma GCC unroll 4
        for (int j = 0; j < NR; ++j) a[i][j] += xv[j] * s;
      }
    }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) st(acc + i * lda + 16 * j, a[i][j]);
}

template <int KT, int MR, int NR>
static void wide_conv(const WideConv& p) {
  const int64_t N = p.N, C = p.C, O = p.O, OH = p.OH, OW = p.OW, Wq = p.Wq;
  const int64_t QV = 16 * NR;                                   // positions per micro tile
  const int64_t Q = (OH * Wq + QV - 1) / QV * QV;               // wide positions per sample, whole tiles
  // Positions per task: kTilePositions, fewer when that leaves under 4 tasks per thread.
  const int64_t per_thread = (N * Q + 4 * pool_threads() - 1) / (4 * pool_threads());
  const int64_t TQ = std::max(QV, std::min(kTilePositions, per_thread) / QV * QV);
  const int64_t tiles = (Q + TQ - 1) / TQ, OB = (O + MR - 1) / MR;
  FloatBuf wt((size_t)(OB * C * KT * MR));                      // [ob][c][t][MR], zero past O
  parallel_for(OB, [&](int64_t ob) {   // (w read in order: one output's row at a time)
    float* d = &wt[(size_t)(ob * C * KT * MR)];
    for (int i = 0; i < MR; ++i) {
      const int64_t o = ob * MR + i;
      const float* src = p.w + o * C * KT;
      for (int64_t r = 0; r < C * KT; ++r) d[r * MR + i] = o < O ? src[r] : 0.f;
    }
  });
  const int64_t* off = p.off.data();
  parallel_for(N * tiles, [&](int64_t task) {
    thread_local std::vector<float> acc;
    const int64_t n = task / tiles, q0 = task % tiles * TQ, nq = std::min(TQ, Q - q0);
    acc.resize((size_t)(OB * MR * TQ));
    for (int64_t o = 0; o < OB * MR; ++o)
      std::fill(&acc[(size_t)(o * TQ)], &acc[(size_t)(o * TQ + nq)], o < O ? p.b[o] : 0.f);
    const float* xn = p.x + n * p.xs + q0;
    for (int64_t c0 = 0; c0 < C; c0 += kChunkChannels) {
      const int64_t cc = std::min(kChunkChannels, C - c0);
      for (int64_t ob = 0; ob < OB; ++ob) {
        const float* wp = &wt[(size_t)((ob * C + c0) * KT * MR)];
        float* at = &acc[(size_t)(ob * MR * TQ)];
        for (int64_t t = 0; t < nq; t += QV)
          blocked_tile<KT, MR, NR>(xn + c0 * p.cs + t, p.cs, off, wp, cc, at + t, TQ);
      }
    }
    // Wide positions -> output rows, the columns ow >= OW dropped.
    const int64_t qe = std::min(q0 + nq, OH * Wq);
    for (int64_t q = q0; q < qe;) {
      const int64_t oh = q / Wq, ow = q % Wq, len = std::min(qe, oh * Wq + OW) - q;
      for (int64_t o = 0; len > 0 && o < O; ++o) {
        float* d = p.y + n * p.ys + o * p.yo + oh * p.yr + ow * p.yc;
        const float* s = &acc[(size_t)(o * TQ + q - q0)];
        if (p.yc == 1)
          memcpy(d, s, len * sizeof(float));
        else
          for (int64_t i = 0; i < len; ++i) d[i * p.yc] = s[i];
      }
      q = (oh + 1) * Wq;
    }
  });
}

// Micro tile with AVX-512 (32 vector registers): 8 outputs x 48 positions, or 4 x 64 for at most 4
// outputs (the last layer of a generator: 64 -> 3 7x7 at 256 px 10.7 ms against 15.1 with 8 x 48).
// Without it (AVX2: 16 registers of 8 floats, a v16 takes two): 6 outputs x 16 positions (12 accumulator
// registers, two for the inputs, one broadcast), 4 x 16 for at most 4 outputs. On an AVX2
// machine, raw kernels (bench/raw_conv.py), ms, 4 x 16 / 6 x 16 / 4 x 32: 32 -> 16 3x3 at 256 px batch 2
// 18.1 / 12.0 / 22.3, 32 -> 64 3x3 stride 2 9.6 / 5.6 / 10.8, 64 -> 128 4x4 stride 2 at 128 px 35.7 / 18.3 /
// 36.9, 32 -> 3 7x7 6.1 / 10.0 / 9.2.
template <int KT>
static void wide_conv_k(const WideConv& p) {
#if defined(__AVX512F__)
  if (p.O <= 4)
    wide_conv<KT, 4, 4>(p);
  else
    wide_conv<KT, 8, 3>(p);
#else
  if (p.O <= 4)
    wide_conv<KT, 4, 1>(p);
  else
    wide_conv<KT, 6, 1>(p);
#endif
}

static void run_wide_conv(const WideConv& p) {
  switch (p.off.size()) {
    case 1: wide_conv_k<1>(p); break;
    case 2: wide_conv_k<2>(p); break;
    case 4: wide_conv_k<4>(p); break;
    case 9: wide_conv_k<9>(p); break;
    case 16: wide_conv_k<16>(p); break;
    case 49: wide_conv_k<49>(p); break;
    default: abort();   // callers check wide_taps
  }
}

// Hq x Wq phase planes of the zero-padded input: x (N,C,H,W) -> xs[n][c][a][b][i][j] = xpad[S*i + a][S*j + b]
// (zero outside the input), with `tail` zeros after the last plane.
static FloatBuf phase_split(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t P, int64_t S,
                            int64_t Hq, int64_t Wq, int64_t tail) {
  const int64_t cs = S * S * Hq * Wq;
  const size_t total = (size_t)(N * C * cs + tail);
  FloatBuf xs(total);
  float* d = xs.data();
  std::fill(d + total - tail, d + total, 0.f);
  parallel_for(N * C, [&](int64_t nc) {
    const float* src = x + nc * H * W;
    float* dst = d + nc * cs;
    for (int64_t a = 0; a < S; ++a)
      for (int64_t b = 0; b < S; ++b)
        for (int64_t i = 0; i < Hq; ++i, dst += Wq) {
          const int64_t h = S * i + a - P;
          if (h < 0 || h >= H) {
            std::fill(dst, dst + Wq, 0.f);
            continue;
          }
          // Columns j with 0 <= S*j + b - P < W: [j0, j1); zeros around them.
          const int64_t j0 = std::min(Wq, (P - b + S - 1) / S);
          const int64_t j1 = std::max(j0, std::min(Wq, (W + P - b + S - 1) / S));
          const float* r = src + h * W + S * j0 + b - P;
          std::fill(dst, dst + j0, 0.f);
          if (S == 2)   // (a constant stride: vectorised)
            for (int64_t j = 0; j < j1 - j0; ++j) dst[j0 + j] = r[2 * j];
          else
            for (int64_t j = 0; j < j1 - j0; ++j) dst[j0 + j] = r[S * j];
          std::fill(dst + j1, dst + Wq, 0.f);
        }
  });
  return xs;
}

// The input of a convolution laid out for the direct kernels (the forward and the weight gradient): per
// channel S x S planes of Hq x Wq floats (cs floats in all), the padded input itself at stride 1 (rows of
// exactly Wq = W + 2P floats), its phase planes above (phase_split); `tail` zeros after the last plane.
struct WideInput {
  int64_t Hq, Wq, cs;
  FloatBuf buf;
  // Where tap (kh, kw) starts within a channel: plane (kh % S, kw % S), row kh / S, column kw / S.
  int64_t tap(int64_t kh, int64_t kw, int64_t S) const {
    return ((kh % S) * S + kw % S) * Hq * Wq + kh / S * Wq + kw / S;
  }
};

static WideInput wide_input(const float* x, const Geo& g, int64_t tail) {
  const int64_t S = g.S, Hq = (g.H + 2 * g.P + S - 1) / S, Wq = (g.W + 2 * g.P + S - 1) / S;
  return {Hq, Wq, S * S * Hq * Wq,
          S == 1 ? pad_input(x, g.N, g.C, g.H, g.W, g.P, Wq, tail)
                 : phase_split(x, g.N, g.C, g.H, g.W, g.P, S, Hq, Wq, tail)};
}

// The direct forward of any stride (K*K must be a compiled tap count, wide_taps). The reads of the last
// tile end at most K - 1 + kWideTail floats past the last plane.
void conv_fwd_direct(const float* x, const float* w, const float* b, float* y, const Geo& g) {
  const WideInput in = wide_input(x, g, kWideTail + g.K);
  WideConv p{in.buf.data(), g.N, g.C, g.C * in.cs, in.cs, {}, in.Wq, g.OH, g.OW, w, b, g.O, y, g.O * g.OHW(), g.OHW(),
             g.OW, 1};
  for (int64_t kh = 0; kh < g.K; ++kh)
    for (int64_t kw = 0; kw < g.K; ++kw) p.off.push_back(in.tap(kh, kw, g.S));
  run_wide_conv(p);
}

// The input gradient of a convolution with stride S > 1, by output phases: dx at padded position
// (S*i + a, S*j + b) only takes the taps kh = S*m + a, kw = S*n + b,
//   dxpad[c, S*i + a, S*j + b] = sum over o, m, n of w[o, c, S*m + a, S*n + b] * dy[o, i - m, j - n],
// a stride-1 correlation of the zero-padded dy with that phase's taps, flipped: one WideConv per phase
// (Ka x Kb taps, Ka = ceil((K - a) / S)), its outputs written to every S-th row and column of dx. Every
// element of dx belongs to exactly one phase. (Replaces w^T x dy through SGEMM and its col2im scatter.)
void conv_dgrad_phases(const float* dy, const float* w, float* dx, const Geo& g) {
  const int64_t N = g.N, C = g.C, O = g.O, K = g.K, S = g.S, P = g.P, H = g.H, W = g.W;
  const int64_t Pd = phase_taps(K, S, 0) - 1;          // dy gets Pd zero rows and columns before it
  // Phase a covers the outputs i in [lo, hi) with 0 <= S*i + a - P < H, and reads dy rows i - Ka + 1 ..
  // i: rows of the padded dy up to hi - 1 + Pd (below dy's own rows: zeros).
  auto lo = [&](int64_t a) { return (P - a + S - 1) / S; };
  auto hi = [&](int64_t a, int64_t L) { return (P + L - a + S - 1) / S; };
  const int64_t Hd = Pd + std::max(g.OH + Pd, hi(0, H)), Wd = Pd + std::max(g.OW + Pd, hi(0, W));
  FloatBuf dyp = pad_input(dy, N, O, g.OH, g.OW, Pd, Wd, Wd + kWideTail, Hd);
  const std::vector<float> zeros((size_t)C, 0.f);
  // Every phase's taps, flipped, as [c][o][m'][n'], in one pass over w (one (o, c) kernel at a time: w read
  // a cache line at a time instead of one float per phase and line). The tables say, for each of the K*K
  // taps in phase order, where it comes from in a kernel and where it goes.
  std::vector<int64_t> base(S * S + 1, 0), src_at, dst_at, taps_of;
  for (int64_t a = 0; a < S; ++a)
    for (int64_t b = 0; b < S; ++b) {
      const int64_t Ka = phase_taps(K, S, a), Kb = phase_taps(K, S, b), ab = a * S + b;
      base[ab + 1] = base[ab] + C * O * Ka * Kb;
      for (int64_t m = 0; m < Ka; ++m)
        for (int64_t n = 0; n < Kb; ++n) {
          src_at.push_back((S * (Ka - 1 - m) + a) * K + S * (Kb - 1 - n) + b);
          dst_at.push_back(base[ab] + m * Kb + n);   // + (c * O + o) * Ka * Kb, below
          taps_of.push_back(Ka * Kb);
        }
    }
  FloatBuf wph((size_t)base[S * S]);
  parallel_for(C, [&](int64_t c) {
    for (int64_t o = 0; o < O; ++o) {
      const float* src = w + (o * C + c) * K * K;
      for (int64_t t = 0; t < K * K; ++t) wph[(size_t)(dst_at[t] + (c * O + o) * taps_of[t])] = src[src_at[t]];
    }
  });
  for (int64_t a = 0; a < S; ++a)
    for (int64_t b = 0; b < S; ++b) {
      const int64_t Ka = phase_taps(K, S, a), Kb = phase_taps(K, S, b);
      const int64_t i0 = lo(a), j0 = lo(b), Ma = hi(a, H) - i0, Mb = hi(b, W) - j0;
      if (Ma <= 0 || Mb <= 0) continue;
      // Tap (m', n') reads dy[i - (Ka - 1 - m'), j - (Kb - 1 - n')] with weight w[., ., S*(Ka-1-m') + a, ...].
      WideConv p{dyp.data(), N, O, O * Hd * Wd, Hd * Wd, {}, Wd, Ma, Mb, &wph[(size_t)base[a * S + b]], zeros.data(),
                 C, dx + (S * i0 + a - P) * W + S * j0 + b - P, C * H * W, H * W, S * W, S};
      for (int64_t m = 0; m < Ka; ++m)
        for (int64_t n = 0; n < Kb; ++n) p.off.push_back((i0 - Ka + 1 + Pd + m) * Wd + j0 - Kb + 1 + Pd + n);
      run_wide_conv(p);
    }
}
// ---------------------------------------------------------------------------------------------------
// Weight gradient blocked like a GEMM over the forward's wide positions (more than 8 outputs, at least
// kBlockedWgradMinPositions output pixels per sample; blocked_wgrad):
// dw^T[r, o] = sum over q of X[r, q] dy^T[q, o], r = (c, kh, kw), X[r, q] = xp[c][kh * Wp + kw + q] read in
// place (at stride S > 1 the phase planes of conv_fwd_direct: row (c, kh, b) holds the taps kw = S*n + b),
// dy^T a transposed copy of one block of positions per task step (zero at the dropped columns ow >= OW).
// A micro tile holds RT rows x KW taps x NV vectors of 16 outputs: per position NV vector loads of dy^T
// and RT * KW broadcast inputs. Each thread adds into its own dw^T; those are summed and
// transposed at the end. (Raw kernels, median ms against the im2col path: 256 -> 256 3x3 at
// 64 px 22-27 against 29-34 SGEMM, 128 -> 64 at 128 px 10.4 against 22.1 SGEMM, 64 -> 32 at 256 px 14-17
// against 31-35 for the 4-output kernel below, 32 -> 16 4.3 against 8.1, 64 -> 32 7x7 89 against 183.
// Over few pixels the per-thread dw^T passes cost more than they save: 256 -> 512 4x4 at 31 x 31 output
// pixels 47 against 29 SGEMM, 256 -> 256 3x3 at 32 x 32 a tie; there the older kernels stay.)
template <int KW, int RT, int NV>
static inline void wgrad_tile(const float* const* xr, const float* dyt, int64_t ldt, int64_t nq, float* dwt,
                              int64_t ldw) {
  v16 a[RT * KW][NV];
#pragma GCC unroll 32
  for (int i = 0; i < RT * KW; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) a[i][j] = bc(0.f);
  for (int64_t q = 0; q < nq; ++q, dyt += ldt) {
    v16 d[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) d[j] = ld(dyt + 16 * j);
#pragma GCC unroll 8
    for (int t = 0; t < RT; ++t)
#pragma GCC unroll 8
      for (int kw = 0; kw < KW; ++kw) {
        const v16 s = bc(xr[t][q + kw]);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) a[t * KW + kw][j] += s * d[j];
      }
  }
#pragma GCC unroll 32
  for (int i = 0; i < RT * KW; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) st(dwt + i * ldw + 16 * j, ld(dwt + i * ldw + 16 * j) + a[i][j]);
}

template <int KW, int RT, int NV>
static void conv_wgrad_direct(const float* dy, const float* x, float* dw, const Geo& g) {
  const int64_t N = g.N, C = g.C, O = g.O, K = g.K, S = g.S, OH = g.OH, OW = g.OW, KK = K * K;
  const int64_t OV = 16 * NV, Op = (O + OV - 1) / OV * OV;            // outputs in whole tiles
  // Rows (c, kh, b) of KW taps kw = S*n + b (n < KW, the taps kw >= K computed and dropped): at stride 1
  // the rows (c, kh) of K taps.
  const int64_t rows = C * K * S, RB = (rows + RT - 1) / RT;
  const int64_t Rp = RB * RT * KW;                                    // dw^T rows, the last block padded
  const int64_t QB = std::max<int64_t>(64, std::min<int64_t>(1024, (int64_t(1) << 16) / Op));
  const WideInput in = wide_input(x, g, QB + K);
  const int64_t Wq = in.Wq, cs = in.cs, Q = OH * Wq;                  // wide positions per sample
  const int64_t qblocks = (Q + QB - 1) / QB, steps = N * qblocks;
  const int64_t parts = std::min<int64_t>(steps, pool_threads());
  FloatBuf dwt((size_t)(parts * Rp * Op));   // each thread zeroes its own dw^T
  parallel_for(parts, [&](int64_t part) {
    thread_local std::vector<float> dyt, zero;
    dyt.resize((size_t)(QB * Op));
    zero.assign((size_t)(QB + K), 0.f);
    float* acc = &dwt[(size_t)(part * Rp * Op)];
    std::fill(acc, acc + Rp * Op, 0.f);
    for (int64_t step = part; step < steps; step += parts) {
      const int64_t n = step / qblocks, q0 = step % qblocks * QB, nq = std::min(QB, Q - q0);
      // dy^T for positions [q0, q0 + nq): row q - q0 holds dy[n, :, oh, ow] (zeros for ow >= OW, o >= O).
      // In 16-output strips: each row of a strip is one cache line, gathered from 16 dy planes.
      const float* dyn = dy + n * O * OH * OW;
      for (int64_t o0 = 0; o0 < Op; o0 += 16) {
        const int64_t no = std::max<int64_t>(0, std::min<int64_t>(16, O - o0));
        for (int64_t q = q0; q < q0 + nq; ++q) {
          float* d = &dyt[(size_t)((q - q0) * Op + o0)];
          const int64_t oh = q / Wq, ow = q - oh * Wq;
          int64_t i = 0;
          if (ow < OW)
            for (const float* src = dyn + o0 * OH * OW + oh * OW + ow; i < no; ++i) d[i] = src[i * OH * OW];
          for (; i < 16; ++i) d[i] = 0.f;
        }
      }
      const float* xn = in.buf.data() + n * C * cs + q0;
      for (int64_t rb = 0; rb < RB; ++rb) {
        const float* xr[RT];
        for (int t = 0; t < RT; ++t) {
          const int64_t row = rb * RT + t, c = row / (K * S), kh = row / S % K, b = row % S;
          xr[t] = row < rows ? xn + c * cs + in.tap(kh, b, S) : zero.data();
        }
        for (int64_t o0 = 0; o0 < Op; o0 += OV)
          wgrad_tile<KW, RT, NV>(xr, &dyt[(size_t)o0], Op, nq, acc + rb * RT * KW * Op + o0, Op);
      }
    }
  });
  // dw[o, c, kh, kw] = sum over parts of dw^T[((c, kh, kw % S), kw / S), o].
  parallel_for(O, [&](int64_t o) {
    float* d = dw + o * C * KK;
    for (int64_t r = 0; r < C * KK; ++r) {
      const int64_t kw = r % K, t = ((r / K) * S + kw % S) * KW + kw / S;
      float s = 0.f;
      for (int64_t p = 0; p < parts; ++p) s += dwt[(size_t)((p * Rp + t) * Op + o)];
      d[r] = s;
    }
  });
}

// The micro tile: RT rows x KW taps x 32 outputs from 32 outputs on, else RT1 rows x KW taps x 16 outputs
// (taps over rows of 16 outputs: 32 -> 16 3x3 at 256 px 4.3 ms against 6.8 with 3 x 3 x 32).
template <int KW, int RT, int RT1>
static void conv_wgrad_direct_k(const float* dy, const float* x, float* dw, const Geo& g) {
  if (g.O >= 32)
    conv_wgrad_direct<KW, RT, 2>(dy, x, dw, g);
  else
    conv_wgrad_direct<KW, RT1, 1>(dy, x, dw, g);
}

// dw[o,c,kh,kw] = sum over n, oh, ow of dy[n,o,oh,ow] * xpad[n,c,oh+kh,ow+kw], for at most 8 outputs, few
// pixels or 1x1 kernels. Each task is (4 output channels, a block of output rows): its dy rows (<= 32 KB)
// stay in L1 while every (input channel, kernel row) runs over them with 4 x K vector accumulators over 16
// pixels; each task writes its own partial dw, summed at the end. (One task per (4 outputs, input
// channel, kernel row) over all rows re-read dy from memory C*K times: 32 -> 16 3x3 at 256 px took 16 ms
// against PyTorch's 8.)
// Outputs per task: their K accumulators each must stay in registers. AVX-512 has 32 of them and 4
// outputs won there. With AVX2's 16, a[NO][K] of two-register v16s spills beyond 2 outputs
// at K=3 and 1 output above: 32 -> 3 7x7 at 256 px took 15.7 ms with 2 or 4 outputs, 7.6 with 1
// (PyTorch 16.1); 16 -> 8 3x3 took 5.5 with 2 against 6.2 with 4 and 6.3 with 1 (bench/raw_conv.py).
static constexpr int wgrad_outputs(int K) {
#if defined(__AVX512F__)
  (void)K;
  return 4;
#else
  return K <= 3 ? 2 : 1;
#endif
}
template <int K, int NO>
static void wgrad(const float* dyp, const float* xp, float* dw, int64_t N, int64_t O, int64_t C, int64_t OH,
                  int64_t OWc, int64_t Hp, int64_t Wp) {
  const int64_t OB = (O + NO - 1) / NO;
  const int64_t RB = std::max<int64_t>(1, std::min<int64_t>(OH, 2048 / OWc));   // rows per block
  const int64_t blocks = (OH + RB - 1) / RB, CKK = C * K * K;
  std::vector<float> part((size_t)(OB * blocks * NO * CKK));
  parallel_for(OB * blocks, [&](int64_t task) {
    const int64_t ob = task / blocks, r0 = task % blocks * RB, r1 = std::min(OH, r0 + RB);
    const int64_t nout = std::min<int64_t>(NO, O - ob * NO);
    float* pw = &part[(size_t)(task * NO * CKK)];   // [NO][C][K][K]
    for (int64_t c = 0; c < C; ++c)
      for (int64_t kh = 0; kh < K; ++kh) {
        v16 a[NO][K];
        for (int o = 0; o < NO; ++o)
          for (int k = 0; k < K; ++k) a[o][k] = bc(0.f);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t oh = r0; oh < r1; ++oh) {
            const float* xr = xp + ((n * C + c) * Hp + oh + kh) * Wp;
            const float* g[NO];
            for (int o = 0; o < NO; ++o)
              g[o] = dyp + ((n * O + ob * NO + std::min<int64_t>(o, nout - 1)) * OH + oh) * OWc;
            for (int64_t ow0 = 0; ow0 < OWc; ow0 += 16) {
              v16 gv[NO];
#pragma GCC unroll 4
              for (int o = 0; o < NO; ++o) gv[o] = ld(g[o] + ow0);
#pragma GCC unroll 8
              for (int kw = 0; kw < K; ++kw) {
                const v16 v = ld(xr + ow0 + kw);
#pragma GCC unroll 4
                for (int o = 0; o < NO; ++o) a[o][kw] += gv[o] * v;
              }
            }
          }
        for (int o = 0; o < NO; ++o)
          for (int kw = 0; kw < K; ++kw) pw[((o * C + c) * K + kh) * K + kw] = hsum(a[o][kw]);
      }
  });
  parallel_for(OB, [&](int64_t ob) {
    const int64_t nout = std::min<int64_t>(NO, O - ob * NO);
    for (int64_t o = 0; o < nout; ++o) {
      float* d = dw + (ob * NO + o) * CKK;
      for (int64_t i = 0; i < CKK; ++i) {
        float s = 0.f;
        for (int64_t blk = 0; blk < blocks; ++blk) s += part[(size_t)(((ob * blocks + blk) * NO + o) * CKK + i)];
        d[i] = s;
      }
    }
  });
}

// dw by the direct kernels: the blocked kernel where blocked_wgrad holds, else the 4-output kernel (K in
// {1, 3, 4, 7}). False for other kernel sizes.
bool conv_wgrad_by_direct(const float* dy, const float* x, float* dw, const Geo& g) {
  const int64_t N = g.N, O = g.O, OH = g.OH, OW = g.OW, C = g.C, H = g.H, W = g.W, P = g.P, K = g.K, S = g.S;
  if (blocked_wgrad(K, S, O, OH * OW)) {
    switch (S == 1 ? K : 2) {   // taps per row (above stride 1, blocked_wgrad holds for 2 only)
#if defined(__AVX512F__)
      case 2: conv_wgrad_direct_k<2, 6, 8>(dy, x, dw, g); return true;
      case 3: conv_wgrad_direct_k<3, 3, 6>(dy, x, dw, g); return true;
      case 4: conv_wgrad_direct_k<4, 2, 4>(dy, x, dw, g); return true;
      case 7: conv_wgrad_direct_k<7, 1, 2>(dy, x, dw, g); return true;
#else   // AVX2: one vector of 16 outputs, at most 7 x 16 accumulators (two registers each)
      case 2: conv_wgrad_direct<2, 3, 1>(dy, x, dw, g); return true;
      case 3: conv_wgrad_direct<3, 2, 1>(dy, x, dw, g); return true;
      case 4: conv_wgrad_direct<4, 1, 1>(dy, x, dw, g); return true;
      case 7: conv_wgrad_direct<7, 1, 1>(dy, x, dw, g); return true;
#endif
    }
  }
  const int64_t Hp = H + 2 * P;
  const int64_t OWc = (OW + 15) / 16 * 16;
  const int64_t Wp = (OWc + K + 15) / 16 * 16;
  // dy rows padded to whole vectors with zeros, so the tail of a row contributes nothing (a copy only when
  // the rows are not whole vectors already).
  FloatBuf dyp(OW == OWc ? 0 : (size_t)(N * O * OH * OWc));
  const float* dyv = dy;
  if (OW != OWc) {
    parallel_for(N * O, [&](int64_t r0) {
      for (int64_t r = r0 * OH; r < (r0 + 1) * OH; ++r) {
        memcpy(&dyp[(size_t)(r * OWc)], dy + r * OW, OW * sizeof(float));
        std::fill(&dyp[(size_t)(r * OWc + OW)], &dyp[(size_t)((r + 1) * OWc)], 0.f);
      }
    });
    dyv = dyp.data();
  }
  FloatBuf xp = pad_input(x, N, C, H, W, P, Wp);
  switch (K) {
    case 1: wgrad<1, wgrad_outputs(1)>(dyv, xp.data(), dw, N, O, C, OH, OWc, Hp, Wp); break;
    case 3: wgrad<3, wgrad_outputs(3)>(dyv, xp.data(), dw, N, O, C, OH, OWc, Hp, Wp); break;
    case 4: wgrad<4, wgrad_outputs(4)>(dyv, xp.data(), dw, N, O, C, OH, OWc, Hp, Wp); break;
    case 7: wgrad<7, wgrad_outputs(7)>(dyv, xp.data(), dw, N, O, C, OH, OWc, Hp, Wp); break;
    default: return false;
  }
  return true;
}

