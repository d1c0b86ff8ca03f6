// The kernels' own thread pool. Its idle workers sleep: OpenMP's workers spin after each parallel region
// (libgomp's default wait policy), and on a 2-core machine that spinning took the cores from MindSpore's
// next kernels (its instance-norm BatchNorm ran 3x slower after each convolution).
#include "kernels.h"

namespace {
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
}  // namespace

void parallel_for(int64_t n, const std::function<void(int64_t)>& f) { Pool::get().parallel_for(n, f); }

int pool_threads() { return Pool::get().threads(); }
