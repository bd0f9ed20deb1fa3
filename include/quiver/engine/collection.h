/// @file collection.h
/// @brief A persistent, crash-safe, updatable collection of documents: WAL + immutable segments.
///
/// Storage (docs/collections.md has the byte layouts):
///   - Every write batch is one WAL record, fsynced before the call returns (`WalSync::kEveryAppend`):
///     an acknowledged write survives kill -9. The batch then becomes an in-memory segment (its BM25 and
///     vector indexes built) and is visible to searches started after the call returns.
///   - A background merger persists in-memory segments and merges small or delete-heavy segments into
///     new immutable, memory-mapped segment directories, writes per-segment delete bitmaps, then
///     replaces MANIFEST atomically (tmp + fsync + rename + dir fsync) and drops the obsolete WAL files and
///     segments. Deleted documents are reclaimed by those merges.
///   - Recovery: MANIFEST names the live segments, their delete generations and the checkpoint sequence;
///     WAL records after the checkpoint are replayed; a torn WAL tail is detected (CRC) and truncated.
///     Files not named by MANIFEST are leftovers of an interrupted merge and are removed.
///
/// Thread-safety: every public method is safe to call from many threads. Writers embed, validate and
/// build their batch's segment in parallel, then append + fsync + publish in turn under a writer lock;
/// searches and gets take an immutable snapshot (a pointer copy under a short lock) and
/// never wait for a merge or for a write's fsync. The merger builds outside all locks; only its final
/// commit (delete bitmaps + MANIFEST write) holds the writer lock.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/engine/schema.h"
#include "quiver/storage/wal.h"

namespace quiver::engine {

struct CollectionOptions {
    storage::WalSync wal_sync = storage::WalSync::kEveryAppend;
    bool background_merge = true;       ///< false: merges only run from flush()/optimize() (tests)
    std::size_t max_segments = 8;       ///< more persisted segments than this triggers a merge
    double max_deleted_ratio = 0.3;     ///< a segment with more deleted docs than this is rewritten
    std::size_t flush_docs = 20000;     ///< in-memory docs that trigger a flush (also after 1 s idle)
    std::size_t build_threads = 2;      ///< threads for merges' index builds
};

/// One query clause: a text field with query text, a vector field with a vector, or a sparse-vector
/// field with (term, weight) pairs.
struct QueryClause {
    std::string field;
    std::string text;           ///< text fields
    std::vector<float> vector;  ///< vector fields
    SparseTerms sparse;         ///< sparse-vector fields

    static QueryClause of_text(std::string field, std::string text) {
        QueryClause c;
        c.field = std::move(field);
        c.text = std::move(text);
        return c;
    }
    static QueryClause of_vector(std::string field, std::vector<float> vector) {
        QueryClause c;
        c.field = std::move(field);
        c.vector = std::move(vector);
        return c;
    }
    static QueryClause of_sparse(std::string field, SparseTerms terms) {
        QueryClause c;
        c.field = std::move(field);
        c.sparse = std::move(terms);
        return c;
    }
};

struct SearchRequest {
    std::vector<QueryClause> clauses;  ///< one or more; several are fused by reciprocal rank (k = 60)
    std::size_t k = 10;
    std::optional<Filter> filter;
    std::optional<std::vector<std::string>> return_fields;  ///< nullopt = all stored fields
    std::size_t ef = 0;                 ///< HNSW beam width, 0 = default
};

struct SearchHit {
    std::string id;
    /// Higher is better: BM25 score (text), -distance (vector: squared L2 or 1 - inner product),
    /// inner product (sparse), or the RRF score when several clauses were fused.
    double score = 0.0;
    Document document;  ///< the requested stored fields
};

struct CollectionStats {
    std::size_t documents = 0;          ///< live documents
    std::size_t segments = 0;           ///< persisted + in-memory
    std::size_t memory_segments = 0;
    std::size_t deleted_pending = 0;    ///< deleted documents not yet reclaimed
    std::uint64_t last_seq = 0;
    std::uint64_t merges = 0;
};

class Collection {
public:
    /// Creates a new collection in `dir` (which must not exist).
    [[nodiscard]] static Result<std::shared_ptr<Collection>> create(const std::string& dir, const Schema& schema,
                                                                    const CollectionOptions& options = {});
    /// Opens and recovers an existing collection.
    [[nodiscard]] static Result<std::shared_ptr<Collection>> open(const std::string& dir,
                                                                  const CollectionOptions& options = {});
    ~Collection();
    Collection(const Collection&) = delete;
    Collection& operator=(const Collection&) = delete;

    const Schema& schema() const noexcept;
    const std::string& dir() const noexcept;

    /// Inserts or replaces documents by id (the last of duplicate ids in a batch wins). Validates the
    /// whole batch first (kInvalidArgument names the document); returns after the batch is durable.
    [[nodiscard]] Status upsert(std::vector<Document> docs);
    /// Deletes by id; unknown ids are ignored. Returns how many existed. Durable on return.
    [[nodiscard]] Result<std::size_t> remove(const std::vector<std::string>& ids);
    /// The stored document, or kNotFound.
    [[nodiscard]] Result<Document> get(const std::string& id) const;
    /// Top-k over a consistent snapshot. kInvalidArgument for unknown fields, wrong dimensions, NaN.
    [[nodiscard]] Result<std::vector<SearchHit>> search(const SearchRequest& request) const;

    /// Persists every in-memory segment and reclaims deletes (waits for the merger).
    [[nodiscard]] Status flush();
    /// Merges everything into one segment (an optimisation: BM25 statistics are collection-wide at all times).
    [[nodiscard]] Status optimize();
    CollectionStats stats() const;
    /// Stops the merger; later writes fail with kFailedPrecondition. Idempotent.
    void close();

    struct Impl;

private:
    explicit Collection(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::engine
