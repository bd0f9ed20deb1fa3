#include "index/hnsw/scratch.h"

namespace quiver::index::detail {

void ScratchPool::reset(std::size_t n) {
    std::lock_guard lock(mu_);
    n_ = n;
    free_.clear();
}

std::unique_ptr<SearchScratch> ScratchPool::acquire() {
    std::size_t n;
    {
        std::lock_guard lock(mu_);
        while (!free_.empty()) {
            auto s = std::move(free_.back());
            free_.pop_back();
            if (s->visited.size() == n_) return s;
        }
        n = n_;
    }
    return std::make_unique<SearchScratch>(n);
}

void ScratchPool::release(std::unique_ptr<SearchScratch> s) {
    std::lock_guard lock(mu_);
    if (s->visited.size() == n_) free_.push_back(std::move(s));
}

}  // namespace quiver::index::detail
