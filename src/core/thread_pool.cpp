#include "quiver/core/thread_pool.h"

namespace quiver {

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
        stop_ = true;
    }
    cv_work_.notify_all();
    for (auto& t : threads_) t.join();
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
    for (;;) {
        {
            std::unique_lock lock(mu_);
            cv_work_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
        }
        run_items(worker);
        {
            std::lock_guard lock(mu_);
            if (--active_ == 0) cv_done_.notify_one();
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
        active_ = threads_.size();
        ++generation_;
    }
    cv_work_.notify_all();
    run_items(0);
    std::unique_lock lock(mu_);
    cv_done_.wait(lock, [&] { return active_ == 0; });
    fn_ = nullptr;
}

}  // namespace quiver
