// CPU kernels for MindSpore's ops.Custom(func_type="aot"), used by models/native.py on CPU only.
//
// Why: MindSpore 2.10's oneDNN runs NCHW convolutions on this kind of CPU at 15-90 GFLOP/s (capped at
// AVX2; its AVX-512 path is a reference loop), PyTorch's at 45-150; its ReverseV2, StridedSlice and
// ReduceSum around them cost tens of milliseconds more per call (bench/conv_kernels.py, the profiles in
// docs/notes_session5.md and docs/notes_session6.md).
//
// Conv2dFwd(x[N,C,H,W], w[O,C,K,K], b[O], pad[p + 1], stride[s]) -> y[N,O,OH,OW], OH = (H+2p-K)/s + 1
//   square kernel, zero padding p <= K-1 on all sides, bias added (pass zeros for none).
// Conv2dDgrad(dy, w, x, pad, stride) -> dx: the input gradient (x for its shape).
// Conv2dWgrad(dy, x, w, pad, stride) -> dw: the weight gradient (w for its shape).
// ConvTransposeFwd(x, w, b, pad, stride, outpad) -> y: PyTorch's ConvTranspose2d (the input gradient of
//   the matching convolution, plus the bias).
// BiasGrad(dy) -> db.
// The padding p and the stride s are the lengths of int32 arguments (models/native.py: shape inference
// sees shapes only); their values are not read.
//
// Three implementations behind the convolution entry points, chosen per call (use_winograd, use_gemm):
// - direct: GCC vector extensions; the forward, the input gradient and (from 9 outputs over many pixels)
//   the weight gradient blocked like a GEMM over the padded input read in place (WideConv), strided
//   convolutions split into stride-1 phases; else a weight gradient of 4 outputs x K taps over 16 pixels;
// - im2col + SGEMM: a block of pixels unrolled into a (C*K*K, pixels) matrix, multiplied by the weights
//   with the OpenBLAS that NumPy's wheel carries (models/native.py passes its path in FACEGAN_BLAS_LIB;
//   it is loaded with dlopen, each call single-threaded inside our own pool). Best for weight gradients
//   at large fan-in, 1x1 convolutions and large fan-in over few pixels, and the only path for what the
//   direct kernels lack (direct_covers: other kernel sizes and strides). FACEGAN_NATIVE_GEMM=0 / 1 forces
//   the direct / GEMM path where both exist. Below 256 output pixels per sample, the samples of a batch
//   are folded side by side into one matrix (fold_samples);
// - Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions with enough channels and pixels (the residual
//   blocks of CycleGAN and U-GAT-IT): transforms of 4 x 4 output tiles on our threads, the products as
//   36 SGEMMs. FACEGAN_NATIVE_WINOGRAD=0 / 1 forces it off / on.
//
// Everything is built with -march=native by models/native.py (so AVX-512 where the CPU has it) and runs
// on a small thread pool of their own whose idle workers sleep: OpenMP's workers spin
// after each parallel region (libgomp's default wait policy), and on a 2-core machine that spinning took
// the cores from MindSpore's next kernels (its instance-norm BatchNorm ran 3x slower after each conv).
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <functional>
#include <mutex>
#include <memory>
#include <thread>
#include <vector>

// parallel_for(n, f): f(i) for i in [0, n) on all pool threads (the caller included), dynamic order.
// Threads: FACEGAN_NATIVE_THREADS, else the CPUs this process may run on. One job at a time.
class Pool {
 public:
  static Pool& get() {
    static Pool pool;
    return pool;
  }
  void parallel_for(int64_t n, const std::function<void(int64_t)>& f) {
    if (n <= 0) return;
    std::lock_guard<std::mutex> job_lock(job_mutex_);
    if (workers_.empty() || n == 1) {
      for (int64_t i = 0; i < n; ++i) f(i);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = &f;
      n_ = n;
      next_.store(0);
      pending_ = (int)workers_.size();
      ++generation_;
    }
    cv_.notify_all();
    work();
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    fn_ = nullptr;
  }
  int threads() const { return (int)workers_.size() + 1; }

 private:
  Pool() {
    int t = 0;
    if (const char* e = std::getenv("FACEGAN_NATIVE_THREADS")) t = std::atoi(e);
    if (t <= 0) {
      cpu_set_t set;
      t = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : (int)std::thread::hardware_concurrency();
    }
    for (int i = 1; i < std::max(1, t); ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  void work() {
    for (int64_t i; (i = next_.fetch_add(1)) < n_;) (*fn_)(i);
  }
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work();
      {
        std::lock_guard<std::mutex> lk(m_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }
  std::vector<std::thread> workers_;
  std::mutex job_mutex_, m_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

static void parallel_for(int64_t n, const std::function<void(int64_t)>& f) { Pool::get().parallel_for(n, f); }

// v16: 16 floats, the kernels' unit of work. With AVX-512 one register (GCC's generic vector). Without it,
// two 8-float vectors in a struct: GCC lowers a 64-byte generic vector on AVX2 by keeping arrays of them
// (a micro tile's accumulators) in memory and moving their halves through general registers (vmovq /
// vpinsrq per step), which made the direct kernels 3-10x slower than PyTorch on an AVX2 machine (session
// 16, bench/raw_conv.py); the struct's halves stay in ymm registers.
#if defined(__AVX512F__)
typedef float v16 __attribute__((vector_size(64)));
static inline v16 bc(float s) { return (v16){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }
#else
typedef float v8 __attribute__((vector_size(32)));
struct v16 {
  v8 lo, hi;
  float operator[](int i) const { return i < 8 ? lo[i] : hi[i - 8]; }
};
static_assert(sizeof(v16) == 64, "v16 holds 16 contiguous floats");
#define V16_INLINE static inline __attribute__((always_inline))
V16_INLINE v16 operator+(v16 a, v16 b) { return {a.lo + b.lo, a.hi + b.hi}; }
V16_INLINE v16 operator-(v16 a, v16 b) { return {a.lo - b.lo, a.hi - b.hi}; }
V16_INLINE v16 operator*(v16 a, v16 b) { return {a.lo * b.lo, a.hi * b.hi}; }
V16_INLINE v16 operator*(float s, v16 a) { return {s * a.lo, s * a.hi}; }
V16_INLINE v16 operator*(v16 a, float s) { return {a.lo * s, a.hi * s}; }
V16_INLINE v16 operator-(v16 a) { return {-a.lo, -a.hi}; }
V16_INLINE v16& operator+=(v16& a, v16 b) { a.lo += b.lo; a.hi += b.hi; return a; }
V16_INLINE v16& operator-=(v16& a, v16 b) { a.lo -= b.lo; a.hi -= b.hi; return a; }
V16_INLINE v16 bc(float s) { const v8 h = {s, s, s, s, s, s, s, s}; return {h, h}; }
// (not memcpy: GCC copies a struct through a stack slot in 16-byte pieces, and the FMAs then read it there)
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));
V16_INLINE v16 ld(const float* p) { return {*(const v8u*)p, *(const v8u*)(p + 8)}; }
V16_INLINE void st(float* p, v16 v) { *(v8u*)p = v.lo; *(v8u*)(p + 8) = v.hi; }
#undef V16_INLINE
#endif
#if defined(__AVX512F__)
static inline v16 ld(const float* p) { v16 v; memcpy(&v, p, 64); return v; }
static inline void st(float* p, v16 v) { memcpy(p, &v, 64); }
#endif
static inline float hsum(v16 v) {
  float s = 0.f;
  for (int i = 0; i < 16; ++i) s += v[i];
  return s;
}

// A float buffer left uninitialised: std::vector would zero it on the calling thread alone before the
// parallel writes fill it anyway (for a 16-channel 256 px input, a 4.5 MB single-threaded pass per call).
struct FloatBuf {
  std::unique_ptr<float[]> p;
  explicit FloatBuf(size_t n) : p(new float[n]) {}
  float* data() const { return p.get(); }
  float& operator[](size_t i) { return p[i]; }
};

// x (N,C,H,W) -> zero-padded copy (N,C,Hp,Wp): P zero rows and columns before the input, the rest of each
// row and plane zero (Wp >= W + 2P; Hp = H + 2P unless given larger), and `tail` zeros after the last plane.
// Each plane's borders are zeroed by the thread that copies its rows.
static FloatBuf pad_input(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t P, int64_t Wp,
                          int64_t tail = 64, int64_t Hp = 0) {
  Hp = std::max(Hp, H + 2 * P);
  const size_t total = (size_t)(N * C * Hp * Wp + tail);
  FloatBuf xp(total);
  float* d = xp.data();
  std::fill(d + total - tail, d + total, 0.f);
  parallel_for(N * C, [&](int64_t nc) {
    float* pl = d + nc * Hp * Wp;
    std::fill(pl, pl + P * Wp, 0.f);
    for (int64_t h = 0; h < H; ++h) {
      float* r = pl + (h + P) * Wp;
      std::fill(r, r + P, 0.f);
      memcpy(r + P, x + (nc * H + h) * W, W * sizeof(float));
      std::fill(r + P + W, r + Wp, 0.f);
    }
    std::fill(pl + (H + P) * Wp, pl + Hp * Wp, 0.f);
  });
  return xp;
}

// ---------------------------------------------------------------------------------------------------
// SGEMM from a BLAS loaded at run time. Only a BLAS whose thread count can be set per calling thread
// (OpenBLAS >= 0.3.27: openblas_set_num_threads_local) is used: each call runs single-threaded on one of
// our pool's threads, so the BLAS never starts (and spins) threads of its own beside MindSpore's.
class Blas {
 public:
  static const Blas& get() {
    static Blas blas;
    return blas;
  }
  bool ok() const { return (g64_ || g32_) && local_threads_; }
  // Row-major C[M,N] = A[M,K] (or A^T) x B[K,N] (or B^T) + beta * C.
  void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
            int64_t ldb, float beta, float* C, int64_t ldc) const {
    const int old = local_threads_(1);
    const int t_a = ta ? 112 : 111, t_b = tb ? 112 : 111;   // CblasTrans / CblasNoTrans
    if (g64_)
      g64_(101, t_a, t_b, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);   // 101: CblasRowMajor
    else
      g32_(101, t_a, t_b, (int)M, (int)N, (int)K, 1.f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    local_threads_(old);
  }

 private:
  typedef void (*Sgemm64)(int, int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                          int64_t, float, float*, int64_t);
  typedef void (*Sgemm32)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                          float*, int);
  typedef int (*Threads)(int);
  Blas() {
    const char* path = std::getenv("FACEGAN_BLAS_LIB");
    if (!path || !*path) return;
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    g64_ = (Sgemm64)dlsym(h, "scipy_cblas_sgemm64_");   // NumPy's wheel: 64-bit integers, prefixed names
    if (!g64_) g64_ = (Sgemm64)dlsym(h, "cblas_sgemm64_");
    if (!g64_) g32_ = (Sgemm32)dlsym(h, "cblas_sgemm");
    local_threads_ = (Threads)dlsym(h, "openblas_set_num_threads_local");
  }
  Sgemm64 g64_ = nullptr;
  Sgemm32 g32_ = nullptr;
  Threads local_threads_ = nullptr;
};

// Which convolutions go through SGEMM where the direct kernels cover them (bench/conv_kernels.py and per-op
// timings, docs/notes_session6.md, docs/notes_session10.md and docs/notes_session11.md):
// - forward (and the stride-1 input gradient, which is a forward on dy): the blocked direct kernel, except
//   with fewer than kGemmMaxPositions output pixels, fan-in C*K*K >= 1024 and >= 32 outputs (the deepest
//   discriminator layers: 1024 -> 2048 4x4 at 7 x 7 output pixels 52-66 ms GEMM against 77-84 direct,
//   whose wide positions and packed weights cost more than the arithmetic there);
// - the input gradient of a stride-1 4x4 convolution into >= kDgrad4GemmMinOut channels with fan-in O*K*K
//   >= 1024: SGEMM (session 14, batch 1, ms direct / SGEMM: 128 -> 256 at 31 x 31 px 10.0 / 5.9, 256 -> 512
//   at 31 x 31 38.8 / 22.9, 512 -> 1024 at 7 x 7 56.5 / 7.9; 64 -> 128 at 63 x 63 5.9 / 5.8; 32 -> 64 at
//   127 x 127 5.9 / 8.1);
// - the input gradient of a strided convolution: by phases on the direct kernel from kPhaseDgradMinPixels
//   input pixels on (below, each phase has too few positions to share out: 256 -> 512 4x4 stride 2 at
//   18 x 18 px 7.8 ms against 3.0 SGEMM; 64 -> 128 4x4 at 66 x 66 2.3 against 2.8);
// - the weight gradient: the blocked direct kernel with > 8 outputs over >= kBlockedWgradMinPositions
//   output pixels (conv_wgrad_direct); else SGEMM at fan-in >= 1024 with >= 16 outputs (session 7: 64 ->
//   32 3x3 at 256 px 28.9 / 32.6 ms 4-output direct kernel against 38.5 / 34.6 GEMM in two runs);
// - 1x1 convolutions (the direct kernels have none at stride > 1). At stride 1 the input is its own im2col
//   matrix (`pointwise`): SGEMM reads it and writes the output in place. Session 12, ms, direct / SGEMM,
//   at 256 px, batch 2: 32 -> 3 forward 2.0-2.6 / 1.15, the input gradient of 3 -> 32 2.7-4.1 / 1.3-1.5;
//   session 6: 32 -> 32 weight gradient 6.8 / 3.7, 64 -> 256 at 64 px forward 2.5 / 1.7.
static const int64_t kGemmMaxPositions = 128, kGemmMinFanIn = 1024, kGemmMinOut = 32;
static const int64_t kWgradGemmMinFanIn = 1024, kWgradGemmMinOut = 16, kBlockedWgradMinPositions = 2048;
static const int64_t kPhaseDgradMinPixels = 2048, kDgrad4GemmMinOut = 128;
enum ConvPart { kForward = 0, kWeightGrad = 1, kInputGrad = 2 };

// The tap counts the blocked direct kernel is compiled for (run_wide_conv): K x K for K in {1, 3, 4, 7}, and
// the output phases of 3x3 and 4x4 kernels at stride 2 (conv_dgrad_phases).
static bool wide_taps(int64_t KT) { return KT == 1 || KT == 2 || KT == 4 || KT == 9 || KT == 16 || KT == 49; }

// The taps of a K-tap kernel dimension that fall on phase a at stride S: a, a + S, ... (ceil((K - a) / S)).
static int64_t phase_taps(int64_t K, int64_t S, int64_t a) { return (K - a + S - 1) / S; }

// Whether a weight gradient takes the blocked direct kernel (conv_wgrad_direct): K > 1, more than 8
// outputs over at least kBlockedWgradMinPositions output pixels; at stride S > 1, ceil(K / S) = 2 taps
// per phase row (3x3 and 4x4 kernels at stride 2).
static bool blocked_wgrad(int64_t K, int64_t S, int64_t O, int64_t OHW) {
  if (S > 1 && (K < S || phase_taps(K, S, 0) != 2)) return false;
  return K > 1 && O > 8 && OHW >= kBlockedWgradMinPositions;
}

// Whether the direct kernels can run this part of a convolution at all. Stride 1: K in {1, 3, 4, 7} (the
// weight gradient's 4-output kernel covers the rest). Stride S > 1 (K >= S): the forward's K*K taps, every
// output phase of the input gradient (ceil((K - a) / S) x ceil((K - b) / S) taps), the blocked weight gradient.
static bool direct_covers(int64_t K, int64_t S, int64_t O, int64_t OHW, ConvPart part) {
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
static bool use_gemm(int64_t fan_in, int64_t O, int64_t K, int64_t S, int64_t OHW, ConvPart part) {
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

// For models/native.picks_gemm (ctypes): the path one part (0: forward, 1: weight gradient, 2: input
// gradient) of a convolution takes, OHW the output pixels per sample of that part.
extern "C" int ConvUsesGemm(int64_t fan_in, int64_t O, int64_t K, int64_t S, int64_t OHW, int64_t part) {
  return use_gemm(fan_in, O, K, S, OHW, ConvPart(part)) ? 1 : 0;
}

// An im2col block holds about kBlockFloats values (2 MB; 1-4 MB measured alike).
static const int64_t kBlockFloats = int64_t(1) << 19;

// Pixels per im2col block of all C*K*K rows: whole 64-pixel multiples, at least 256 (fewer pixels per
// call and SGEMM spends its time re-packing the weights).
static int64_t gemm_tile(int64_t R, int64_t OHW) {
  const int64_t t = std::max<int64_t>(256, kBlockFloats / R / 64 * 64);
  return std::min(t, OHW);
}

// gemm_tile, made smaller (whole 64-pixel multiples, at least 256) where N samples of OHW pixels would
// otherwise give fewer than two tasks per thread (128 -> 128 1x1 at 64 x 64 px, batch 1: one block).
static int64_t pixel_tile(int64_t R, int64_t OHW, int64_t N) {
  const int64_t t = gemm_tile(R, OHW), want = (2 * Pool::get().threads() + N - 1) / N;
  if ((OHW + t - 1) / t >= want) return t;
  return std::min(OHW, std::max<int64_t>(256, (OHW + want - 1) / want + 63) / 64 * 64);
}

// The geometry of one convolution: x (N,C,H,W), w (O,C,K,K), zero padding P, stride S, y (N,O,OH,OW).
struct Geo {
  int64_t N, C, H, W, O, K, P, S, OH, OW;
  Geo(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k, int64_t p, int64_t s)
      : N(n), C(c), H(h), W(w), O(o), K(k), P(p), S(s), OH((h + 2 * p - k) / s + 1), OW((w + 2 * p - k) / s + 1) {}
  int64_t R() const { return C * K * K; }
  int64_t OHW() const { return OH * OW; }
};

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
  const int64_t want = per_thread * Pool::get().threads();
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
  const int64_t threads = Pool::get().threads();
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
// values beside an O x R x np product). Session 14, 512 -> 1024 4x4 at 7 x 7 px, batch 1: 11.7 ms as one
// task, 7.1 ms in four (8.3 against 12.3 ms inside the U-GAT-IT step, instrumented build).
static void conv_fwd_gemm(const float* x, const float* w, const float* b, float* y, const Geo& g) {
  if (const int64_t nb = fold_samples(g); nb > 1) return conv_fwd_folded(x, w, b, y, g, nb);
  const int64_t OHW = g.OHW(), R = g.R(), O = g.O, CHW = g.C * g.H * g.W;
  const int64_t T = pixel_tile(R, OHW, g.N), tiles = (OHW + T - 1) / T, want = 2 * Pool::get().threads();
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
static void conv_dgrad_gemm(const float* dy, const float* w, float* dx, const Geo& g) {
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
  const int64_t threads = Pool::get().threads();
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
static void conv_wgrad_gemm(const float* dy, const float* x, float* dw, const Geo& g) {
  if (const int64_t nb = fold_samples(g); nb > 1) return conv_wgrad_folded(dy, x, dw, g, nb);
  const int64_t OHW = g.OHW(), R = g.R(), O = g.O, CHW = g.C * g.H * g.W;
  const Blas& blas = Blas::get();
  if (2 * R >= OHW) {
    const int64_t threads = Pool::get().threads();
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
  const int64_t parts = std::min<int64_t>(tasks, Pool::get().threads());
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
// (Session 10, raw kernels, 6-10 alternating rounds: 256 -> 256 3x3 at 64 px 22-25 ms against 31-33 on the
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
  const int64_t per_thread = (N * Q + 4 * Pool::get().threads() - 1) / (4 * Pool::get().threads());
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
// registers, two for the inputs, one broadcast), 4 x 16 for at most 4 outputs. Session 16 on an AVX2
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
static void conv_fwd_direct(const float* x, const float* w, const float* b, float* y, const Geo& g) {
  const WideInput in = wide_input(x, g, kWideTail + g.K);
  WideConv p{in.buf.data(), g.N, g.C, g.C * in.cs, in.cs, {}, in.Wq, g.OH, g.OW, w, b, g.O, y, g.O * g.OHW(), g.OHW(),
             g.OW, 1};
  for (int64_t kh = 0; kh < g.K; ++kh)
    for (int64_t kw = 0; kw < g.K; ++kw) p.off.push_back(in.tap(kh, kw, g.S));
  run_wide_conv(p);
}

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
// (Session 13, raw kernels, median ms direct -> Winograd, batch 2: 256 -> 256 at 64 px forward 48.7 ->
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
static void conv_fwd(const float* x, const float* w, const float* b, float* y, const Geo& g) {
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
static void conv_wgrad(const float* dy, const float* x, float* dw, const Geo& g) {
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
static bool use_winograd(int64_t C, int64_t O, int64_t K, int64_t S, int64_t OHW) {
  if (K != 3 || S != 1 || !Blas::get().ok()) return false;
  const char* e = std::getenv("FACEGAN_NATIVE_WINOGRAD");
  if (e && (e[0] == '0' || e[0] == '1')) return e[0] == '1';
  return std::min(C, O) >= kWinoMinChannels && C + O >= kWinoMinChannelSum && OHW >= kWinoMinPixels &&
         C * O <= kWinoMaxChannelProduct;
}

// For models/native.picks_winograd (ctypes).
extern "C" int ConvUsesWinograd(int64_t C, int64_t O, int64_t K, int64_t S, int64_t OHW) {
  return use_winograd(C, O, K, S, OHW) ? 1 : 0;
}

// y = conv(x, w) + b (b null: none), direct or GEMM by use_gemm.
static void conv_fwd(const float* x, const float* w, const float* b, float* y, const Geo& g) {
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
// what the direct kernels cover runs (models/native.py sends strided convolutions only when it found one).
static bool geo_ok(const Geo& g, ConvPart part) {
  if (!(g.P <= g.K - 1 && g.S >= 1 && g.OH >= 1 && g.OW >= 1)) return false;
  const int64_t O = part == kInputGrad ? g.C : g.O, OHW = part == kInputGrad ? g.H * g.W : g.OHW();
  return Blas::get().ok() || direct_covers(g.K, g.S, O, OHW, part);
}

// Conv2dFwd(x[N,C,H,W], w[O,C,K,K], b[O], pad[p + 1], stride[s]) -> y[N,O,OH,OW].
extern "C" int Conv2dFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                         void* stream, void* extra) {
  if (nparam != 6) return 1;
  const Geo g(shapes[0][0], shapes[0][1], shapes[0][2], shapes[0][3], shapes[1][0], shapes[1][2], shapes[3][0] - 1,
              shapes[4][0]);
  if (!geo_ok(g, kForward) || shapes[1][1] != g.C) return 1;
  conv_fwd((const float*)params[0], (const float*)params[1], (const float*)params[2], (float*)params[5], g);
  return 0;
}

// The input gradient of a convolution with stride S > 1, by output phases: dx at padded position
// (S*i + a, S*j + b) only takes the taps kh = S*m + a, kw = S*n + b,
//   dxpad[c, S*i + a, S*j + b] = sum over o, m, n of w[o, c, S*m + a, S*n + b] * dy[o, i - m, j - n],
// a stride-1 correlation of the zero-padded dy with that phase's taps, flipped: one WideConv per phase
// (Ka x Kb taps, Ka = ceil((K - a) / S)), its outputs written to every S-th row and column of dx. Every
// element of dx belongs to exactly one phase. (Replaces w^T x dy through SGEMM and its col2im scatter.)
static void conv_dgrad_phases(const float* dy, const float* w, float* dx, const Geo& g) {
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

// dx = the input gradient of conv(x, w) with geometry g, given dy. Where use_gemm picks SGEMM: w^T x dy,
// scattered back by col2im (1024 -> 2048 4x4 at 10 x 10 px: the flipped copy of its 134 MB weight alone took
// longer than the product). Else stride 1: the forward kernel on dy with the flipped, transposed weights
// and padding K-1-p (flipped here: MindSpore's ReverseV2 took 53 ms on a 512x256x4x4 weight); larger
// strides: conv_dgrad_phases.
static void conv_dgrad(const float* dy, const float* w, float* dx, const Geo& g) {
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
extern "C" int Conv2dDgrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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
extern "C" int ConvTransposeFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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
extern "C" int BiasGrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
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

// ---------------------------------------------------------------------------------------------------
// Weight gradient blocked like a GEMM over the forward's wide positions (more than 8 outputs, at least
// kBlockedWgradMinPositions output pixels per sample; blocked_wgrad):
// dw^T[r, o] = sum over q of X[r, q] dy^T[q, o], r = (c, kh, kw), X[r, q] = xp[c][kh * Wp + kw + q] read in
// place (at stride S > 1 the phase planes of conv_fwd_direct: row (c, kh, b) holds the taps kw = S*n + b),
// dy^T a transposed copy of one block of positions per task step (zero at the dropped columns ow >= OW).
// A micro tile holds RT rows x KW taps x NV vectors of 16 outputs: per position NV vector loads of dy^T
// and RT * KW broadcast inputs. Each thread adds into its own dw^T; those are summed and
// transposed at the end. (Session 10, raw kernels, median ms against the previous path: 256 -> 256 3x3 at
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
  const int64_t parts = std::min<int64_t>(steps, Pool::get().threads());
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
// outputs won there (session 15). With AVX2's 16, a[NO][K] of two-register v16s spills beyond 2 outputs
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

// dw = the weight gradient of conv(x, w) with geometry g, given dy: Winograd, SGEMM or direct as the rules
// pick. False for a kernel size the direct kernels lack (geo_ok has ruled that out where there is no BLAS).
static bool conv_wgrad(const float* dy, const float* x, float* dw, const Geo& g) {
  const int64_t N = g.N, O = g.O, OH = g.OH, OW = g.OW, C = g.C, H = g.H, W = g.W, P = g.P, K = g.K, S = g.S;
  if (use_winograd(C, O, K, S, OH * OW)) {
    wino::conv_wgrad(dy, x, dw, g);
    return true;
  }
  if (use_gemm(C * K * K, O, K, S, OH * OW, kWeightGrad)) {
    conv_wgrad_gemm(dy, x, dw, g);
    return true;
  }
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

// Conv2dWgrad(dy[N,O,OH,OW], x[N,C,H,W], w[O,C,K,K], pad, stride) -> dw[O,C,K,K] (w for its shape only).
extern "C" int Conv2dWgrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                           void* stream, void* extra) {
  if (nparam != 6) return 1;
  const Geo g(shapes[1][0], shapes[1][1], shapes[1][2], shapes[1][3], shapes[2][0], shapes[2][2], shapes[3][0] - 1,
              shapes[4][0]);
  if (!geo_ok(g, kWeightGrad) || shapes[0][1] != g.O || shapes[0][2] != g.OH || shapes[0][3] != g.OW) return 1;
  return conv_wgrad((const float*)params[0], (const float*)params[1], (float*)params[5], g) ? 0 : 1;
}

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

extern "C" int RowNormFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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

extern "C" int RowNormBwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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

// ---------------------------------------------------------------------------------------------------
// Layer-instance normalisation with its affine, in one op (U-GAT-IT's adaLIN / LIN, photo2cartoon's
// Soft-AdaLIN), both variances unbiased (torch.var):
// LinMixFwd(x[N,C,H,W], rho[C], gamma[N,C] or [C], beta like gamma, cfg[f32: eps]) -> y =
//   gamma * (rho * (x - mi) * ri + (1 - rho) * (x - ml) * rl) + beta,
//   mi, ri = mean and 1/sqrt(var + eps) of each (n, c) plane; ml, rl the same over each sample (n).
//   rho, gamma, beta may have any shape with that many elements ((1,C,1,1) parameters, (N,C) FC outputs).
// LinMixBwd(x, dy, rho, gamma, cfg) -> dx, drho, dgamma, dbeta (each the shape of its input; a shared
//   gamma's gradient is summed over n).
// Per (n, c) the output is an affine function of x, and the input gradient one of x and dy, so each
// direction is one pass for the statistics (plus sums of dy and dy * x backward) and one writing pass,
// instead of two row norms, the mixing, the affine and their gradients as separate MindSpore ops.
// The layer statistics are combined exactly from the planes' (mean, centred sum of squares).
struct LinCoef { double mi, ri, ml, rl; };

static void lin_coefs(const std::vector<RowMoments>& mo, int64_t N, int64_t C, int64_t M, double eps,
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
      co[(size_t)(n * C + c)] = {(double)m.x0 + m.dmean, 1.0 / std::sqrt(m.m2 / (double)(M - 1) + eps), ml, rl};
    }
  }
}

static int64_t numel(int nd, const int64_t* sh) {
  int64_t t = 1;
  for (int d = 0; d < nd; ++d) t *= sh[d];
  return t;
}

extern "C" int LinMixFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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
  lin_coefs(mo, N, C, M, (double)cfg[0], co);
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

extern "C" int LinMixBwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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
  const double Md = (double)M, L = (double)(C * M);
  std::vector<RowMoments> mo;
  row_moments(x, dy, N * C, M, mo);
  std::vector<LinCoef> co;
  lin_coefs(mo, N, C, M, (double)cfg[0], co);
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
      q[i] = -a * k.ri * si[i] / (Md - 1) - l2;
      r0[i] = -a * mo[i].sdy / Md - k.rl * v1 / L - l2 * (k.mi - k.ml);
    }
  }
  row_affine(x, dy, dx, N * C, M, mo, q, r0, p);
  for (int64_t c = 0; c < C; ++c) drho[c] = (float)dr[(size_t)c];
  for (int64_t i = 0; i < ng; ++i) { dgamma[i] = (float)dg[(size_t)i]; dbeta[i] = (float)db[(size_t)i]; }
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// PadUp(x[N,C,H,W], pad[p + 1], up[u]) -> y[N,C,uH+2p,uW+2p]: nearest upsampling by u (1 or 2), then
//   reflection padding p (PyTorch's ReflectionPad2d: the edge row is not repeated). p and u are the
//   lengths of the two last arguments (shape inference sees shapes only).
// PadUpGrad(dy[N,C,uH+2p,uW+2p], x[N,C,H,W], pad, up) -> dx: every dy element added to the x element it
//   was copied from (x is passed for its shape only).
static inline int64_t reflect(int64_t i, int64_t n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

static void source_index(int64_t n_out, int64_t n_in, int64_t p, int64_t u, std::vector<int64_t>& idx) {
  idx.resize((size_t)n_out);
  for (int64_t i = 0; i < n_out; ++i) idx[(size_t)i] = reflect(i - p, n_in * u) / u;
}

// The P reflected elements at each end of a padded row of Wo: copied from `src` (forward), or their
// gradients added back into it (backward); ci from source_index.
static inline void fill_edges(float* row, const float* src, const std::vector<int64_t>& ci, int64_t P, int64_t Wo) {
  for (int64_t ow = 0; ow < P; ++ow) {
    row[ow] = src[ci[(size_t)ow]];
    row[Wo - 1 - ow] = src[ci[(size_t)(Wo - 1 - ow)]];
  }
}

static inline void fold_edges(float* dst, const float* grow, const std::vector<int64_t>& ci, int64_t P, int64_t Wo) {
  for (int64_t ow = 0; ow < P; ++ow) {
    dst[ci[(size_t)ow]] += grow[ow];
    dst[ci[(size_t)(Wo - 1 - ow)]] += grow[Wo - 1 - ow];
  }
}

extern "C" int PadUp(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
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

extern "C" int PadUpGrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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
extern "C" int AvgPool2(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
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

extern "C" int AvgPool2Grad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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
static void nap_fwd(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t P, const float* cfg,
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
static void nap_bwd(const float* x, const float* y, const float* dy, int64_t N, int64_t C, int64_t H, int64_t W,
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

extern "C" int NormActPadFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                             void* stream, void* extra) {
  if (nparam != 4) return 1;
  int64_t N, C, H, W, P;
  if (!norm_act_pad_geo(ndims, shapes, 2, N, C, H, W, P)) return 1;
  nap_fwd((const float*)params[0], N, C, H, W, P, (const float*)params[1], (float*)params[3]);
  return 0;
}

extern "C" int NormActPadBwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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

extern "C" int ConvBlockFwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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

extern "C" int ConvBlockBwd(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
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

extern "C" int LeakyRelu(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                         void* stream, void* extra) {
  return leaky_relu(nparam, params, ndims, shapes, false);
}

extern "C" int LeakyReluGrad(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                             void* stream, void* extra) {
  return leaky_relu(nparam, params, ndims, shapes, true);
}
