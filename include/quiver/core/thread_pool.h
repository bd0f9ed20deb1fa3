/// @file thread_pool.h
/// @brief A fixed pool of worker threads with a blocking parallel_for. Work items are claimed
/// dynamically (an atomic counter), so uneven items balance. Exceptions must not escape `fn`.
///
/// Thread-safety: one parallel_for at a time per pool (calls are serialised by an internal mutex).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace quiver {

class ThreadPool {
public:
    /// `num_threads` = 0 means std::thread::hardware_concurrency(). With 1 the caller's thread does all.
    explicit ThreadPool(std::size_t num_threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    std::size_t size() const noexcept { return num_threads_; }

    /// Calls fn(i, worker) for every i in [0, n), worker in [0, size()). Blocks until all are done.
    /// `grain` items are claimed at a time.
    void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn,
                      std::size_t grain = 1);

private:
    void worker_loop(std::size_t worker);
    void run_items(std::size_t worker);

    std::size_t num_threads_;
    std::vector<std::thread> threads_;
    std::mutex call_mu_;  // serialises parallel_for callers
    std::mutex mu_;
    std::condition_variable cv_work_;
    std::condition_variable cv_done_;
    const std::function<void(std::size_t, std::size_t)>* fn_ = nullptr;
    std::size_t n_ = 0;
    std::size_t grain_ = 1;
    std::size_t generation_ = 0;
    std::size_t active_ = 0;
    bool stop_ = false;
    alignas(64) std::atomic<std::size_t> next_{0};
};

/// Number of threads to use for `requested` (0 = all cores).
std::size_t resolve_threads(std::size_t requested) noexcept;

}  // namespace quiver
