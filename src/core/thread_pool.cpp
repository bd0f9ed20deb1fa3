#include "quiver/core/thread_pool.h"

#include <chrono>

namespace quiver {

namespace {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
}

// Busy-waits until done(): `pause` for the first ~20 us, then yielding the CPU between checks (a thread
// of this pool, or anything else, that shares the core gets to run), and after ~1 ms gives up
// (returns false; the caller then sleeps).
template <typename Done>
bool spin_until(const Done& done) {
    constexpr auto kPauseFor = std::chrono::microseconds(20);
    constexpr auto kBudget = std::chrono::microseconds(1000);
    const auto start = std::chrono::steady_clock::now();
    for (bool yielding = false;;) {
        for (int i = 0; i < 32; ++i) {
            if (done()) return true;
            if (yielding) {
                std::this_thread::yield();
            } else {
                cpu_relax();
            }
        }
        const auto spent = std::chrono::steady_clock::now() - start;
        if (spent > kBudget) return done();
        yielding = spent > kPauseFor;
    }
}

}  // namespace

std::size_t resolve_threads(std::size_t requested) noexcept {
    if (requested > 0) return requested;
    const unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : hc;
}

ThreadPool::ThreadPool(std::size_t num_threads) : num_threads_(resolve_threads(num_threads)) {
    // Worker 0 is the calling thread; the pool owns workers 1..n-1.
    for (std::size_t w = 1; w < num_threads_; ++w) {
        threads_.emplace_back([this, w] { worker_loop(w); });
    }
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mu_);
        stop_.store(true, std::memory_order_release);
    }
    cv_work_.notify_all();
    for (auto& t : threads_) t.join();
}

ThreadPool::SpinScope::SpinScope(ThreadPool* pool) noexcept : pool_(pool) {
    if (pool_ != nullptr) pool_->spinners_.fetch_add(1, std::memory_order_relaxed);
}

ThreadPool::SpinScope::~SpinScope() {
    if (pool_ != nullptr) pool_->spinners_.fetch_sub(1, std::memory_order_relaxed);
}

void ThreadPool::run_items(std::size_t worker) {
    const auto& fn = *fn_;
    for (;;) {
        const std::size_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
        if (begin >= n_) break;
        const std::size_t end = begin + grain_ < n_ ? begin + grain_ : n_;
        for (std::size_t i = begin; i < end; ++i) fn(i, worker);
    }
}

void ThreadPool::worker_loop(std::size_t worker) {
    std::size_t seen = 0;
    auto has_work = [&] {
        return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
    };
    for (;;) {
        // Spin while a SpinScope is open (and the budget lasts), then sleep until the next call.
        bool ready = false;
        if (spinners_.load(std::memory_order_relaxed) > 0) {
            ready = spin_until([&] { return has_work() || spinners_.load(std::memory_order_relaxed) == 0; }) &&
                    has_work();
        }
        if (!ready) {
            std::unique_lock lock(mu_);
            cv_work_.wait(lock, has_work);
        }
        if (stop_.load(std::memory_order_acquire)) return;
        seen = generation_.load(std::memory_order_acquire);
        run_items(worker);
        if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            // Locked so that a caller between its predicate check and its sleep cannot miss this.
            std::lock_guard lock(mu_);
            cv_done_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn,
                              std::size_t grain) {
    if (n == 0) return;
    if (grain == 0) grain = 1;
    if (num_threads_ == 1 || n <= grain) {
        for (std::size_t i = 0; i < n; ++i) fn(i, 0);
        return;
    }
    std::lock_guard call_lock(call_mu_);
    {
        std::lock_guard lock(mu_);
        fn_ = &fn;
        n_ = n;
        grain_ = grain;
        next_.store(0, std::memory_order_relaxed);
        active_.store(threads_.size(), std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
    }
    cv_work_.notify_all();  // no system call when every worker is spinning (none waits)
    run_items(0);
    auto done = [&] { return active_.load(std::memory_order_acquire) == 0; };
    if (!(spinners_.load(std::memory_order_relaxed) > 0 && spin_until(done))) {
        std::unique_lock lock(mu_);
        cv_done_.wait(lock, done);
    }
    fn_ = nullptr;
}

}  // namespace quiver
