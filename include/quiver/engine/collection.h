/// @file collection.h
/// @brief A persistent, crash-safe, updatable collection of documents: WAL + immutable segments.
///
/// Storage (docs/collections.md has the byte layouts):
///   - Every write batch is one WAL record, fsynced before the call returns (`WalSync::kEveryAppend`):
///     an acknowledged write survives kill -9. Concurrent writers share fsyncs (group commit): they
///     queue their records, one of them (the leader) appends every queued record and calls fdatasync
///     once, then acknowledges the whole group; a failed append or fsync fails every write of the group
///     and cuts its records off the log (truncate + fdatasync), so a refused write is never replayed.
///     A small batch (<= `memtable_max_batch` documents) is then appended to the mutable memtable,
///     a larger one becomes an in-memory segment (its BM25 and vector indexes built by the writer
///     beforehand); either is visible to searches started after the call returns. The memtable is
///     frozen into an in-memory segment at `memtable_docs` documents or when a merge runs.
///   - Two background merge lanes (a flush lane persisting in-memory segments, a compaction lane
///     rewriting delete-heavy and merging small persisted segments, running at once on disjoint
///     segments) build new immutable, memory-mapped segment directories, write per-segment delete
///     bitmaps (a flush: of every segment deleted from up to its checkpoint, taken when it picks its
///     segments and written before its commit; a compaction: only its new segment's), then replace
///     MANIFEST atomically (tmp + fsync + rename + dir fsync) and drop the obsolete WAL files and
///     segments (after the writer lock is released). Deleted documents are reclaimed by those merges.
///   - Recovery: MANIFEST names the live segments, their delete generations and the checkpoint sequence;
///     WAL records after the checkpoint are replayed, and their sequence numbers must continue it without
///     a gap. Only a true torn tail of the newest log (a prefix of one record, nothing intact after it)
///     is dropped, and that is logged and counted (`CollectionStats::recovered_tail_*`). Any other damage
///     — a checksum or length mismatch with intact records after it, a gap, damage in an older log, a
///     damaged or missing MANIFEST, segment or delete file — fails `open` with kDataLoss naming the file
///     (and the offset, for logs). Files not named by MANIFEST are leftovers of an interrupted merge
///     and are removed.
///   - I/O errors: every write, fsync (file and directory), rename and truncate is checked. A full disk
///     or file-size limit fails the write with kResourceExhausted and leaves the store intact. After a
///     failed log fsync the log is poisoned; writes continue in a new log if the failed record could be
///     cut off, otherwise they fail until the collection is reopened. A merge never removes its inputs
///     before its outputs and the new MANIFEST are durable.
///
/// Thread-safety: every public method is safe to call from many threads. Writers embed, validate,
/// analyse (or build their batch's segment) in parallel, then commit in groups under a writer lock
/// (append + one fsync + publish); searches, gets and `stats()` take an immutable snapshot (a pointer
/// copy under a short lock) and never wait for a merge, a writer or an fsync. The merge lanes build
/// outside all locks; only a pass's pick of its segments and its final commit (the new segment's
/// delete bitmap + MANIFEST write) hold the writer lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/engine/fusion.h"
#include "quiver/engine/schema.h"
#include "quiver/index/filtered_search.h"
#include "quiver/pipeline/calibration.h"
#include "quiver/pipeline/prf.h"
#include "quiver/sparse/maxscore.h"
#include "quiver/storage/wal.h"

namespace quiver::engine {

struct CollectionOptions {
    storage::WalSync wal_sync = storage::WalSync::kEveryAppend;
    bool background_merge = true;       ///< false: merges only run from flush()/optimize() (tests)
    std::size_t max_segments = 8;       ///< more persisted segments than this triggers a merge
    double max_deleted_ratio = 0.3;     ///< a segment with more deleted docs than this is rewritten
    std::size_t flush_docs = 20000;     ///< in-memory docs that trigger a flush (also after 1 s idle)
    std::size_t build_threads = 2;      ///< index build threads of flush(), optimize() and recovery
    /// Index build threads of background merges. Two by default: with one (a single-threaded HNSW build
    /// walks the graph without locking link lists, about a third less CPU per vector), merges fell
    /// behind 16 writing connections and writes stalled (48-80 stalls and p99 279-312 ms in 10 s runs,
    /// against none and 73-108 ms with two; docs/collections.md). One suits hosts with spare cores.
    std::size_t merge_threads = 2;
    /// Index build threads of background compactions (rewrites and merges of persisted segments, in
    /// their own lane beside flushes, so a long rewrite no longer holds back the flushes that writers
    /// wait for). Two, as merge_threads: one, the cheapest per vector, measured no better under issue
    /// 10's mixed load (p99 53.1 and 54.4 ms against 51.6 and 64.7 ms; docs/collections.md).
    std::size_t compact_threads = 2;
    /// How a vector field's `encoder` is resolved. nullopt (local use, the CLI): "hashing" or a model
    /// directory path. Set (the server, `--models DIR`): "hashing" or the plain name of a model folder
    /// directly in that directory ("" = no models directory); paths are refused without touching the
    /// file system, and errors never show the directory.
    std::optional<std::string> models_dir;
    /// Open beside the owning process (`quiver query --read-only` next to a server): no LOCK, no WAL
    /// writes or truncation, no merges, no cleanup; the WAL is replayed into memory only. Writes,
    /// flush() and optimize() fail with kFailedPrecondition. What it sees is the state at open.
    bool read_only = false;
    std::size_t memtable_docs = 1024;   ///< memtable size at which it is frozen into a segment
    std::size_t memtable_max_batch = 64;  ///< larger upsert batches build their own segment
    /// In-memory segments (a frozen memtable, one upsert batch, the log replayed at open) of at most
    /// this many documents search their vector fields exactly instead of building the schema's graph:
    /// the merge that persists them builds it once, over all of them (as Qdrant's indexing threshold).
    std::size_t exact_memory_docs = 20000;
    /// A vector search walks the segments' graphs largest first, and each later walk gets the
    /// `depth`-th best distance found so far as its bar (index::SearchParams::bound): nodes farther
    /// than the bar are walked only while among the nearest ef/2 + 1 of its beam (Lucene's
    /// MultiLeafKnnCollector shares its segments' k-th score the same way). On issue 10's 11-segment
    /// state recall@10 went from 0.9317 to 0.9280 at ef 64 for 16-30% less CPU per query; at equal
    /// recall the barred walk is cheaper (docs/collections.md, "Vector walks under the best so far").
    /// false: every segment's walk runs its full ef. Float32 graphs of unfiltered searches only.
    bool vector_segment_bar = true;
    /// Group commit under concurrency (as PostgreSQL's commit_delay with commit_siblings): when the
    /// previous group had several writers, a new leader waits up to this long for as many to queue
    /// before it appends and fsyncs, so concurrent writers share more fsyncs. A lone writer (groups of
    /// one) never waits. 0 = never wait.
    std::uint32_t commit_delay_us = 0;
    /// Write stall (as RocksDB's level0_stop_writes_trigger and Lucene's stalled indexing threads): with
    /// the background merger on, a write waits while this many in-memory segments (frozen memtables and
    /// large batches awaiting a merge) exist, until a merge persists them, so that sustained writes
    /// cannot outrun merges (each in-memory segment costs every search a little, and RAM). The wait
    /// ends after `max_stall_ms` even if merges have not caught up (a failing merge must not block
    /// writes forever; the write then proceeds). 0 = never stall. Counted in `CollectionStats::write_stalls`.
    std::size_t stall_memory_segments = 24;
    std::uint32_t max_stall_ms = 10000;
    /// Test seam: called by the group-commit leader just before each WAL fdatasync, while it holds the
    /// writer lock; a non-ok status is treated as the fsync failing. Blocking in it models a stalled disk.
    std::function<Status()> wal_sync_hook;
    /// Test seam: called by both background merge lanes before each of their passes, without any lock
    /// held.
    /// Blocking in it models merges that cannot keep up.
    std::function<void()> merge_hook;
    /// Test seam: called by the background compaction lane after it took its sources (persisted
    /// segments to rewrite or merge) and before it builds, without any lock held. Blocking in it
    /// models a long rewrite.
    std::function<void()> compact_hook;
    /// Thresholds of the filtered vector-search planner (index/filtered_search.h), per segment.
    index::PlannerParams filter_planner{};
    /// Per-request work budget of filter evaluation, in FilterBudget units (engine/payload_index.h:
    /// about one attribute test of one document each). A search, count or scroll whose
    /// filter would need more fails with kResourceExhausted ("filter budget exceeded") before doing it.
    std::uint64_t filter_budget = std::uint64_t{1} << 26;
    /// Regime thresholds (or a forced regime) of filtered text and sparse posting walks (sparse/maxscore.h).
    sparse::FilterWalkParams posting_walk{};
};

/// One query clause: a text field with query text, a vector field with a vector, a sparse-vector
/// field with (term, weight) pairs, or a multi-vector field with token vectors. A field with an encoder
/// (vector, sparse_vector, multi_vector) may be given `text` instead, encoded as a query.
///
/// Pseudo-relevance feedback (`prf`, pipeline/prf.h), computed as `quiver eval --prf` does: a first
/// retrieval of the clause (same snapshot and filter) gives its top `fb_docs` documents, then
///   - text fields, RM3 or lexical Rocchio: the feedback documents' indexed text is re-analysed, terms
///     pass Anserini's filter (length >= 2, [a-z0-9] only, collection df / live documents <= 0.1),
///     and the expanded query's terms are scored with their weights as BM25 boosts (collection-wide
///     statistics);
///   - vector fields, Rocchio only: the query vector becomes alpha q + beta mean(stored vectors of the
///     feedback documents) (not normalised; cosine fields normalise at search);
///   - sparse and multi-vector fields: refused (kInvalidArgument).
/// The second retrieval is the clause's result (and what fusion sees).
struct QueryClause {
    std::string field;
    std::string text;           ///< text fields; fields with an encoder
    std::vector<float> vector;  ///< vector fields
    SparseTerms sparse;         ///< sparse-vector fields
    TokenVectors tokens;        ///< multi-vector fields (scored by MaxSim)
    double weight = 1.0;        ///< fusion weight of this clause (finite, >= 0)
    std::optional<pipeline::PrfSpec> prf;  ///< pseudo-relevance feedback (validate_prf ranges)

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
    static QueryClause of_tokens(std::string field, TokenVectors tokens) {
        QueryClause c;
        c.field = std::move(field);
        c.tokens = std::move(tokens);
        return c;
    }
};

/// Where a page of ranked hits starts: after the hit with this (score, id). Hits are ordered by score
/// descending, then id ascending (bytewise), so the cursor is stable while writes go on.
struct SearchAfter {
    double score = 0.0;
    std::string id;
};

/// A search: one or more clauses fused by `fusion` (weights per clause), or no clause at all (a
/// filter-only query: every live document matching `filter`, score 1, in id order).
/// The page is `[offset, offset + k)` of the ordered hits (after `search_after` when given; then
/// offset + k <= 10000 for scored queries and the cursor reaches down to rank 10000; filter-only
/// queries page without depth limit), dropping hits scored below `score_threshold`.
///
/// Calibrated cut-off (`cutoff`, pipeline/calibration.h; trained by `quiver eval --cutoff calibrated
/// --save-pipeline`): the query's top `cutoff->depth` hits (after fusion and filter) are mapped to
/// probabilities of relevance from their score distribution, exactly as `quiver eval` maps a run;
/// only hits with probability >= `min_relevance` (default: the model's trained threshold) remain, and
/// paging (offset, search_after, score_threshold on the scores) works within them. Each hit then
/// carries its `relevance`. `min_relevance` without `cutoff` is kInvalidArgument.
struct SearchRequest {
    std::vector<QueryClause> clauses;
    std::size_t k = 10;                 ///< page size ("limit")
    std::size_t offset = 0;
    std::optional<SearchAfter> search_after;
    std::optional<double> score_threshold;
    FusionSpec fusion{};                ///< weights come from the clauses; `fusion.weights` is ignored
    std::optional<Filter> filter;
    std::optional<std::vector<std::string>> return_fields;  ///< nullopt = all stored fields
    std::size_t ef = 0;                 ///< HNSW beam width, 0 = default
    bool explain = false;               ///< the caller wants a SearchExplain (server: "explain": true)
    std::optional<pipeline::CalibrationModel> cutoff;  ///< calibrated cut-off (see above)
    std::optional<double> min_relevance;               ///< in [0, 1]; needs `cutoff`
};

/// How a search was answered (`Collection::search` with an explain out-parameter): the filter's
/// evaluation and, per clause and segment, the strategy the planner chose and why.
struct SearchExplain {
    struct Plan {
        std::string field;
        std::string source;         ///< "segment <id>" or "memtable"
        std::string strategy;       ///< vector: auto-chosen index::FilterStrategy name; text/sparse: "posting_bitmap", "posting_walk_seek", "posting_walk_mask" or "unfiltered"; multi-vector: "maxsim_exact", "muvera_blocks" or "muvera_rerank"; memtable: "exact"
        std::uint64_t matches = 0;  ///< documents of the source allowed by the filter (live)
        std::uint64_t size = 0;     ///< documents in the source
        double selectivity = 1.0;
        std::string reason;
        bool fallback = false;
    };
    bool filtered = false;
    std::uint64_t filter_matches = 0;  ///< live documents matching the filter in the snapshot's segments
    std::uint64_t index_lookups = 0;   ///< payload-index lookups while evaluating the filter
    std::uint64_t docs_scanned = 0;    ///< attribute tests on fields without a payload index
    std::uint64_t filter_work = 0;     ///< FilterBudget units the filter used (limit: CollectionOptions::filter_budget)
    /// Retrievals the query ran: 1, or more when a single clause's page boundary could tie documents a
    /// source did not return (then it is retrieved again, 4x deeper). `plans` describe the last one.
    std::uint64_t retrievals = 0;
    std::vector<Plan> plans;
};

struct SearchHit {
    std::string id;
    /// Higher is better: BM25 score (text), -distance (vector: squared L2 or 1 - inner product),
    /// inner product (sparse), MaxSim (multi-vector), the fused score when several clauses were fused, 1 for filter-only.
    double score = 0.0;
    Document document;  ///< the requested stored fields
    std::optional<double> relevance;  ///< probability of relevance, with a calibrated `cutoff`
    /// A clause on a chunked text field: the document's best retrieved chunk (its index in
    /// pipeline::chunk_document order; firstp: 0). With several clauses, the first chunked clause's.
    std::optional<std::uint32_t> chunk;
};

/// A page of documents in id order (bytewise), after `after` (exclusive; empty = from the start).
struct ScrollRequest {
    std::optional<Filter> filter;
    std::size_t limit = 100;
    std::string after;
    std::optional<std::vector<std::string>> return_fields;  ///< nullopt = all stored fields
};

struct ScrollPage {
    std::vector<Document> documents;
    /// The id to continue after; nullopt when this page reached the end.
    std::optional<std::string> next_after;
};

/// A vector field with a `memory_budget`: its persisted segments' resident bytes against the budget,
/// and each segment's choice (docs/collections.md "Memory budget").
struct VectorBudgetStats {
    struct Segment {
        std::uint64_t id = 0;
        std::string codec;  ///< "none" (float32 in memory) or the codec of the segment's index
        bool on_disk = false;  ///< float32 vectors left on disk for the rescore
        std::uint64_t memory_bytes = 0;
    };
    std::string field;
    std::uint64_t budget_bytes = 0;
    std::uint64_t memory_bytes = 0;  ///< sum over the persisted segments
    std::vector<Segment> segments;   ///< persisted segments, ascending id
};

struct CollectionStats {
    std::size_t documents = 0;          ///< live documents
    std::size_t segments = 0;           ///< persisted + in-memory
    std::size_t memory_segments = 0;
    std::size_t deleted_pending = 0;    ///< deleted documents not yet reclaimed
    std::uint64_t last_seq = 0;
    std::uint64_t merges = 0;           ///< merge passes committed, counted once their replaced files are removed
    std::uint64_t writes = 0;           ///< acknowledged upsert/remove calls since open
    std::uint64_t wal_syncs = 0;        ///< WAL fdatasyncs since open (group commit: <= writes)
    std::size_t writes_waiting = 0;     ///< writes queued behind the group being committed
    std::uint64_t write_stalls = 0;     ///< writes that waited for merges (`stall_memory_segments`) since open
    std::uint64_t merge_failures = 0;          ///< failed merges since open (each logged to stderr)
    std::string last_merge_error;              ///< the latest of them, empty if none
    std::uint64_t recovered_tail_bytes = 0;    ///< torn log tails dropped by recovery at open
    std::uint64_t recovered_tail_records = 0;  ///< partial (never acknowledged) records among them
    bool wal_failed = false;                   ///< writes are refused until reopened: a failed log write could not be cut off
    /// Resident bytes of the segments' vector indexes: codes, graphs, IVF lists, ids, and the float32
    /// vectors they hold in memory (the memtable's vectors are not counted).
    std::uint64_t vector_memory_bytes = 0;
    /// Float32 vectors of `on_disk` fields left in the segment files, read only by the rescore.
    std::uint64_t vector_disk_bytes = 0;
    /// Per vector field with a memory_budget, in schema order.
    std::vector<VectorBudgetStats> vector_budgets;
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
    /// The same, also describing how it was answered (filter evaluation and planner choices).
    [[nodiscard]] Result<std::vector<SearchHit>> search(const SearchRequest& request, SearchExplain* explain) const;

    /// Several searches over one snapshot; results in request order. Fails on the first bad request.
    [[nodiscard]] Result<std::vector<std::vector<SearchHit>>> search_batch(const std::vector<SearchRequest>& requests) const;
    /// Live documents matching `filter` (all when nullopt), counted over one snapshot.
    [[nodiscard]] Result<std::size_t> count(const std::optional<Filter>& filter) const;
    /// A page of live documents in id order over one snapshot. Paging on with `next_after` visits every
    /// document that exists (unchanged) for the whole walk exactly once, whatever writes happen meanwhile;
    /// documents written during the walk appear when their id is still ahead of the cursor.
    [[nodiscard]] Result<ScrollPage> scroll(const ScrollRequest& request) const;
    /// Deletes the documents matching `filter` in the current snapshot, in one durable write (one log
    /// record, all or nothing); returns how many. Atomic as of that snapshot: a matching document that a
    /// concurrent write replaced (or deleted) after the snapshot keeps its new state, whether or not the
    /// new version matches, and documents written after the snapshot are not deleted; replay after a
    /// crash gives the same outcome (kRecordDeleteAsOf).
    [[nodiscard]] Result<std::size_t> remove_where(const Filter& filter);
    /// Partial updates: each document's fields are merged into the stored document with the same id
    /// (a std::monostate value removes the field), and the merged documents are upserted as one batch.
    /// A vector field with an encoder whose source text changed and that is not given is re-embedded.
    /// kNotFound (naming the id) when any id does not exist; nothing is written then. Patches that
    /// share an id are serialised with each other (no lost update between two patches; an upsert
    /// racing a patch of the same id is ordered arbitrarily); patches of different ids run
    /// concurrently and share a log fsync (group commit). Returns the number of documents updated.
    [[nodiscard]] Result<std::size_t> patch(std::vector<Document> partial);

    /// Persists every in-memory segment and reclaims deletes (waits for both merge lanes).
    [[nodiscard]] Status flush();
    /// Merges everything into one segment (an optimisation: BM25 statistics are collection-wide at all times).
    [[nodiscard]] Status optimize();
    /// Counts as of the latest published snapshot; never waits for a writer, an fsync or a merge.
    CollectionStats stats() const;
    /// Stops the merge lanes; later writes fail with kFailedPrecondition. Idempotent.
    void close();

    struct Impl;

private:
    explicit Collection(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::engine
