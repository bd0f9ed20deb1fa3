// Private to index/: fixed-capacity top-k selection (a max-heap on distance keeps the k closest).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace quiver::index::detail {

/// Keeps the `capacity` smallest (distance, id) pairs pushed. Ties prefer the smaller id, so results
/// are deterministic and match ground truth that breaks ties by lower id.
class TopK {
public:
    explicit TopK(std::size_t capacity = 0) { reset(capacity); }

    void reset(std::size_t capacity) {
        capacity_ = capacity;
        heap_.clear();
        heap_.reserve(capacity);
    }
    std::size_t size() const noexcept { return heap_.size(); }
    bool full() const noexcept { return heap_.size() >= capacity_; }
    /// The distance a new item must beat (infinity until full).
    float threshold() const noexcept {
        return full() && capacity_ > 0 ? heap_.front().first : std::numeric_limits<float>::infinity();
    }
    void push(float distance, std::uint64_t id) {
        if (capacity_ == 0) return;
        if (!full()) {
            heap_.emplace_back(distance, id);
            std::push_heap(heap_.begin(), heap_.end(), less);
        } else if (less({distance, id}, heap_.front())) {
            std::pop_heap(heap_.begin(), heap_.end(), less);
            heap_.back() = {distance, id};
            std::push_heap(heap_.begin(), heap_.end(), less);
        }
    }
    /// Sorted ascending (closest first); leaves the selector empty.
    std::vector<std::pair<float, std::uint64_t>> take_sorted() {
        std::sort_heap(heap_.begin(), heap_.end(), less);
        return std::move(heap_);
    }

    static bool less(const std::pair<float, std::uint64_t>& a, const std::pair<float, std::uint64_t>& b) {
        return a.first < b.first || (a.first == b.first && a.second < b.second);
    }

private:
    std::size_t capacity_ = 0;
    std::vector<std::pair<float, std::uint64_t>> heap_;
};

}  // namespace quiver::index::detail
