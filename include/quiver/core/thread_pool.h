/// @file thread_pool.h
/// @brief A fixed pool of worker threads with a blocking parallel_for. Work items are claimed
/// dynamically (an atomic counter), so uneven items balance. Exceptions must not escape `fn`.
///
/// Idle workers sleep on a condition variable, so each parallel_for costs two thread wake-ups (tens of
/// microseconds on a virtual machine). For a burst of short calls (one transformer forward pass: a
/// few dozen products of a few microseconds each), a SpinScope keeps the team awake instead: while one
/// is alive, idle workers and the waiting caller busy-wait (`pause` for ~20 us, then yielding the CPU
/// between checks, so a thread sharing the core still runs) for up to about a millisecond before they
/// fall back to sleeping, as ONNX Runtime's and OpenMP's spin-waits do.
///
/// Thread-safety: one parallel_for at a time per pool (calls are serialised by an internal mutex).
/// SpinScopes may be opened from any thread and nest; the pool must outlive them.
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

    /// While alive, the pool's workers (and parallel_for's caller) spin between calls instead of
    /// sleeping (see the file comment). A null pool makes it a no-op.
    class SpinScope {
    public:
        explicit SpinScope(ThreadPool* pool) noexcept;
        ~SpinScope();
        SpinScope(const SpinScope&) = delete;
        SpinScope& operator=(const SpinScope&) = delete;

    private:
        ThreadPool* pool_;
    };

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
    // Written under mu_; read without it by spinning threads (acquire pairs with the release bump).
    std::atomic<std::size_t> generation_{0};
    std::atomic<std::size_t> active_{0};
    std::atomic<bool> stop_{false};
    std::atomic<int> spinners_{0};  // live SpinScopes
    alignas(64) std::atomic<std::size_t> next_{0};
};

/// Number of threads to use for `requested` (0 = all cores).
std::size_t resolve_threads(std::size_t requested) noexcept;

}  // namespace quiver
