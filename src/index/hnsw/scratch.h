// Private to index/hnsw: per-search scratch (the visited set, the sorted beams of unfiltered searches
// and of searches under a mask that allows most nodes, and the two heaps of the others), pooled so a
// search does not allocate.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "quiver/index/codec.h"

namespace quiver::index::detail {

/// The nodes a search has reached: a generation tag per node, marked with the search's tag and never
/// cleared but when the tag wraps. A graph of up to kByteTagNodes nodes has u8 tags (half the
/// footprint, so more of it stays in L1/L2 while the walk streams records past it; cleared every
/// 255 searches, at most 1 MiB); a larger one has u16 tags (cleared every 65,535 searches).
class VisitedSet {
public:
    static constexpr std::size_t kByteTagNodes = std::size_t{1} << 20;
    explicit VisitedSet(std::size_t n) : n_(n), small_(n <= kByteTagNodes) {
        if (small_) {
            tags8_.assign(n, 0);
        } else {
            tags16_.assign(n, 0);
        }
    }
    /// Starts a new search: O(1) except one clear every 255 (u8) or 65,535 (u16) searches.
    void next() {
        ++tag_;
        if (small_ ? (tag_ & 0xFF) == 0 : (tag_ & 0xFFFF) == 0) {
            std::fill(tags8_.begin(), tags8_.end(), std::uint8_t{0});
            std::fill(tags16_.begin(), tags16_.end(), std::uint16_t{0});
            tag_ = 1;
        }
    }
    bool visited(std::uint32_t id) const noexcept {
        return small_ ? tags8_[id] == static_cast<std::uint8_t>(tag_) : tags16_[id] == static_cast<std::uint16_t>(tag_);
    }
    /// Marks id; returns true if it was already visited in this search.
    bool test_and_mark(std::uint32_t id) noexcept {
        if (small_) return test_and_mark(tags8_.data(), static_cast<std::uint8_t>(tag_), id);
        return test_and_mark(tags16_.data(), static_cast<std::uint16_t>(tag_), id);
    }
    /// Marks ids[0..n) and writes the ones not yet visited to `out`, in order, without a branch per id
    /// (whether a neighbour was seen is data the branch predictor cannot learn). Returns their count.
    std::size_t mark_new(const std::uint32_t* ids, std::size_t n, std::uint32_t* out) noexcept {
        if (small_) return mark_new(tags8_.data(), static_cast<std::uint8_t>(tag_), ids, n, out);
        return mark_new(tags16_.data(), static_cast<std::uint16_t>(tag_), ids, n, out);
    }
    /// Where id's tag lives (for a prefetch).
    const void* slot_ptr(std::uint32_t id) const noexcept {
        return small_ ? static_cast<const void*>(tags8_.data() + id) : static_cast<const void*>(tags16_.data() + id);
    }
    /// The nodes covered.
    std::size_t size() const noexcept { return n_; }
    /// True when the tags are u8 (n <= kByteTagNodes).
    bool byte_tags() const noexcept { return small_; }

private:
    template <class T>
    static bool test_and_mark(T* tags, T tag, std::uint32_t id) noexcept {
        if (tags[id] == tag) return true;
        tags[id] = tag;
        return false;
    }
    template <class T>
    static std::size_t mark_new(T* tags, T tag, const std::uint32_t* ids, std::size_t n, std::uint32_t* out) noexcept {
        std::size_t m = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t id = ids[i];
            out[m] = id;
            m += tags[id] != tag ? 1 : 0;
            tags[id] = tag;
        }
        return m;
    }

    std::size_t n_;
    bool small_;
    std::vector<std::uint8_t> tags8_;
    std::vector<std::uint16_t> tags16_;
    std::uint32_t tag_ = 0;
};

using Candidate = std::pair<float, std::uint32_t>;  // (distance, slot)

/// The beam of an unfiltered search as one array sorted by distance (instead of hnswlib's two
/// heaps): at most `ef` (distance, slot) entries, each flagged once expanded, and a cursor at the
/// closest unexpanded one. Expanding the closest unexpanded entry until none is left expands what
/// the two-heap search expands (it stops at a candidate farther than the ef-th result, which here has
/// already left the beam); both order entries by (distance, slot), so ties do not make them differ.
/// No heap is rebalanced per neighbour.
///
/// Layout (session 9): the distances are one dense float array, the slots a second one and the
/// expanded flags a bitset, so finding an insertion point compares packed floats (the compiler's
/// vector compares on a counted stretch) and an insertion moves 8 bytes per entry, not 12.
///
/// kChecked (CheckedBeam, session 15): the beam of a search some of whose nodes may not be returned
/// (deleted, or outside a filter). Each entry also carries an allowed bit; `ef` bounds the allowed
/// entries, and the disallowed ones the walk traverses sit among them, so the array holds the ef
/// best allowed entries and every disallowed one closer than the ef-th of them. That is exactly
/// what the two-heap walk expands: it keeps the ef best allowed nodes as results and every node
/// closer than the worst of them as a candidate, and stops at the first candidate beyond it (here:
/// once the bound falls, the entries beyond it are dropped). The array grows with the disallowed
/// entries, so the walks use it only for masks known to allow most nodes
/// (LabelFilter::mostly_allows); with a selective one, insertions would move long stretches.
template <bool kChecked>
class BasicSortedBeam {
public:
    struct Entry {
        float distance;
        std::uint32_t slot;
    };
    /// Empties the beam for a search of width ef (at least 1).
    void reset(std::size_t ef) {
        ef = std::max<std::size_t>(ef, 1);
        // Past the entries, kCount distances of +infinity: the count in position() always reads
        // kCount entries, and no distance it compares is +infinity (it would not beat the bound).
        if (dist_.size() < ef + kCount) {
            dist_.resize(ef + kCount);
            slot_.resize(ef + kCount);
        }
        std::fill(dist_.begin(), dist_.begin() + static_cast<std::ptrdiff_t>(ef + kCount),
                  std::numeric_limits<float>::infinity());
        // One bit per entry, plus a word of slack so a shift past the last entry stays in bounds.
        const std::size_t words = (ef + 1) / 64 + 2;
        if (flags_.size() < words) flags_.resize(words);
        std::fill(flags_.begin(), flags_.begin() + static_cast<std::ptrdiff_t>(words), std::uint64_t{0});
        if constexpr (kChecked) {
            if (allow_.size() < words) allow_.resize(words);
            // Stale entries past ef + kCount (from a wider earlier search) may remain in the arrays;
            // an insertion that grows the beam there refills them (grow()).
            filled_ = ef + kCount;
            allowed_ = 0;
        }
        cap_ = ef;
        size_ = 0;
        cur_ = 0;
        bound_ = std::numeric_limits<float>::infinity();
        bound_slot_ = std::numeric_limits<std::uint32_t>::max();
    }
    /// The entries (with kChecked: allowed and disallowed).
    std::size_t size() const noexcept { return size_; }
    /// The distance a new entry must beat: the ef-th (allowed) entry's, or +infinity while the beam
    /// has fewer. An entry of equal distance enters when its slot is lower than that entry's.
    float bound() const noexcept { return bound_; }
    /// Inserts (d, slot) when (d, slot) precedes the ef-th entry in (distance, slot) order (always
    /// while the beam has room), at its place in that order; the last entry leaves a full beam. The
    /// order is total, as the two-heap walk's, so ties are broken the same way by both.
    void insert(float d, std::uint32_t slot) noexcept
        requires(!kChecked)
    {
        if (!(d < bound_) && !(d == bound_ && slot < bound_slot_)) return;
        float* dist = dist_.data();
        std::uint32_t* slots = slot_.data();
        std::size_t lo = position(d);
        while (lo > 0 && dist[lo - 1] == d && slots[lo - 1] > slot) --lo;  // ties: by slot
        const std::size_t kept = size_ == cap_ ? size_ - 1 : size_;
        shift_up(dist, lo, kept);
        shift_up(slots, lo, kept);
        dist[lo] = d;
        slots[lo] = slot;
        open_bit(flags_.data(), lo, kept, false);
        size_ = kept + 1;
        if (size_ == cap_) {
            bound_ = dist[size_ - 1];
            bound_slot_ = slots[size_ - 1];
        }
        if (lo < cur_) cur_ = lo;
    }
    /// kChecked: inserts (d, slot) under the same rule, `allowed` telling whether a search may return
    /// it. When an allowed entry pushes the allowed count past ef, the farthest allowed entry leaves,
    /// with every disallowed one behind the new ef-th. Returns false when (d, slot) did not enter
    /// (then `allowed` was not needed: callers may test admits() first to skip the mask).
    bool insert(float d, std::uint32_t slot, bool allowed)
        requires kChecked
    {
        if (!admits(d, slot)) return false;
        if (size_ + 1 + kCount > filled_) grow();
        float* dist = dist_.data();
        std::uint32_t* slots = slot_.data();
        std::size_t lo = position(d);
        while (lo > 0 && dist[lo - 1] == d && slots[lo - 1] > slot) --lo;  // ties: by slot
        shift_up(dist, lo, size_);
        shift_up(slots, lo, size_);
        dist[lo] = d;
        slots[lo] = slot;
        open_bit(flags_.data(), lo, size_, false);
        open_bit(allow_.data(), lo, size_, allowed);
        ++size_;
        if (lo < cur_) cur_ = lo;
        if (!allowed || ++allowed_ < cap_) return true;
        // ef allowed entries: the bound is the ef-th, and nothing stays beyond it. Past ef, the
        // last entry is the old ef-th (once the beam has ef, no entry beyond the bound stays) and
        // leaves; then so do the disallowed entries behind the new ef-th.
        std::size_t end = size_;
        if (allowed_ > cap_) {
            --end;
            --allowed_;
        }
        while (!bit(allow_.data(), end - 1)) --end;  // stops: ef >= 1 allowed entries precede
        std::fill(dist + end, dist + size_, std::numeric_limits<float>::infinity());
        size_ = end;
        cur_ = std::min(cur_, size_);
        bound_ = dist[size_ - 1];
        bound_slot_ = slots[size_ - 1];
        return true;
    }
    /// True when (d, slot) would enter: it precedes the bound's entry in (distance, slot) order.
    bool admits(float d, std::uint32_t slot) const noexcept {
        return d < bound_ || (d == bound_ && slot < bound_slot_);
    }
    bool has_next() const noexcept { return cur_ < size_; }
    /// The closest unexpanded entry's slot (has_next() must hold).
    std::uint32_t next() const noexcept { return slot_[cur_]; }
    /// The closest unexpanded entry's distance, +infinity when none is left.
    float next_distance() const noexcept {
        return cur_ < size_ ? dist_[cur_] : std::numeric_limits<float>::infinity();
    }
    /// Flags the closest unexpanded entry expanded and returns its slot (has_next() must hold).
    std::uint32_t pop() noexcept {
        const std::uint32_t slot = slot_[cur_];
        flags_[cur_ >> 6] |= std::uint64_t{1} << (cur_ & 63);
        // The next clear flag: a word at a time (bits at or past size_ may be stale; min() cuts them).
        std::size_t i = cur_ + 1;
        while (i < size_) {
            const std::uint64_t open = ~flags_[i >> 6] >> (i & 63);
            if (open != 0) {
                i += static_cast<std::size_t>(__builtin_ctzll(open));
                break;
            }
            i = (i | 63) + 1;
        }
        cur_ = std::min(i, size_);
        return slot;
    }
    /// Entry i (i < size()), ascending by distance.
    Entry operator[](std::size_t i) const noexcept { return {dist_[i], slot_[i]}; }
    /// kChecked: whether entry i (i < size()) may be returned.
    bool allowed(std::size_t i) const noexcept
        requires kChecked
    {
        return bit(allow_.data(), i);
    }
    /// The distance of the entry of rank j (0-based) among those a search may return (kChecked: the
    /// allowed ones), +infinity when there are not that many.
    float returnable_distance(std::size_t j) const noexcept {
        if constexpr (!kChecked) {
            return j < size_ ? dist_[j] : std::numeric_limits<float>::infinity();
        } else {
            for (std::size_t w = 0; w * 64 < size_; ++w) {
                std::uint64_t bits = allow_[w];
                if (size_ - w * 64 < 64) bits &= (std::uint64_t{1} << (size_ - w * 64)) - 1;  // stale bits
                const auto c = static_cast<std::size_t>(__builtin_popcountll(bits));
                if (j >= c) {
                    j -= c;
                    continue;
                }
                for (; j > 0; --j) bits &= bits - 1;
                return dist_[w * 64 + static_cast<std::size_t>(__builtin_ctzll(bits))];
            }
            return std::numeric_limits<float>::infinity();
        }
    }
    /// The distances, ascending (size() of them).
    const float* distances() const noexcept { return dist_.data(); }
    /// The slots in the order of distances().
    const std::uint32_t* slots() const noexcept { return slot_.data(); }
    /// The entries a search returns as (distance, slot) candidates, ascending, replacing `out`'s
    /// contents: all of them, or with kChecked the allowed ones (at most ef).
    void copy_to(std::vector<Candidate>& out) const {
        out.clear();
        out.reserve(size_);
        for (std::size_t i = 0; i < size_; ++i) {
            if constexpr (kChecked) {
                if (!bit(allow_.data(), i)) continue;
            }
            out.emplace_back(dist_[i], slot_[i]);
        }
    }

private:
    /// The number of entries at most d: the index of the first entry farther than d. Branch-free on
    /// the comparisons (data the predictor cannot learn): kCount entries are counted (independent
    /// compares the compiler vectorises; entries past size() are +infinity), and a longer beam is
    /// first halved down to a stretch of at most kCount (a chain of dependent loads, but few).
    std::size_t position(float d) const noexcept {
        const float* base = dist_.data();
        std::size_t n = size_;
        while (n > kCount) {
            const std::size_t half = n / 2;
            base = base[half] <= d ? base + half : base;
            n -= half;
        }
        // Entries before base are <= d; entries from base + n on are > d (or the +infinity padding).
        std::uint32_t below = 0;
        for (std::size_t i = 0; i < kCount; ++i) below += base[i] <= d ? 1u : 0u;
        // A distance of +infinity (overflowing vectors) enters while the beam has room and counts
        // the padding too: it goes last.
        return std::min(size_, static_cast<std::size_t>(base - dist_.data()) + below);
    }
    /// kChecked: room for one more entry and its kCount of +infinity padding (doubling).
    void grow() {
        const std::size_t want = std::max<std::size_t>(2 * filled_, size_ + 1 + kCount);
        if (dist_.size() < want) {
            dist_.resize(want);
            slot_.resize(want);
        }
        std::fill(dist_.begin() + static_cast<std::ptrdiff_t>(filled_), dist_.begin() + static_cast<std::ptrdiff_t>(want),
                  std::numeric_limits<float>::infinity());
        const std::size_t words = want / 64 + 2;
        if (flags_.size() < words) flags_.resize(words);
        if (allow_.size() < words) allow_.resize(words);
        filled_ = want;
    }
    /// Moves entries [lo, kept) of a 4-byte array to [lo + 1, kept + 1), writing nothing else. Up to
    /// kInlineMove entries, inline 16-byte moves from the top down instead of a memmove call (most
    /// insertions into a narrow beam move a few entries, where the call cost more than the copy): the
    /// lowest four are loaded first and stored last, so a remainder of fewer than four needs no loop
    /// of its own. Longer moves call memmove (its wide vector moves win there).
    template <class T>
    static void shift_up(T* a, std::size_t lo, std::size_t kept) noexcept {
        static_assert(sizeof(T) == 4);
#if defined(__SSE2__)
        if (kept - lo > kInlineMove) {
            std::memmove(a + lo + 1, a + lo, (kept - lo) * sizeof(T));
            return;
        }
        if (kept - lo >= 4) {
            const __m128i first = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + lo));
            std::size_t i = kept;
            while (i - lo >= 4) {
                i -= 4;
                _mm_storeu_si128(reinterpret_cast<__m128i*>(a + i + 1),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
            }
            _mm_storeu_si128(reinterpret_cast<__m128i*>(a + lo + 1), first);
            return;
        }
        // Fewer than four: one at a time from the top (spelled out: a loop here became a memmove call).
        const std::size_t r = kept - lo;
        if (r > 0) {
            a[kept] = a[kept - 1];
            if (r > 1) {
                a[kept - 1] = a[kept - 2];
                if (r > 2) a[kept - 2] = a[kept - 3];
            }
        }
#else
        std::memmove(a + lo + 1, a + lo, (kept - lo) * sizeof(T));
#endif
    }
    /// Shifts the bits of entries [lo, kept) of a bitset up by one and sets lo's to `value` (the new
    /// entry's).
    static void open_bit(std::uint64_t* f, std::size_t lo, std::size_t kept, bool value) noexcept {
        const std::size_t w = lo >> 6;
        for (std::size_t i = kept >> 6; i > w; --i) f[i] = (f[i] << 1) | (f[i - 1] >> 63);
        const std::uint64_t low = (std::uint64_t{1} << (lo & 63)) - 1;
        f[w] = (f[w] & low) | ((f[w] & ~low) << 1) | (static_cast<std::uint64_t>(value) << (lo & 63));
    }
    static bool bit(const std::uint64_t* f, std::size_t i) noexcept { return (f[i >> 6] >> (i & 63)) & 1; }

    static constexpr std::size_t kCount = 32;
    static constexpr std::size_t kInlineMove = 16;
    std::vector<float> dist_;
    std::vector<std::uint32_t> slot_;
    std::vector<std::uint64_t> flags_;
    std::vector<std::uint64_t> allow_;  // kChecked only
    std::size_t cap_ = 0, size_ = 0, cur_ = 0;
    std::size_t allowed_ = 0;  // kChecked: allowed entries
    std::size_t filled_ = 0;   // kChecked: dist_[0, filled_) is entries or +infinity
    float bound_ = 0;
    std::uint32_t bound_slot_ = 0;
};

using SortedBeam = BasicSortedBeam<false>;
using CheckedBeam = BasicSortedBeam<true>;

struct SearchScratch {
    explicit SearchScratch(std::size_t n) : visited(n) {}
    VisitedSet visited;
    std::vector<Candidate> candidates;  // min-heap of nodes to expand
    std::vector<Candidate> results;     // max-heap of the best ef found (a walk on a sorted beam:
                                        // ascending)
    SortedBeam beam;                    // the beam of unfiltered searches
    CheckedBeam checked_beam;           // the beam of searches under a mask that allows most nodes
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
