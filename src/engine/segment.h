// Private to engine: an immutable segment — documents (compressed store), ids, sequence numbers,
// attributes, and one BM25 / vector index per indexed field. Built in memory from a batch or a merge;
// persisted to `seg_<id>/` and reopened memory-mapped. Immutable after build: every const method is
// safe from many threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/engine/schema.h"
#include "quiver/index/vector_index.h"
#include "quiver/sparse/bm25_index.h"
#include "quiver/sparse/exact_sparse.h"
#include "quiver/storage/file_format.h"

namespace quiver::engine {

/// A deleted-documents bitmap, one byte per document (copy-on-write in snapshots).
using DeleteSet = std::vector<std::uint8_t>;

struct ScoredDoc {
    std::uint32_t local = 0;
    double score = 0.0;  // higher is better
};

class Segment {
public:
    /// Builds the indexes for `docs` (validated) with per-document sequence numbers.
    static Result<std::shared_ptr<Segment>> build(std::uint64_t id, const Schema& schema, std::vector<Document> docs,
                                                  std::vector<std::uint64_t> seqs, std::size_t threads);
    /// Opens `dir/seg_<id>` written by persist().
    static Result<std::shared_ptr<Segment>> open(const std::string& dir, std::uint64_t id, const Schema& schema);
    /// Writes `dir/seg_<id>/` (each file atomically) and fsyncs the directories.
    Status persist(const std::string& dir) const;

    std::uint64_t id() const noexcept { return id_; }
    std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(ids_.size()); }
    const std::string& doc_id(std::uint32_t local) const noexcept { return ids_[local]; }
    std::uint64_t seq(std::uint32_t local) const noexcept { return seqs_[local]; }
    /// Sets every document's sequence number; only before the segment is shared (the write path).
    void assign_seq(std::uint64_t seq) { std::fill(seqs_.begin(), seqs_.end(), seq); }
    const Document& attributes(std::uint32_t local) const noexcept { return attrs_[local]; }
    /// The slot holding `id` (deleted or not), if any.
    std::optional<std::uint32_t> find(std::string_view id) const {
        const auto it = by_id_.find(id);
        if (it == by_id_.end()) return std::nullopt;
        return it->second;
    }
    /// The full stored document (decompresses its block).
    Result<Document> document(std::uint32_t local) const;
    /// Bytes on disk (persisted) or that would be written.
    std::uint64_t size_bytes() const noexcept { return bytes_; }

    /// BM25 over analysed terms; skips deleted and filtered documents. Best first.
    /// `dead` = number of set entries in `deleted`.
    std::vector<ScoredDoc> search_text(std::size_t field, std::span<const std::string> terms, std::size_t k,
                                       const DeleteSet* deleted, std::size_t dead, const Filter* filter) const;
    /// Exact inner-product top-k for a sparse query (terms unknown to the segment are ignored). Best first.
    std::vector<ScoredDoc> search_sparse(std::size_t field, const SparseTerms& query, std::size_t k,
                                         const DeleteSet* deleted, std::size_t dead, const Filter* filter) const;
    /// Nearest vectors; score = -distance. Best first.
    Result<std::vector<ScoredDoc>> search_vector(std::size_t field, std::span<const float> query, std::size_t k,
                                                 std::size_t ef, const DeleteSet* deleted,
                                                 const Filter* filter) const;

    static std::string dir_name(std::uint64_t id) { return "seg_" + std::to_string(id); }

private:
    Segment() = default;
    Status build_indexes(const Schema& schema, const std::vector<Document>& docs, std::size_t threads);

    std::uint64_t id_ = 0;
    void index_ids();

    std::vector<std::string> ids_;
    std::unordered_map<std::string_view, std::uint32_t> by_id_;  // views into ids_
    std::vector<std::uint64_t> seqs_;
    std::vector<Document> attrs_;             // attribute fields only, for filters
    std::vector<std::uint64_t> block_offsets_;  // into blob_, n_blocks + 1
    std::string owned_blob_;                  // built segments
    std::shared_ptr<storage::MappedFile> mapping_;  // opened segments
    std::span<const std::byte> blob_;
    std::vector<std::optional<sparse::Bm25Index>> text_;         // per schema field
    std::vector<std::unique_ptr<index::VectorIndex>> vectors_;  // per schema field
    std::vector<std::optional<sparse::ExactSparseIndex>> sparse_;  // per schema field
    std::vector<std::string> field_names_;
    std::uint64_t bytes_ = 0;
};

}  // namespace quiver::engine
