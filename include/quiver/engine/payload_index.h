/// @file payload_index.h
/// @brief Payload (attribute) indexes and the evaluation of a filter to a document bitmap.
///
/// A `PayloadIndex` covers the attribute fields of a set of documents numbered 0..n-1 (a segment's
/// local numbers, or the rows of a CLI index):
///   - keyword, boolean and keyword_list fields: the distinct values sorted bytewise (booleans as
///     "false"/"true"), one roaring bitmap of documents per value (a list adds the document to each
///     of its elements);
///   - integer and float fields: the (value, document) pairs sorted by value (integers compared as
///     doubles, as `Filter::matches` does), plus one bitmap per bucket of `kRangeBucket` consecutive
///     pairs, so a range is the union of the buckets it covers and a scan of at most two partial ones;
///   - every indexed field: the bitmap of documents that have it (exists, ne, not).
/// Costs: eq / in = one binary search per value (an `in` list of v values costs v lookups, never
/// documents x values); prefix = one binary search plus the union of the matching values' bitmaps;
/// range = two binary searches, the covered buckets' union and <= 2 * kRangeBucket pair visits.
///
/// `evaluate_filter` turns a validated filter into the exact bitmap of matching documents (its
/// cardinality is the count the planner uses): indexed leaves are lookups, leaves on fields without
/// an index scan the documents' attributes with a `CompiledFilter` (under an `and`, only the
/// documents its indexed children left). `CompiledFilter` is the per-document form: `in` lists as
/// sorted sets (one binary search per document).
///
/// File (container kind `PIDX`, version 1, docs/collections.md): the document count, then per field
/// its name, type and structures; `open` validates everything (sorted values, documents in range,
/// bitmaps well formed) and refuses damage with kDataLoss.
///
/// Thread-safety: built or opened indexes are immutable; const methods are safe from many threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/bitmap.h"
#include "quiver/core/result.h"
#include "quiver/engine/schema.h"

namespace quiver::engine {

using Attributes = std::map<std::string, FieldValue, std::less<>>;

/// A validated filter in per-document form. The filter must outlive it.
class CompiledFilter {
public:
    explicit CompiledFilter(const Filter& filter);
    ~CompiledFilter();
    CompiledFilter(CompiledFilter&&) noexcept;
    CompiledFilter& operator=(CompiledFilter&&) noexcept;
    /// Same answer as `Filter::matches`; an `in` leaf costs one binary search.
    bool matches(const Attributes& fields) const;

    struct Node;

private:
    std::unique_ptr<Node> root_;
};

class PayloadIndex {
public:
    /// Pairs per range bucket of a numeric field.
    static constexpr std::uint32_t kRangeBucket = 4096;

    PayloadIndex();
    ~PayloadIndex();
    PayloadIndex(PayloadIndex&&) noexcept;
    PayloadIndex& operator=(PayloadIndex&&) noexcept;

    /// Indexes the fields of `schema` with `payload_index` over documents `attrs` (document i = attrs[i]).
    static PayloadIndex build(const Schema& schema, std::span<const Document> attrs);
    /// Indexes every attribute field in `fields` (the CLI: all fields of an attributes file).
    static PayloadIndex build_fields(std::span<const FieldSpec> fields, std::span<const Document> attrs);
    /// Writes the index atomically (container kind PIDX).
    [[nodiscard]] Status save(const std::string& path) const;
    /// Reads and validates a file written by save(); kDataLoss on any damage (a missing file too).
    [[nodiscard]] static Result<PayloadIndex> open(const std::string& path);

    /// Documents covered.
    std::uint32_t size() const noexcept;
    /// The indexed fields (name and type; `payload_index` set).
    const std::vector<FieldSpec>& fields() const noexcept;
    bool indexes(std::string_view field) const noexcept;
    std::size_t memory_bytes() const;

    struct Field;
    const Field* field(std::string_view name) const noexcept;

private:
    std::uint32_t docs_ = 0;
    std::vector<FieldSpec> specs_;
    std::vector<Field> fields_;
};

/// What an evaluation did (for `explain` and tests).
struct FilterEvalStats {
    std::uint64_t index_lookups = 0;  ///< binary searches in value tables
    std::uint64_t docs_scanned = 0;   ///< per-document tests of leaves on fields without an index
};

/// The per-request work budget of filters: what one search, count or scroll may spend evaluating its
/// filter, in deterministic work units (a request's fate never depends on machine load):
///   - 1 per document a leaf on a field without a payload index tests (segment scans), and, where a
///     whole filter is tested per document (the memtable, scroll pages), its node count per document;
///   - 1 per payload-index lookup (a binary search) and per (value, document) pair a numeric leaf
///     visits outside whole range buckets;
///   - `kChunkUnits` per 65,536-document chunk (roaring container) of every bitmap an and / or / not,
///     an `in` or `prefix` union or a range's bucket union combines.
/// A unit is about one attribute test of one document, so the default limit (`kDefaultLimit`,
/// CollectionOptions::filter_budget, 2^26) allows ~67M of them. Work is charged before it is done: a
/// request over the limit stops there and fails with kResourceExhausted (HTTP 422
/// `filter_budget_exceeded`), it never runs on. Not thread-safe (one per request).
class FilterBudget {
public:
    static constexpr std::uint64_t kDefaultLimit = std::uint64_t{1} << 26;  // 67,108,864 units
    static constexpr std::uint64_t kChunkUnits = 64;

    explicit FilterBudget(std::uint64_t limit = kDefaultLimit) noexcept : limit_(limit) {}
    /// Adds `units`; false once the total is over the limit (and from then on).
    bool charge(std::uint64_t units) noexcept {
        used_ = units > ~std::uint64_t{0} - used_ ? ~std::uint64_t{0} : used_ + units;
        return used_ <= limit_;
    }
    bool exceeded() const noexcept { return used_ > limit_; }
    std::uint64_t used() const noexcept { return used_; }
    std::uint64_t limit() const noexcept { return limit_; }
    /// ok, or the kResourceExhausted error a request over the limit fails with.
    [[nodiscard]] Status status() const;

private:
    std::uint64_t limit_;
    std::uint64_t used_ = 0;
};

/// Nodes (leaves and and/or/not) of a filter: the units one per-document test of it is charged.
std::uint64_t filter_nodes(const Filter& filter) noexcept;

/// The documents in [0, n) matching `filter` (validated against the schema the index was built from),
/// n = attrs.size(), or index.size() when `attrs` is empty (every filtered field must then be indexed;
/// a leaf on another field matches nothing). `index` may index none, some or all of the fields.
Bitmap evaluate_filter(const Filter& filter, const PayloadIndex& index, std::span<const Document> attrs,
                       FilterEvalStats* stats = nullptr);
/// The same within `budget` (charged as its comment says; shared by a request's segments):
/// kResourceExhausted, with no bitmap, once the evaluation would go over it.
Result<Bitmap> evaluate_filter(const Filter& filter, const PayloadIndex& index, std::span<const Document> attrs,
                               FilterBudget& budget, FilterEvalStats* stats = nullptr);

}  // namespace quiver::engine
