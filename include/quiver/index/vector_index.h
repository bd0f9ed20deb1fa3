/// @file vector_index.h
/// @brief The dense vector index interface (flat and HNSW implement it) and its registry.
///
/// Layout contract: queries and vectors are row-major `MatrixView<float>` (row i, column j at
/// `data[i * dim + j]`). Labels are the caller's 64-bit ids; an index never returns a removed label.
/// Distances follow simd::Metric: squared L2, or 1 - inner product (cosine normalises both sides).
///
/// Thread-safety (one contract for every dense index; ARCHITECTURE.md): const calls (`search`, `save`,
/// `info`, `memory_bytes`) may run concurrently with each other. `add` and `remove` need exclusive
/// access: no other call on the same index may overlap them (HnswIndex::add and remove may rebuild the
/// graph to reclaim tombstones). Label kNoLabel is reserved and rejected by `add`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quiver/core/bitmap.h"
#include "quiver/core/ids.h"
#include "quiver/core/matrix_view.h"
#include "quiver/core/result.h"
#include "quiver/simd/kernels.h"

namespace quiver::index {

using simd::Metric;

/// k results for each of num_queries queries, row-major; row i sorted nearest first. Rows with fewer
/// than k hits are padded with kNoLabel and +infinity.
struct SearchResults {
    std::size_t num_queries = 0;
    std::size_t k = 0;
    std::vector<Label> labels;     ///< num_queries * k
    std::vector<float> distances;  ///< num_queries * k

    SearchResults() = default;
    SearchResults(std::size_t nq, std::size_t kk);
    Label label(std::size_t q, std::size_t j) const noexcept { return labels[q * k + j]; }
    float distance(std::size_t q, std::size_t j) const noexcept { return distances[q * k + j]; }
    /// Number of real hits in row q (before padding).
    std::size_t count(std::size_t q) const noexcept;
};

/// The largest squared L2 norm a vector may have under the L2 and inner-product metrics: between two
/// such vectors every distance stays finite in float32 (|a - b|^2 <= 2|a|^2 + 2|b|^2 and
/// |a.b| <= |a||b|), so a norm up to about 9.2e18. Indexes reject larger vectors and queries (a
/// distance of +infinity ranks nothing); cosine normalises first, so any finite nonzero vector serves.
inline constexpr double kMaxSquaredNorm = static_cast<double>(std::numeric_limits<float>::max()) / 4.0;

/// True when `v` may be indexed or searched under `metric` without its distances overflowing.
inline bool norm_in_range(std::span<const float> v, simd::Metric metric) noexcept {
    if (metric == simd::Metric::kCosine) return true;
    double norm = 0;
    for (float x : v) norm += static_cast<double>(x) * x;
    return norm <= kMaxSquaredNorm;
}

/// Answers "may this label be returned?". Must be thread-safe and cheap.
class LabelFilter {
public:
    virtual ~LabelFilter() = default;
    virtual bool allows(Label label) const noexcept = 0;
    /// A hint for speed, never for results: true when the filter is known to allow at least about
    /// half of an index's entries. HNSW then walks one sorted beam whose entries include the
    /// disallowed nodes it traverses, instead of two heaps (the same nodes expanded, the same results;
    /// with a selective filter the beam would hold many disallowed entries and cost more than heaps).
    virtual bool mostly_allows() const noexcept { return false; }
};

/// A LabelFilter over an AllowedDocs mask, for indexes whose labels are document numbers (< 2^32):
/// the allowed-docs interface of the sparse walks, for dense indexes. HNSW traverses disallowed
/// nodes but never returns them.
class AllowedLabels final : public LabelFilter {
public:
    /// `mostly`: the mask allows at least about half of the index's entries (mostly_allows()).
    explicit AllowedLabels(const AllowedDocs& allowed, bool mostly = false) : allowed_(allowed), mostly_(mostly) {}
    bool allows(Label label) const noexcept override {
        const std::uint64_t v = to_int(label);
        return v <= 0xFFFFFFFFu && allowed_.allows(static_cast<std::uint32_t>(v));
    }
    bool mostly_allows() const noexcept override { return mostly_; }

private:
    AllowedDocs allowed_;
    bool mostly_;
};

struct SearchParams {
    std::size_t k = 10;
    std::size_t ef = 0;            ///< HNSW beam width; 0 = max(k, 64). Ignored by flat.
    std::size_t threads = 1;       ///< threads over queries; 0 = all cores
    const LabelFilter* filter = nullptr;
    std::size_t nprobe = 0;        ///< IVF lists probed; 0 = the index's default. Ignored by others.
    /// Indexes over compressed codes: how many of the best candidates by code distance are re-scored
    /// in float32. kRescoreDefault = the index's default (RaBitQ: every candidate its error bound
    /// cannot rule out); 0 = none (code distances are returned). Ignored by float32 indexes.
    std::size_t rescore = kRescoreDefault;
    static constexpr std::size_t kRescoreDefault = ~std::size_t{0};
    /// The caller keeps no result farther than this (it holds k nearer ones, e.g. from other segments;
    /// +infinity = no bar). A float32 HNSW walk on its sorted beam (plain or checked) then walks nodes
    /// farther than the bar only while they are among the nearest ef/2 + 1 returnable entries of its
    /// beam: where fewer than that beat the bar, the walk is exactly the ef/2 + 1 walk. Less work; a
    /// result nearer than the bar that the graph reaches only through farther nodes may be missed.
    /// Results beyond the bar may still be returned, and fewer than k when k > ef/2 + 1 (the rows
    /// are padded as for a small index): every result left out is farther than the bar. Ignored by
    /// flat and coded indexes and by the two-heap walk of selective filters.
    float bound = std::numeric_limits<float>::infinity();
};

struct IndexInfo {
    std::string kind;  ///< "flat" | "hnsw"
    std::size_t dim = 0;
    Metric metric = Metric::kL2;
    std::size_t size = 0;     ///< live (not removed) vectors
};

class VectorIndex {
public:
    virtual ~VectorIndex() = default;

    virtual IndexInfo info() const = 0;
    /// Adds rows of `vectors` under `labels` (same count). A label that is present is replaced.
    /// Rejects dimension mismatch and non-finite values (kInvalidArgument) without changing the index.
    virtual Status add(MatrixView<float> vectors, std::span<const Label> labels) = 0;
    /// Removes labels; unknown labels are ignored. Returns the number removed.
    virtual Result<std::size_t> remove(std::span<const Label> labels) = 0;
    virtual Result<SearchResults> search(MatrixView<float> queries, const SearchParams& params) const = 0;
    /// Writes a versioned, checksummed file (atomically replaced).
    virtual Status save(const std::string& path) const = 0;
    /// Bytes of memory held for vectors, graph and ids.
    virtual std::size_t memory_bytes() const = 0;
    /// An opened index checks its large sections (vectors, codes, graph) on first use: this runs those
    /// checks now (once; thread-safe), kDataLoss naming the file and section. Every search, add,
    /// remove and save calls it first. Ok for an index built in memory.
    virtual Status verify() const { return {}; }

    /// Optional string ids: label i (0..n-1) names external_ids()[i]. Saved with the index.
    void set_external_ids(std::vector<std::string> ids) { external_ids_ = std::move(ids); }
    const std::vector<std::string>& external_ids() const noexcept { return external_ids_; }
    /// The string form of a label: its external id when present, else its decimal value.
    std::string label_name(Label label) const;

protected:
    std::vector<std::string> external_ids_;
};

/// File kinds (fourcc) of the index files.
inline constexpr std::uint32_t kFlatFileKind = 0x54414c46;  // "FLAT"
inline constexpr std::uint32_t kHnswFileKind = 0x57534e48;  // "HNSW"

struct OpenIndexOptions {
    /// HNSW on codes and code indexes: leave the float32 vectors in the file and re-score with pread
    /// (HnswOpenOptions::vectors_on_disk, CodeIndexOpenOptions::vectors_on_disk). No effect on other kinds.
    bool vectors_on_disk = false;
    /// Check every section now (`quiver search --verify`) instead of on first use.
    bool verify = false;
};

/// Opens any quiver vector index file (flat, HNSW or a code index), detecting the kind from its header.
Result<std::unique_ptr<VectorIndex>> open_index(const std::string& path, const OpenIndexOptions& options = {});

/// Labels 0..n-1.
std::vector<Label> sequential_labels(std::size_t n, std::uint64_t first = 0);

}  // namespace quiver::index
