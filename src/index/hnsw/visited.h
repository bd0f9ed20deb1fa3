// Private to index/hnsw: generation-stamped visited sets, pooled so a search never clears N bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace quiver::index::detail {

class VisitedSet {
public:
    explicit VisitedSet(std::size_t n) : tags_(n, 0) {}
    /// Starts a new search: O(1) except one clear every 65,535 generations.
    void next() {
        if (++tag_ == 0) {
            std::fill(tags_.begin(), tags_.end(), std::uint16_t{0});
            tag_ = 1;
        }
    }
    bool visited(std::uint32_t id) const noexcept { return tags_[id] == tag_; }
    /// Marks id; returns true if it was already visited in this generation.
    bool test_and_mark(std::uint32_t id) noexcept {
        if (tags_[id] == tag_) return true;
        tags_[id] = tag_;
        return false;
    }
    const std::uint16_t* slot_ptr(std::uint32_t id) const noexcept { return tags_.data() + id; }
    std::size_t size() const noexcept { return tags_.size(); }

private:
    std::vector<std::uint16_t> tags_;
    std::uint16_t tag_ = 0;
};

/// Thread-safe pool of visited sets of a fixed size.
class VisitedPool {
public:
    void reset(std::size_t n);
    std::unique_ptr<VisitedSet> acquire();
    void release(std::unique_ptr<VisitedSet> v);
    std::size_t bytes() const;

private:
    mutable std::mutex mu_;
    std::size_t n_ = 0;
    std::vector<std::unique_ptr<VisitedSet>> free_;
};

}  // namespace quiver::index::detail
