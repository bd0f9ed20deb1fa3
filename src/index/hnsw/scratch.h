// Private to index/hnsw: per-search scratch (a generation-stamped visited set and the two heaps),
// pooled so a search neither clears N bytes nor allocates.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "quiver/index/codec.h"

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

using Candidate = std::pair<float, std::uint32_t>;  // (distance, slot)

struct SearchScratch {
    explicit SearchScratch(std::size_t n) : visited(n) {}
    VisitedSet visited;
    std::vector<Candidate> candidates;  // min-heap of nodes to expand
    std::vector<Candidate> results;     // max-heap of the best ef found
    std::vector<float> vector_buf;      // one vector read from disk for the re-score
    Int8Query int_query;                // the query in integer form, for walks on SQ8 codes
};

/// Thread-safe pool of scratch objects whose visited sets cover `n` nodes.
class ScratchPool {
public:
    /// Drops pooled objects; later acquisitions cover `n` nodes.
    void reset(std::size_t n);
    std::unique_ptr<SearchScratch> acquire();
    void release(std::unique_ptr<SearchScratch> s);

private:
    std::mutex mu_;
    std::size_t n_ = 0;
    std::vector<std::unique_ptr<SearchScratch>> free_;
};

/// Acquires on construction, returns to the pool on destruction.
class ScratchLease {
public:
    explicit ScratchLease(ScratchPool& pool) : pool_(pool), s_(pool.acquire()) {}
    ~ScratchLease() { pool_.release(std::move(s_)); }
    ScratchLease(const ScratchLease&) = delete;
    ScratchLease& operator=(const ScratchLease&) = delete;
    SearchScratch& operator*() noexcept { return *s_; }

private:
    ScratchPool& pool_;
    std::unique_ptr<SearchScratch> s_;
};

}  // namespace quiver::index::detail
