#include "index/hnsw/visited.h"

namespace quiver::index::detail {

void VisitedPool::reset(std::size_t n) {
    std::lock_guard lock(mu_);
    n_ = n;
    free_.clear();
}

std::unique_ptr<VisitedSet> VisitedPool::acquire() {
    {
        std::lock_guard lock(mu_);
        if (!free_.empty()) {
            auto v = std::move(free_.back());
            free_.pop_back();
            if (v->size() == n_) return v;
        }
    }
    std::size_t n;
    {
        std::lock_guard lock(mu_);
        n = n_;
    }
    return std::make_unique<VisitedSet>(n);
}

void VisitedPool::release(std::unique_ptr<VisitedSet> v) {
    std::lock_guard lock(mu_);
    if (v->size() == n_) free_.push_back(std::move(v));
}

std::size_t VisitedPool::bytes() const {
    std::lock_guard lock(mu_);
    return free_.size() * n_ * sizeof(std::uint16_t);
}

}  // namespace quiver::index::detail
