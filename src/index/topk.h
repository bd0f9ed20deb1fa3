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
            std::push_heap(heap_.begin(), heap_.end(), Less{});
        } else if (less({distance, id}, heap_.front())) {
            replace_top({distance, id});
        }
    }
    /// Sorted ascending (closest first); leaves the selector empty.
    std::vector<std::pair<float, std::uint64_t>> take_sorted() {
        std::sort_heap(heap_.begin(), heap_.end(), Less{});
        return std::move(heap_);
    }

    static bool less(const std::pair<float, std::uint64_t>& a, const std::pair<float, std::uint64_t>& b) {
        return a.first < b.first || (a.first == b.first && a.second < b.second);
    }

private:
    // A function object, so the heap algorithms inline the comparison (a function pointer was called).
    struct Less {
        bool operator()(const std::pair<float, std::uint64_t>& a, const std::pair<float, std::uint64_t>& b) const {
            return less(a, b);
        }
    };
    // Replaces the largest item by `item` (smaller than it) and sifts it down: one pass instead of
    // pop_heap + push_heap.
    void replace_top(std::pair<float, std::uint64_t> item) {
        const std::size_t n = heap_.size();
        std::size_t at = 0;
        for (;;) {
            std::size_t child = 2 * at + 1;
            if (child >= n) break;
            if (child + 1 < n && less(heap_[child], heap_[child + 1])) ++child;
            if (!less(item, heap_[child])) break;
            heap_[at] = heap_[child];
            at = child;
        }
        heap_[at] = item;
    }

private:
    std::size_t capacity_ = 0;
    std::vector<std::pair<float, std::uint64_t>> heap_;
};

}  // namespace quiver::index::detail
