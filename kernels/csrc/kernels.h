// Shared declarations of the CPU kernels (kernels/csrc/*.cc), built into one library by kernels/build.py
// and called by MindSpore as ops.Custom(func_type="aot") (kernels/ops.py). CPU only.
//
// The files, by topic:
//   threadpool.cc   the kernels' own thread pool (parallel_for)
//   conv.cc         the convolution entry points and the rules that pick a path per call (one place:
//                   kernels/ops.py asks them through ctypes)
//   conv_direct.cc  direct convolution kernels (GCC vector extensions, blocked like a GEMM)
//   conv_gemm.cc    im2col + SGEMM (the OpenBLAS that NumPy's wheel carries, loaded at run time)
//   winograd.cc     Winograd F(4x4, 3x3)
//   norm.cc         instance / layer norms, LIN / adaLIN, norm + ReLU + reflection padding
//   elementwise.cc  reflection padding with nearest upsampling, 2x2 average pooling, leaky ReLU
//   conv_block.cc   photo2cartoon's hourglass unit as one op
// Everything is built with -march=native (AVX-512 where the CPU has it, else AVX2 or SSE).
#pragma once
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

// The library is built with -fvisibility=hidden: only the ops' entry points (and the path rules asked
// through ctypes) are exported.
#define FG_EXPORT extern "C" __attribute__((visibility("default")))

// parallel_for(n, f): f(i) for i in [0, n) on all pool threads (the caller included), dynamic order.
// Threads: FACEGAN_NATIVE_THREADS, else the CPUs this process may run on. One job at a time.
void parallel_for(int64_t n, const std::function<void(int64_t)>& f);
int pool_threads();

// v16: 16 floats, the kernels' unit of work. With AVX-512 one register (GCC's generic vector). Without it,
// two 8-float vectors in a struct: GCC lowers a 64-byte generic vector on AVX2 by keeping arrays of them
// (a micro tile's accumulators) in memory and moving their halves through general registers (vmovq /
// vpinsrq per step), which made the direct kernels 3-10x slower than PyTorch on an AVX2 machine (bench/raw_conv.py); the struct's halves stay in ymm registers.
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
inline FloatBuf pad_input(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t P, int64_t Wp,
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

// The geometry of one convolution: x (N,C,H,W), w (O,C,K,K), zero padding P, stride S, y (N,O,OH,OW).
struct Geo {
  int64_t N, C, H, W, O, K, P, S, OH, OW;
  Geo(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k, int64_t p, int64_t s)
      : N(n), C(c), H(h), W(w), O(o), K(k), P(p), S(s), OH((h + 2 * p - k) / s + 1), OW((w + 2 * p - k) / s + 1) {}
  int64_t R() const { return C * K * K; }
  int64_t OHW() const { return OH * OW; }
};

// The parts of a convolution, each with its own path.
enum ConvPart { kForward = 0, kWeightGrad = 1, kInputGrad = 2 };

// An im2col block (and other scratch blocks) holds about kBlockFloats values (2 MB; 1-4 MB measured alike).
static const int64_t kBlockFloats = int64_t(1) << 19;

// SGEMM's forward takes at least this many outputs per task (and, by the path rules, is picked for deep
// layers with at least this many outputs).
static const int64_t kGemmMinOut = 32;

// The tap counts the blocked direct kernel is compiled for (run_wide_conv): K x K for K in {1, 3, 4, 7}, and
// the output phases of 3x3 and 4x4 kernels at stride 2 (conv_dgrad_phases).
inline bool wide_taps(int64_t KT) { return KT == 1 || KT == 2 || KT == 4 || KT == 9 || KT == 16 || KT == 49; }

// The taps of a K-tap kernel dimension that fall on phase a at stride S: a, a + S, ... (ceil((K - a) / S)).
inline int64_t phase_taps(int64_t K, int64_t S, int64_t a) { return (K - a + S - 1) / S; }

// ----------------------------------------------------------------- path rules (conv.cc, winograd.cc)
bool blocked_wgrad(int64_t K, int64_t S, int64_t O, int64_t OHW);
bool direct_covers(int64_t K, int64_t S, int64_t O, int64_t OHW, ConvPart part);
bool use_gemm(int64_t fan_in, int64_t O, int64_t K, int64_t S, int64_t OHW, ConvPart part);
bool use_winograd(int64_t C, int64_t O, int64_t K, int64_t S, int64_t OHW);
bool geo_ok(const Geo& g, ConvPart part);

// ----------------------------------------------------------------- convolutions (conv.cc dispatches)
// y = conv(x, w) + b (b null: none); dx and dw its gradients. conv_wgrad is false for a kernel size that no
// path covers (geo_ok rules that out first).
void conv_fwd(const float* x, const float* w, const float* b, float* y, const Geo& g);
void conv_dgrad(const float* dy, const float* w, float* dx, const Geo& g);
bool conv_wgrad(const float* dy, const float* x, float* dw, const Geo& g);
// the paths (conv_gemm.cc, conv_direct.cc, winograd.cc)
void conv_fwd_gemm(const float* x, const float* w, const float* b, float* y, const Geo& g);
void conv_dgrad_gemm(const float* dy, const float* w, float* dx, const Geo& g);
void conv_wgrad_gemm(const float* dy, const float* x, float* dw, const Geo& g);
void conv_fwd_direct(const float* x, const float* w, const float* b, float* y, const Geo& g);
void conv_dgrad_phases(const float* dy, const float* w, float* dx, const Geo& g);
bool conv_wgrad_by_direct(const float* dy, const float* x, float* dw, const Geo& g);
namespace wino {
void conv_fwd(const float* x, const float* w, const float* b, float* y, const Geo& g);
void conv_wgrad(const float* dy, const float* x, float* dw, const Geo& g);
}  // namespace wino

// ----------------------------------------------------------------- norms (norm.cc)
// y = reflection_pad(act(instance_norm(x)), P) for x[N,C,H,W] (NormActPadFwd), and its gradient at x (y the
// forward's output) given dy, plus `add` when not null (see norm.cc).
void nap_fwd(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t P, const float* cfg, float* y);
void nap_bwd(const float* x, const float* y, const float* dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t P,
             const float* cfg, float* dx, const float* add, int64_t add_stride);

// ----------------------------------------------------------------- reflection padding indices
inline int64_t reflect(int64_t i, int64_t n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

inline void source_index(int64_t n_out, int64_t n_in, int64_t p, int64_t u, std::vector<int64_t>& idx) {
  idx.resize((size_t)n_out);
  for (int64_t i = 0; i < n_out; ++i) idx[(size_t)i] = reflect(i - p, n_in * u) / u;
}

// The P reflected elements at each end of a padded row of Wo: copied from `src` (forward), or their
// gradients added back into it (backward); ci from source_index.
inline void fill_edges(float* row, const float* src, const std::vector<int64_t>& ci, int64_t P, int64_t Wo) {
  for (int64_t ow = 0; ow < P; ++ow) {
    row[ow] = src[ci[(size_t)ow]];
    row[Wo - 1 - ow] = src[ci[(size_t)(Wo - 1 - ow)]];
  }
}

inline void fold_edges(float* dst, const float* grow, const std::vector<int64_t>& ci, int64_t P, int64_t Wo) {
  for (int64_t ow = 0; ow < P; ++ow) {
    dst[ci[(size_t)ow]] += grow[ow];
    dst[ci[(size_t)(Wo - 1 - ow)]] += grow[Wo - 1 - ow];
  }
}

