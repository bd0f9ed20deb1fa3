/// @file bitmap.h
/// @brief The one document bitmap type of quiver (a CRoaring compressed bitmap), the versioned set of
/// deleted documents that snapshots share, and `AllowedDocs`, the mask searches pass into index walks.
///
/// - `Bitmap` owns a `roaring_bitmap_t` of 32-bit document numbers. Copies are deep (cost proportional
///   to the compressed size); `contains` is the inlined CRoaring lookup. Serialisation is CRoaring's
///   portable format; `deserialize` refuses malformed or trailing bytes with kDataLoss.
///   Seeking: `next_member(x)` is the first member >= x (one lookup); `Bitmap::Cursor` walks members
///   ascending and `seek`s forward, which is how a filter drives a posting walk (sparse/maxscore.h).
/// - `DeletedDocs` is immutable: `with(docs)` returns a new version and leaves the old one intact, so a
///   snapshot keeps the version it was published with. New deletes go into a small delta bitmap that is
///   folded into the shared base once it outgrows max(4096, base / 8): a delete batch costs
///   O(batch + delta), the whole set is copied only once per base / 8 deletes (amortised O(1) each).
///   `merged()` is the version as one bitmap (built once per version, on first use, outside any writer
///   lock), which is what walks test: one lookup per candidate.
/// - `AllowedDocs` says which documents a walk may return: not in `deleted` and, when `filter` is set,
///   in `filter` (a live set and an optional filter bitmap). Walks test candidates with `allows` and
///   skip the rest (graph walks still traverse them). Null members restrict nothing. The referenced
///   bitmaps must outlive the walk.
///
/// Thread-safety: const methods of all three are safe from many threads; a `Bitmap` being mutated
/// must not be read concurrently.
#pragma once

#include <roaring/roaring.h>

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quiver/core/result.h"

namespace quiver {

class Bitmap {
public:
    Bitmap();
    ~Bitmap();
    Bitmap(const Bitmap& other);
    Bitmap& operator=(const Bitmap& other);
    /// A moved-from bitmap may only be destroyed or assigned to.
    Bitmap(Bitmap&& other) noexcept : r_(other.r_) { other.r_ = nullptr; }
    Bitmap& operator=(Bitmap&& other) noexcept;

    /// The documents [begin, end).
    static Bitmap range(std::uint32_t begin, std::uint32_t end);
    static Bitmap of(std::span<const std::uint32_t> docs);

    void add(std::uint32_t doc) { roaring_bitmap_add(r_, doc); }
    void add_many(std::span<const std::uint32_t> docs);
    void remove(std::uint32_t doc) { roaring_bitmap_remove(r_, doc); }
    bool contains(std::uint32_t doc) const noexcept { return roaring_bitmap_contains(r_, doc); }
    std::uint64_t cardinality() const noexcept { return roaring_bitmap_get_cardinality(r_); }
    bool empty() const noexcept { return roaring_bitmap_is_empty(r_); }
    /// Largest member; only when not empty.
    std::uint32_t maximum() const noexcept { return roaring_bitmap_maximum(r_); }
    /// The first member >= x, or nullopt when there is none. O(log containers + log container size).
    std::optional<std::uint32_t> next_member(std::uint32_t x) const noexcept;
    /// 65,536-document chunks holding members (roaring containers): the unit set operations cost.
    std::size_t chunks() const noexcept { return static_cast<std::size_t>(r_->high_low_container.size); }

    /// Forward cursor over the members, ascending: starts on the first member; `seek` never moves
    /// backwards. Valid while the bitmap lives and is not mutated. Single-threaded.
    ///
    /// The members are copied out once, at construction (O(members), CRoaring's bulk extraction, 4
    /// bytes each), and `seek` gallops forward over that array: O(log distance). CRoaring 0.2.66's own
    /// iterator seek (`roaring_move_uint32_iterator_equalorlarger`) first computes the container's
    /// maximum, which for a bitset container scans its 1,024 words down from the top: every seek into a
    /// partly filled container (the last one of every segment) paid that scan (session 13,
    /// docs/filtering.md).
    class Cursor {
    public:
        explicit Cursor(const Bitmap& b) : members_(b.cardinality()) {
            if (!members_.empty()) roaring_bitmap_to_uint32_array(b.r_, members_.data());
        }
        bool valid() const noexcept { return i_ < members_.size(); }
        /// The current member; only when valid().
        std::uint32_t value() const noexcept { return members_[i_]; }
        /// Moves to the next member; returns valid().
        bool next() noexcept {
            ++i_;
            return valid();
        }
        /// Moves to the first member >= x (stays when the current member is already >= x); returns valid().
        bool seek(std::uint32_t x) noexcept {
            const std::size_t n = members_.size();
            if (i_ >= n || members_[i_] >= x) return i_ < n;
            // Gallop: members_[lo] < x; double the step until members_[hi] >= x (or the end), then
            // binary-search (lo, hi].
            std::size_t lo = i_, step = 1, hi = i_ + 1;
            while (hi < n && members_[hi] < x) {
                lo = hi;
                step *= 2;
                hi = lo + step;
            }
            hi = std::min(hi, n);
            i_ = static_cast<std::size_t>(std::lower_bound(members_.data() + lo + 1, members_.data() + hi, x) -
                                          members_.data());
            return i_ < n;
        }

    private:
        std::vector<std::uint32_t> members_;
        std::size_t i_ = 0;
    };

    void union_with(const Bitmap& other) { roaring_bitmap_or_inplace(r_, other.r_); }
    void intersect_with(const Bitmap& other) { roaring_bitmap_and_inplace(r_, other.r_); }
    void subtract(const Bitmap& other) { roaring_bitmap_andnot_inplace(r_, other.r_); }
    /// Members ascending.
    std::vector<std::uint32_t> to_vector() const;
    /// Calls `fn(doc)` for every member, ascending.
    template <class Fn>
    void for_each(Fn&& fn) const {
        roaring_iterate(
            r_,
            [](std::uint32_t v, void* p) {
                (*static_cast<Fn*>(p))(v);
                return true;
            },
            &fn);
    }
    /// Converts runs to run containers and frees slack (after bulk construction).
    void optimize();
    bool operator==(const Bitmap& other) const noexcept { return roaring_bitmap_equals(r_, other.r_); }
    std::size_t memory_bytes() const noexcept { return roaring_bitmap_size_in_bytes(r_); }

    /// CRoaring's portable serialisation.
    std::string serialize() const;
    /// Reads exactly `bytes` as a portable bitmap; kDataLoss when they are not one.
    static Result<Bitmap> deserialize(std::span<const std::byte> bytes);

private:
    explicit Bitmap(roaring_bitmap_t* r);
    roaring_bitmap_t* r_;
};

class DeletedDocs {
public:
    DeletedDocs() = default;
    explicit DeletedDocs(Bitmap all);

    bool contains(std::uint32_t doc) const noexcept {
        return (base_ && base_->contains(doc)) || (delta_ && delta_->contains(doc));
    }
    std::uint64_t count() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    /// A new version that also holds `docs` (any order; members already deleted are ignored).
    [[nodiscard]] DeletedDocs with(std::span<const std::uint32_t> docs) const;
    /// Every member in one bitmap (persisting, merging).
    Bitmap flatten() const;
    /// Members of this version that `older` (an earlier version of the same set) lacks.
    Bitmap added_since(const DeletedDocs& older) const;
    /// Every member in one bitmap, built on the first call for this version (thread-safe) and
    /// shared by its copies; valid while a copy of this version lives.
    const Bitmap& merged() const;
    /// Every member as plain words (bit d % 64 of word d / 64, up to the largest member), built on
    /// the first call for this version (thread-safe) and shared by its copies; valid while a copy of
    /// this version lives. Posting walks test candidates against it in one load (DenseBits).
    std::span<const std::uint64_t> dense_words() const;

private:
    struct Merged {
        std::once_flag once;
        Bitmap bits;
    };
    struct Dense {
        std::once_flag once;
        std::vector<std::uint64_t> words;
    };
    std::shared_ptr<const Bitmap> base_;
    std::shared_ptr<const Bitmap> delta_;
    std::shared_ptr<Merged> merged_;  // set while delta_ is
    std::shared_ptr<Dense> dense_;    // set while the version is not empty
    std::uint64_t count_ = 0;
};

/// Membership in a set given as plain words (`DeletedDocs::dense_words`): one load per test.
struct DenseBits {
    std::span<const std::uint64_t> words;
    bool contains(std::uint32_t x) const noexcept {
        const std::size_t w = x >> 6;
        return w < words.size() && ((words[w] >> (x & 63u)) & 1u) != 0;
    }
};

/// Membership tests with non-decreasing arguments (a posting walk's candidates): the first member at
/// or after the last argument is kept, so a test below it costs one comparison, and the bitmap is
/// consulted (a forward seek) only when the walk reaches that member. A sparse set such as a segment's
/// deletes then costs almost nothing per candidate, where `contains` binary-searches a container.
class AscendingMembership {
public:
    explicit AscendingMembership(const Bitmap& b) : cursor_(b) {}
    /// Requires x >= every earlier argument.
    bool contains(std::uint32_t x) noexcept {
        if (!cursor_.valid() || cursor_.value() > x) return false;
        if (cursor_.value() < x && !cursor_.seek(x)) return false;
        return cursor_.value() == x;
    }

private:
    Bitmap::Cursor cursor_;
};

struct AllowedDocs {
    const Bitmap* deleted = nullptr;  ///< documents never returned (e.g. `DeletedDocs::merged()`)
    const Bitmap* filter = nullptr;   ///< when set, only these documents are returned
    /// Optional: `deleted` as plain words (`DeletedDocs::dense_words`); when set, walks test
    /// candidates against it instead of the bitmap. Must hold exactly `deleted`'s members.
    std::span<const std::uint64_t> deleted_words = {};

    /// The mask of a segment's delete set (null or empty: nothing deleted) and an optional filter.
    static AllowedDocs of(const DeletedDocs* deleted, const Bitmap* filter = nullptr) {
        if (deleted == nullptr || deleted->empty()) return {nullptr, filter};
        return {&deleted->merged(), filter, deleted->dense_words()};
    }
    /// False when every document is allowed (walks then take their unchecked path).
    bool restricts() const noexcept { return deleted != nullptr || filter != nullptr; }
    bool allows(std::uint32_t doc) const noexcept {
        const bool dead = deleted != nullptr &&
                          (deleted_words.empty() ? deleted->contains(doc) : DenseBits{deleted_words}.contains(doc));
        return !dead && (filter == nullptr || filter->contains(doc));
    }
};

}  // namespace quiver
