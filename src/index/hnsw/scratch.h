// Private to index/hnsw: per-search scratch (a generation-stamped visited set, the sorted beam of
// unfiltered searches and the two heaps of the others), pooled so a search neither clears N bytes
// nor allocates.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
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
    /// Marks ids[0..n) and writes the ones not yet visited to `out`, in order, without a branch per id
    /// (whether a neighbour was seen is data the branch predictor cannot learn). Returns their count.
    std::size_t mark_new(const std::uint32_t* ids, std::size_t n, std::uint32_t* out) noexcept {
        std::uint16_t* tags = tags_.data();
        const std::uint16_t tag = tag_;
        std::size_t m = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t id = ids[i];
            out[m] = id;
            m += tags[id] != tag ? 1 : 0;
            tags[id] = tag;
        }
        return m;
    }
    const std::uint16_t* slot_ptr(std::uint32_t id) const noexcept { return tags_.data() + id; }
    std::size_t size() const noexcept { return tags_.size(); }

private:
    std::vector<std::uint16_t> tags_;
    std::uint16_t tag_ = 0;
};

using Candidate = std::pair<float, std::uint32_t>;  // (distance, slot)

/// The beam of an unfiltered search as one array sorted by distance (instead of hnswlib's two
/// heaps): at most `ef` (distance, slot) entries, each flagged once expanded, and a cursor at the
/// closest unexpanded one. Expanding the closest unexpanded entry until none is left expands what
/// the two-heap search expands (it stops at a candidate farther than the ef-th result, which here has
/// already left the beam), up to the order among equal distances. An insertion is one binary
/// search and a move of at most ef entries (ef is small); no heap is rebalanced per neighbour.
class SortedBeam {
public:
    struct Entry {
        float distance;
        std::uint32_t slot;
        std::uint32_t expanded;  // beside the entry, so an insertion moves one array
    };
    /// Empties the beam for a search of width ef (at least 1).
    void reset(std::size_t ef) {
        ef = std::max<std::size_t>(ef, 1);
        if (entries_.size() < ef + 1) entries_.resize(ef + 1);
        cap_ = ef;
        size_ = 0;
        cur_ = 0;
        bound_ = std::numeric_limits<float>::infinity();
    }
    std::size_t size() const noexcept { return size_; }
    /// The distance a new entry must beat: the ef-th entry's, or +infinity while the beam has room.
    float bound() const noexcept { return bound_; }
    /// Inserts (d, slot) when d < bound(), after the entries of equal distance; the last entry
    /// leaves a full beam.
    void insert(float d, std::uint32_t slot) noexcept {
        if (!(d < bound_)) return;
        // The first entry farther than d, without a branch on the comparisons (data the predictor
        // cannot learn): a small beam counts the entries at most d (independent loads), a larger one
        // halves the range (a chain of dependent loads, but log2 of them).
        std::size_t lo = 0;
        if (size_ <= kCountBelow) {
            for (std::size_t i = 0; i < size_; ++i) lo += entries_[i].distance <= d ? 1 : 0;
        } else {
            const Entry* base = entries_.data();
            std::size_t n = size_;
            while (n > 1) {
                const std::size_t half = n / 2;
                base = base[half].distance <= d ? base + half : base;
                n -= half;
            }
            lo = static_cast<std::size_t>(base - entries_.data()) + (base->distance <= d ? 1 : 0);
        }
        const std::size_t kept = size_ == cap_ ? size_ - 1 : size_;
        std::memmove(entries_.data() + lo + 1, entries_.data() + lo, (kept - lo) * sizeof(Entry));
        entries_[lo] = {d, slot, 0};
        size_ = kept + 1;
        if (size_ == cap_) bound_ = entries_[size_ - 1].distance;
        if (lo < cur_) cur_ = lo;
    }
    bool has_next() const noexcept { return cur_ < size_; }
    /// The closest unexpanded entry's slot (has_next() must hold).
    std::uint32_t next() const noexcept { return entries_[cur_].slot; }
    /// The closest unexpanded entry's distance, +infinity when none is left.
    float next_distance() const noexcept {
        return cur_ < size_ ? entries_[cur_].distance : std::numeric_limits<float>::infinity();
    }
    /// Flags the closest unexpanded entry expanded and returns its slot (has_next() must hold).
    std::uint32_t pop() noexcept {
        const std::uint32_t slot = entries_[cur_].slot;
        entries_[cur_].expanded = 1;
        while (cur_ < size_ && entries_[cur_].expanded != 0) ++cur_;
        return slot;
    }
    /// The entries, ascending by distance.
    const Entry* begin() const noexcept { return entries_.data(); }
    const Entry* end() const noexcept { return entries_.data() + size_; }

private:
    static constexpr std::size_t kCountBelow = 48;
    std::vector<Entry> entries_;
    std::size_t cap_ = 0, size_ = 0, cur_ = 0;
    float bound_ = 0;
};

struct SearchScratch {
    explicit SearchScratch(std::size_t n) : visited(n) {}
    VisitedSet visited;
    std::vector<Candidate> candidates;  // min-heap of nodes to expand
    std::vector<Candidate> results;     // max-heap of the best ef found (a beam search on SortedBeam:
                                        // ascending)
    SortedBeam beam;                    // the beam of unfiltered searches
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
