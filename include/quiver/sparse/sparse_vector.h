/// @file sparse_vector.h
/// @brief Sparse term-weight vectors (SPLADE, uniCOIL, BM25 impacts), a vocabulary for string or
/// integer term ids, a CSR collection, and readers/writers for Anserini's JsonVectorCollection JSONL
/// and for TSV queries.
///
/// Canonical form (every vector the library stores or searches with): terms strictly ascending, every
/// weight finite and > 0. `canonicalize` enforces it:
///   - a negative, NaN or infinite weight is kInvalidArgument naming the term;
///   - a term given twice is kInvalidArgument (JSON objects with duplicate keys are ambiguous);
///   - weights equal to 0 are dropped (they can never contribute to an inner product);
///   - an empty vector is valid: as a document it is stored but can never be retrieved, as a query it
///     returns no results.
/// Queries may name terms the vocabulary does not know: those terms are dropped (they match no
/// document, so the inner product is unchanged) and counted in `QuerySet::unknown_terms`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::sparse {

using TermId = std::uint32_t;

/// A non-owning canonical sparse vector: terms ascending, weights > 0, same length.
struct SparseVectorView {
    std::span<const TermId> terms;
    std::span<const float> weights;
    std::size_t size() const noexcept { return terms.size(); }
    bool empty() const noexcept { return terms.empty(); }
};

/// An owning sparse vector. Not necessarily canonical until `canonicalize` has accepted it.
struct SparseVector {
    std::vector<TermId> terms;
    std::vector<float> weights;
    SparseVectorView view() const noexcept { return {terms, weights}; }
    std::size_t size() const noexcept { return terms.size(); }
};

/// Sorts by term and validates (see the file comment). `what` names the vector in error messages
/// ("document 'd17'").
[[nodiscard]] Status canonicalize(SparseVector& v, std::string_view what);

/// Inner product of two canonical vectors (merge walk).
float dot(SparseVectorView a, SparseVectorView b) noexcept;

/// How term keys in JSON/TSV input become TermIds.
enum class TermMode : std::uint8_t {
    kString = 0,   ///< every distinct key string gets the next id, in order of first appearance
    kInteger = 1,  ///< keys are decimal integers in [0, 2^31) used directly as ids
};

/// Maps term strings to dense ids. In kInteger mode it only tracks the dimension (max id + 1).
/// Not thread-safe for `add`; `find` is safe concurrently with other `find`s.
class Vocabulary {
public:
    explicit Vocabulary(TermMode mode = TermMode::kString) : mode_(mode) {}

    TermMode mode() const noexcept { return mode_; }
    /// Number of term ids in use: strings known (kString), or max id + 1 (kInteger).
    std::uint32_t dim() const noexcept { return dim_; }
    /// Id for `key`, adding it if new (kString) or parsing it (kInteger; bad integers are
    /// kInvalidArgument).
    [[nodiscard]] Result<TermId> add(std::string_view key);
    /// Id for `key`, or kNotFound when unknown (or, in kInteger mode, >= dim or not an integer).
    [[nodiscard]] Result<TermId> find(std::string_view key) const;
    /// The key of `id`: its string (kString) or decimal form (kInteger).
    std::string key(TermId id) const;
    /// Raises the dimension (kInteger only), e.g. to the generator's vocabulary size.
    void reserve_dim(std::uint32_t dim) noexcept {
        if (dim > dim_) dim_ = dim;
    }
    /// Strings in id order (kString; empty in kInteger mode).
    const std::vector<std::string>& strings() const noexcept { return strings_; }
    /// Rebuilds a kString vocabulary from strings in id order (duplicates are kDataLoss).
    [[nodiscard]] static Result<Vocabulary> from_strings(std::vector<std::string> strings);
    static Vocabulary integer(std::uint32_t dim) {
        Vocabulary v(TermMode::kInteger);
        v.dim_ = dim;
        return v;
    }

private:
    TermMode mode_;
    std::uint32_t dim_ = 0;
    std::vector<std::string> strings_;
    std::unordered_map<std::string, TermId> ids_;
};

/// Documents in compressed-sparse-row form: row i is terms/weights[offsets[i], offsets[i+1]).
/// Every row is canonical. `ids` are the caller's document ids, one per row.
struct SparseCollection {
    std::vector<std::uint64_t> offsets{0};
    std::vector<TermId> terms;
    std::vector<float> weights;
    std::vector<std::string> ids;
    Vocabulary vocab;

    std::size_t size() const noexcept { return offsets.size() - 1; }
    std::size_t nnz() const noexcept { return terms.size(); }
    /// Vocabulary dimension: every term id is below it.
    std::uint32_t dim() const noexcept { return vocab.dim(); }
    SparseVectorView row(std::size_t i) const noexcept {
        const std::size_t b = offsets[i], e = offsets[i + 1];
        return {std::span<const TermId>(terms.data() + b, e - b),
                std::span<const float>(weights.data() + b, e - b)};
    }
    /// Canonicalizes `v` and appends it (errors name `id`).
    [[nodiscard]] Status add(std::string id, SparseVector v);
    /// Appends an already canonical row (terms must be < dim(); checked only in debug builds).
    void append_canonical(std::string id, SparseVectorView v);
};

/// Queries: ids and canonical vectors over a collection's vocabulary.
struct QuerySet {
    std::vector<std::string> ids;
    std::vector<SparseVector> vectors;
    std::size_t unknown_terms = 0;  ///< query terms dropped because the vocabulary lacks them
    std::size_t size() const noexcept { return ids.size(); }
};

/// Reads JsonVectorCollection JSONL: one object per line, `"id"` (string or integer; `"_id"` and
/// `"docid"` are accepted too), optional `"contents"` (ignored), and `"vector"`: an object mapping term
/// keys to non-negative numbers. Blank lines are skipped. Errors name the file and line.
/// Terms are added to `vocab`, which the collection then owns a copy of.
[[nodiscard]] Result<SparseCollection> read_collection_jsonl(const std::string& path, Vocabulary vocab);
/// Parses JSONL text (same format) into a collection; `source` names it in errors.
[[nodiscard]] Result<SparseCollection> parse_collection_jsonl(std::string_view text, std::string_view source,
                                                              Vocabulary vocab);

/// Reads queries against `vocab` (not modified). The format is detected from the first non-blank
/// line: `{` means JSONL as above; anything else is TSV, `qid<TAB>tokens`, where each token is
/// `term:weight` or a bare `term` (weight 1; a bare term repeated n times has weight n, as in
/// Anserini's pretokenized impact queries).
[[nodiscard]] Result<QuerySet> read_queries(const std::string& path, const Vocabulary& vocab);
[[nodiscard]] Result<QuerySet> parse_queries(std::string_view text, std::string_view source,
                                             const Vocabulary& vocab);

/// Writes a collection (or queries) as JsonVectorCollection JSONL, weights printed shortest-round-trip.
[[nodiscard]] Status write_collection_jsonl(const std::string& path, const SparseCollection& c);
[[nodiscard]] Status write_queries_jsonl(const std::string& path, const QuerySet& q, const Vocabulary& vocab);

/// Summary statistics of a collection or query set, for docs and benchmark reports.
struct SparseStats {
    std::size_t vectors = 0;
    std::size_t nnz = 0;
    double mean_nnz = 0, min_nnz = 0, max_nnz = 0;
    double mean_weight = 0, max_weight = 0;
    /// Mean share of a vector's L1 mass held by its 10% largest weights ("concentration of importance").
    double top10pct_mass = 0;
    std::size_t distinct_terms = 0;  ///< counted over the first 200,000 vectors
};
SparseStats compute_stats(const SparseCollection& c);
SparseStats compute_stats(const std::vector<SparseVector>& vs);

}  // namespace quiver::sparse
