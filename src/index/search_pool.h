// Private to index/: the persistent worker threads an index keeps for batched searches, so a
// search call does not start and join threads. One search at a time uses the kept pool; a search
// that overlaps it (search is const and may run concurrently) runs on a temporary pool instead,
// so concurrent callers never wait for each other.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "quiver/core/thread_pool.h"

namespace quiver::index::detail {

class SearchPool {
public:
    /// Calls fn(i, worker) for i in [0, n) on `threads` threads (worker < threads).
    void parallel_for(std::size_t threads, std::size_t n,
                      const std::function<void(std::size_t, std::size_t)>& fn, std::size_t grain = 1) const {
        if (threads <= 1 || n <= grain) {
            for (std::size_t i = 0; i < n; ++i) fn(i, 0);
            return;
        }
        std::unique_lock lock(mu_, std::try_to_lock);
        if (!lock.owns_lock()) {
            ThreadPool temporary(threads);
            temporary.parallel_for(n, fn, grain);
            return;
        }
        if (!pool_ || pool_->size() != threads) pool_ = std::make_unique<ThreadPool>(threads);
        pool_->parallel_for(n, fn, grain);
    }

private:
    mutable std::mutex mu_;
    mutable std::unique_ptr<ThreadPool> pool_;
};

}  // namespace quiver::index::detail
