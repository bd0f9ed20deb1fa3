// Private to engine: an immutable segment — documents (compressed store), ids, sequence numbers,
// attributes, and one BM25 / vector index per indexed field (a chunked text field's BM25 index, and a
// chunked vector field's vector index, hold one entry per chunk, mapped back to slots by chunk_offsets). Built in memory from a batch or a merge;
// persisted to `seg_<id>/` and reopened memory-mapped. Immutable after build: every const method is
// safe from many threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "quiver/core/bitmap.h"
#include "quiver/core/result.h"
#include "quiver/engine/payload_index.h"
#include "quiver/engine/schema.h"
#include "quiver/engine/collection.h"
#include "quiver/index/filtered_search.h"
#include "quiver/index/memory_budget.h"
#include "quiver/index/vector_index.h"
#include "quiver/multivector/multivector_index.h"
#include "quiver/sparse/bm25_index.h"
#include "quiver/sparse/exact_sparse.h"
#include "quiver/storage/file_format.h"

namespace quiver::engine {

/// The deleted documents of a segment: an immutable, versioned roaring bitmap (core/bitmap.h) shared
/// by snapshots; a delete publishes a new version built from the old one plus the delta.
using DeleteSet = DeletedDocs;

/// BM25 statistics of one text field over a segment's deleted documents, which corpus-wide scoring
/// subtracts from the segment's own (Lucene would count them until a merge; we count live documents).
struct DeadTextStats {
    std::uint64_t docs_with_tokens = 0;
    std::uint64_t tokens = 0;
    std::vector<std::uint32_t> doc_freq;  ///< by the field index's TermId; empty while nothing is dead
};

/// The count and total length of some BM25 documents of one text field (a segment's deleted ones).
struct DeadTextCounts {
    std::uint64_t docs_with_tokens = 0;
    std::uint64_t tokens = 0;
};

/// The (title, text) a text field indexes for `d`: the field itself, its one source, or its first two
/// sources as title and text (what `sparse::Bm25Index::document_tokens` analyses).
void text_views(const FieldSpec& f, const Document& d, std::string_view& title, std::string_view& text);

struct ScoredDoc {
    std::uint32_t local = 0;
    double score = 0.0;  // higher is better
    std::uint32_t chunk = 0;  // chunked text fields: the chunk of document `local` that scored
};

/// The chunks a chunked text field indexes for `d` (pipeline::chunk_document of its text_views).
std::vector<std::string> field_chunks(const FieldSpec& f, const Document& d);

class Segment;

/// Memory of a segment's vector indexes: resident bytes (codes, graphs, lists, ids, and float32
/// vectors held in memory) and float32 bytes left on disk for the rescore (`on_disk` fields).
struct VectorFootprint {
    std::uint64_t memory_bytes = 0;
    std::uint64_t disk_bytes = 0;
};

/// One vector field's index in a segment: its codec ("none": float32), whether its float32 vectors
/// stay on disk, and its resident bytes.
struct VectorFieldStorage {
    std::size_t field = 0;  ///< schema field number
    std::string codec;
    bool on_disk = false;
    std::uint64_t memory_bytes = 0;
};

/// The storage a segment gives a vector field with a `memory_budget` (docs/collections.md "Memory
/// budget"): the first configuration of index/memory_budget.h's rule (index type the field's, M its
/// m) whose predicted resident bytes for `documents` vectors (the collection's live documents when the
/// segment is built) fit the budget, skipping codecs that cannot train on `rows` vectors (the
/// segment's; 0 = no such constraint). kInvalidArgument naming the field when none fits.
Result<index::BudgetChoice> budget_storage(const FieldSpec& f, std::size_t documents, std::size_t rows);
/// kInvalidArgument when a vector field's memory_budget cannot hold `documents` vectors in any
/// configuration (the write path refuses such a write before it reaches the log).
Status check_vector_budgets(const Schema& schema, std::size_t documents);
/// Adds the persisted segment `seg`'s budgeted vector fields to `stats.vector_budgets`.
void add_vector_budget_stats(const Schema& schema, const Segment& seg, CollectionStats& stats);

struct MemDoc;  // memtable.h

/// How Segment::build indexes the fields.
struct SegmentBuildOptions {
    std::size_t threads = 1;  ///< index build threads
    /// Search every vector field exactly (a flat index; multi_vector fields: MaxSim brute force)
    /// whatever the schema says: for small in-memory
    /// segments (a frozen memtable, one upsert batch), whose graph the next merge would rebuild anyway;
    /// brute force over a few thousand vectors is also as fast as a graph walk.
    bool exact_vectors = false;
    /// Keep the document store uncompressed (no zstd work): for in-memory segments (a frozen memtable,
    /// an upsert batch, the log replayed at open), which a merge replaces and which are never persisted
    /// themselves (persist() refuses them).
    bool raw_store = false;
    /// A persisted segment whose documents, but those of `base_removed`, are the first documents of
    /// this one, in the same order: HNSW fields start from a copy of its graph (re-opened from
    /// `base_dir`, a collection directory), drop the removed documents' nodes for good
    /// (HnswIndex::drop: consolidated, not rebuilt; float32 graphs only, a quantized graph with
    /// removed documents is rebuilt) and insert only the remaining documents, then repair
    /// reachability once, so a merge does not rebuild the graph of its largest input. Falls back
    /// to a full build if that file cannot be used (its label count disagrees, or it is not an HNSW
    /// index).
    const Segment* base = nullptr;
    std::string base_dir;
    /// The base's documents (local numbers, ascending) not in this segment: its deleted ones.
    std::vector<std::uint32_t> base_removed;
    /// Segments whose documents, but their `removed` ones (local numbers, ascending), are the first
    /// documents of this one, in this order (a merge's inputs): text fields (not chunked) take those
    /// documents' postings from the sources' BM25 indexes (sparse::Bm25Index::Part; the same index as
    /// analysing their texts) instead of analysing them again, as far as the sources' indexes are
    /// analysed alike.
    struct TextSource {
        const Segment* segment = nullptr;
        std::vector<std::uint32_t> removed;
    };
    std::vector<TextSource> text_sources;
    /// When it has one entry per document: the memtable's analysis of each (MemDoc::text), which text
    /// fields (not chunked) take instead of analysing the texts again (a frozen memtable).
    std::vector<const MemDoc*> analysed;
    /// Live documents of the collection when this segment is built (the merge's count, this segment
    /// included): the size fields with a `memory_budget` choose their storage for. 0 = this segment's.
    std::size_t collection_documents = 0;
};

class Segment {
public:
    /// Builds the indexes for `docs` (validated) with per-document sequence numbers.
    static Result<std::shared_ptr<Segment>> build(std::uint64_t id, const Schema& schema, std::vector<Document> docs,
                                                  std::vector<std::uint64_t> seqs,
                                                  const SegmentBuildOptions& options);
    /// The same over documents the caller keeps alive and unchanged during the call (a memtable's
    /// slots, without copying them).
    static Result<std::shared_ptr<Segment>> build(std::uint64_t id, const Schema& schema,
                                                  std::span<const Document* const> docs,
                                                  std::vector<std::uint64_t> seqs,
                                                  const SegmentBuildOptions& options);
    /// Opens `dir/seg_<id>` written by persist().
    static Result<std::shared_ptr<Segment>> open(const std::string& dir, std::uint64_t id, const Schema& schema);
    /// Writes `dir/seg_<id>/` (each file atomically) and fsyncs the directories.
    Status persist(const std::string& dir) const;
    /// After persist(): replaces the built indexes of `on_disk` vector fields by the persisted files
    /// opened with their float32 vectors left on disk (so a merged segment does not keep them in
    /// memory). Only before the segment is shared.
    Status reopen_on_disk_vectors(const std::string& dir);
    /// Resident and on-disk bytes of the vector indexes (measured at build and open).
    const VectorFootprint& vector_footprint() const noexcept { return vector_footprint_; }
    /// Per vector field with an index here: its codec, on-disk flag and resident bytes.
    const std::vector<VectorFieldStorage>& vector_storage() const noexcept { return vector_storage_; }

    std::uint64_t id() const noexcept { return id_; }
    std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(ids_.size()); }
    const std::string& doc_id(std::uint32_t local) const noexcept { return ids_[local]; }
    std::uint64_t seq(std::uint32_t local) const noexcept { return seqs_[local]; }
    /// Sets every document's sequence number; only before the segment is shared (the write path).
    void assign_seq(std::uint64_t seq) { std::fill(seqs_.begin(), seqs_.end(), seq); }
    const Document& attributes(std::uint32_t local) const noexcept { return attrs_[local]; }
    /// The hash find() looks `id` up by: computed once, a caller probing several segments for one id
    /// passes it to each.
    static std::uint64_t id_hash(std::string_view id) noexcept { return std::hash<std::string_view>{}(id); }
    /// The slot holding `id` (deleted or not), if any.
    std::optional<std::uint32_t> find(std::string_view id) const { return find(id, id_hash(id)); }
    /// The same with `hash` = id_hash(id).
    std::optional<std::uint32_t> find(std::string_view id, std::uint64_t hash) const {
        // Open addressing, linear probing: a cell is (32 high bits of the hash, slot + 1), 0 = empty.
        // A missing id (what every upsert of a new document asks each segment) costs one or two
        // cells of one cache line, where a node-based map chased a node per probe.
        if (id_cells_.empty()) return std::nullopt;
        const auto tag = static_cast<std::uint32_t>(hash >> 32);
        for (std::size_t i = hash & id_mask_;; i = (i + 1) & id_mask_) {
            const std::uint64_t cell = id_cells_[i];
            if (cell == 0) return std::nullopt;
            if (static_cast<std::uint32_t>(cell >> 32) == tag) {
                const auto local = static_cast<std::uint32_t>(cell) - 1;
                if (ids_[local] == id) return local;
            }
        }
    }
    /// Slots in ascending (bytewise) id order, deleted ones included.
    /// Computed on first call; thread-safe.
    std::span<const std::uint32_t> id_order() const;
    /// The position in id_order() of the first id greater than `after` ("" = 0).
    std::size_t first_in_id_order_after(std::string_view after) const;
    /// The full stored document (decompresses its block).
    Result<Document> document(std::uint32_t local) const;
    /// The stored fields of slot `local` named in `fields` (those it has; id set). When every name is
    /// an attribute field or one of short_fields() it is read from the attributes and the short-field
    /// column alone, without decompressing the document's block (a search hit's `"fields": ["title"]`).
    Result<Document> document(std::uint32_t local, std::span<const std::string> fields) const;
    /// The text fields this segment stores beside its blocks, uncompressed (their values average at
    /// most kShortFieldBytes here; sorted). Empty for segments written before (version <= 3).
    const std::vector<std::string>& short_fields() const noexcept { return short_fields_; }
    static constexpr std::size_t kShortFieldBytes = 256;
    /// Every stored document in slot order (each block decompressed once).
    Result<std::vector<Document>> documents() const;
    /// Bytes on disk (persisted) or that would be written.
    std::uint64_t size_bytes() const noexcept { return bytes_; }

    /// The BM25 index of a text field (null when the field has none here, e.g. an empty segment).
    const sparse::Bm25Index* text_index(std::size_t field) const noexcept {
        return field < text_.size() && text_[field] ? &*text_[field] : nullptr;
    }
    /// Chunked text fields: chunk entries [offsets[d], offsets[d + 1]) of the field's BM25 index are
    /// the chunks of slot d (every slot has at least one). Chunked vector fields: entries (labels) of
    /// the field's vector index, the chunks of slot d whose vector is not zero (possibly none).
    /// Empty for other fields.
    std::span<const std::uint32_t> chunk_offsets(std::size_t field) const noexcept {
        return field < chunk_first_.size() ? std::span<const std::uint32_t>(chunk_first_[field])
                                           : std::span<const std::uint32_t>();
    }
    /// BM25 top-k scored with `stats` (the collection's, summed over segments); only documents
    /// `allowed` allows are scored. Best first. A chunked field returns its top-k chunks (`chunk` set,
    /// `local` = the parent slot; `allowed` applies to the parent), ties by chunk entry.
    /// A filter bitmap in `allowed` drives the posting walk (sparse/maxscore.h); `walk` (optional)
    /// receives the regime and counters. With `min_score` > 0 only documents scoring at least that
    /// are returned (the walk prunes with it from the start; the caller passes the k-th score it holds
    /// from other segments); chunked fields ignore it.
    std::vector<ScoredDoc> search_text(std::size_t field, const sparse::Bm25QueryStats& stats, std::size_t k,
                                       const AllowedDocs& allowed, sparse::TopKStats* walk = nullptr,
                                       const sparse::FilterWalkParams& params = {}, double min_score = 0.0) const;
    /// Exact inner-product top-k for a sparse query (terms unknown to the segment are ignored). Best first.
    /// `min_score` as in search_text.
    std::vector<ScoredDoc> search_sparse(std::size_t field, const SparseTerms& query, std::size_t k,
                                         const AllowedDocs& allowed, sparse::TopKStats* walk = nullptr,
                                         const sparse::FilterWalkParams& params = {}, double min_score = 0.0) const;
    /// Nearest vectors; score = -distance. Best first. With a filter bitmap in `allowed` (deleted
    /// documents already removed from it) the planner of index/filtered_search.h picks the strategy
    /// (exact scan, ACORN-1, post-filter walk) and `plan` (optional) receives its choice; without one,
    /// deleted documents are traversed, not returned. A chunked vector field returns its top-k chunks
    /// (`chunk` set, `local` = the parent slot; `allowed` applies to the parent). kDataLoss when the
    /// index returns an entry its chunk map does not have. `min_score`: the caller keeps no hit scored
    /// below it (it holds k better ones); an unchunked float32 HNSW walk without a filter bitmap then
    /// takes it as its bar (index::SearchParams::bound) and may stop early, returning fewer than k.
    Result<std::vector<ScoredDoc>> search_vector(std::size_t field, std::span<const float> query, std::size_t k,
                                                 std::size_t ef, const AllowedDocs& allowed,
                                                 index::FilterPlan* plan = nullptr,
                                                 const index::PlannerParams& planner = {},
                                                 double min_score = -std::numeric_limits<double>::infinity()) const;
    /// MaxSim top-k over a multi_vector field; score = MaxSim. Exact fields (and segments built with
    /// exact_vectors) score every allowed document. MUVERA fields take the field's `candidates` (`ef`
    /// replaces it when non-zero; at least k; a field option of 0, as fields stored before it have,
    /// means max(10 k, 100, ef)): blocked FDEs scan the query's partition blocks over the allowed
    /// documents and re-rank the best candidates by exact MaxSim, so with as many candidates as allowed
    /// documents the answer is exact; HNSW FDEs take the candidates from the FDE graph (walking only
    /// allowed documents). A filter allowing at most that many documents (4x for HNSW) scores them all
    /// exactly. Best first, ties by slot. `method` (optional) receives "maxsim_exact", "muvera_blocks"
    /// or "muvera_rerank".
    Result<std::vector<ScoredDoc>> search_multivector(std::size_t field, MatrixView<float> query, std::size_t k,
                                                      std::size_t ef, const AllowedDocs& allowed,
                                                      const char** method = nullptr) const;
    /// The documents whose attributes match `filter` (validated): payload-index lookups for indexed
    /// fields, a scan of the attributes for the others. Deleted documents are included.
    Bitmap matching(const Filter& filter, FilterEvalStats* stats = nullptr) const;
    /// The same within a request's filter budget (kResourceExhausted once over it). Results are kept in
    /// a small per-segment cache (kFilterCacheEntries, least recently used out), as Lucene caches filter
    /// bitsets per segment: the segment is immutable, so a repeated filter costs a copy. A cached answer
    /// charges the budget and `stats` exactly what evaluating it did, so a request's fate and its
    /// explain figures never depend on the cache.
    Result<Bitmap> matching(const Filter& filter, FilterBudget& budget, FilterEvalStats* stats = nullptr) const;
    static constexpr std::size_t kFilterCacheEntries = 16;
    /// The payload index of the schema's `payload_index` fields (persisted as `payload.pidx`).
    const PayloadIndex& payload() const noexcept { return payload_; }
    enum class TextStatsMethod : std::uint8_t { kAnalysis, kPostings };
    /// Adds the BM25 statistics of `docs` to `acc`, one entry per schema field (text fields only):
    /// by re-analysing their stored text exactly as the indexes were built (kAnalysis: the independent
    /// reference the tests hold DeadStats to), or from the field's postings (kPostings: text_lengths()
    /// and a membership count per term, what DeadStats uses). Both give the same figures. kDataLoss on
    /// a corrupt document block.
    Status add_text_stats(const Schema& schema, const Bitmap& docs, std::vector<DeadTextStats>& acc,
                          TextStatsMethod method) const;

    /// The BM25 documents of text field `field` that hold the slots in `docs`: the slots themselves,
    /// or a chunked field's chunk entries.
    Bitmap text_entries(std::size_t field, const Bitmap& docs) const;
    /// Every BM25 document's exact length (tokens) in text field `field`, by BM25 document number: the
    /// sums of its term frequencies, from one pass over the field's postings on the first call
    /// (thread-safe; later calls share the array). Null for a field without an index here.
    std::shared_ptr<const std::vector<std::uint32_t>> text_lengths(std::size_t field) const;

    static std::string dir_name(std::uint64_t id) { return "seg_" + std::to_string(id); }

private:
    Segment() = default;
    /// search_vector over the index's own labels (slots, or a chunked field's entries); `items` = how
    /// many labels there are (a filter allowing that many is no filter).
    Result<std::vector<ScoredDoc>> search_vector_index(std::size_t field, std::span<const float> query, std::size_t k,
                                                       std::size_t ef, const AllowedDocs& allowed, std::size_t items,
                                                       index::FilterPlan* plan, const index::PlannerParams& planner,
                                                       double min_score = -std::numeric_limits<double>::infinity()) const;
    /// Rebuilds a chunked vector field's chunk map from its index's entry ids "<slot>:<chunk>" (written
    /// by build); kDataLoss when they are malformed, out of (slot, chunk) order or beyond the segment.
    Status open_chunk_map(std::size_t field, const index::VectorIndex& vi, const std::string& path);
    Status build_indexes(const Schema& schema, std::span<const Document* const> docs, const SegmentBuildOptions& options);
    void measure_vectors();
    Result<std::string> raw_block(std::size_t b) const;
    /// The short fields of slot `local` (a document with no id), from the short-field column.
    Result<Document> short_entry(std::uint32_t local) const;
    /// Adds slot `local`'s short fields to `d` (decoded from its block, which does not hold them).
    Status add_short_fields(std::uint32_t local, Document& d) const;
    /// Every document of store block `b`.
    Result<std::vector<Document>> decode_block(std::size_t b) const;

    std::uint64_t id_ = 0;
    /// Fills the id table; returns false if two documents share an id (the first one is indexed).
    bool index_ids();

    std::vector<std::string> ids_;
    std::vector<std::uint64_t> id_cells_;  // find()'s table: at most half full, a power of two
    std::size_t id_mask_ = 0;
    struct CachedFilter {
        std::string key;  // filter_cache_key()
        std::shared_ptr<const Bitmap> bits;
        std::uint64_t units = 0;
        FilterEvalStats stats;
    };
    mutable std::mutex filter_cache_mu_;
    mutable std::vector<CachedFilter> filter_cache_;  // most recently used last
    mutable std::once_flag id_order_once_;
    mutable std::vector<std::uint32_t> id_order_;                // slots by ascending id (lazy)
    std::vector<std::uint64_t> seqs_;
    std::vector<Document> attrs_;             // attribute fields only, for filters
    PayloadIndex payload_;                    // indexed attribute fields
    std::vector<std::uint64_t> block_offsets_;  // into blob_, n_blocks + 1
    std::uint32_t version_ = 2;                 // of the document store (segment.cpp: block codec)
    bool raw_store_ = false;                    // blocks hold the encoded documents uncompressed (in memory only)
    std::size_t docs_per_block_ = 4;
    // Short stored fields (short_fields()): each slot's values of them encoded as a document with no
    // id, at [short_offsets_[slot], short_offsets_[slot + 1]) of short_blob_; the blocks omit them.
    // short_offsets_ is empty when the segment has none (and for version <= 3 files).
    std::vector<std::string> short_fields_;
    std::vector<std::uint64_t> short_offsets_;
    std::span<const std::byte> short_blob_;
    std::string owned_short_;                 // built segments
    std::vector<std::string> attribute_fields_;  // the schema's attribute fields (in attrs_), sorted
    std::string owned_blob_;                  // built segments
    std::shared_ptr<storage::MappedFile> mapping_;  // opened segments
    std::span<const std::byte> blob_;
    /// The chunk entries of the slots in `docs` (a chunked field's BM25 document numbers).
    Bitmap chunk_entries(std::size_t field, const Bitmap& docs) const;

    std::vector<std::optional<sparse::Bm25Index>> text_;         // per schema field
    // per schema field: chunked text fields' chunk entry offsets by slot (size() + 1), else empty;
    // persisted as the BM25 index's document ids "<slot>:<chunk>"
    std::vector<std::vector<std::uint32_t>> chunk_first_;
    // per schema field: chunked vector fields' chunk number of each index entry, else empty; persisted
    // as the vector index's entry ids "<slot>:<chunk>"
    std::vector<std::vector<std::uint32_t>> chunk_number_;
    std::vector<std::unique_ptr<index::VectorIndex>> vectors_;  // per schema field
    std::vector<std::size_t> rescore_;                          // per schema field: quantization.rescore
    std::vector<std::uint8_t> on_disk_;                         // per schema field: on_disk
    VectorFootprint vector_footprint_;
    std::vector<VectorFieldStorage> vector_storage_;
    std::vector<std::optional<sparse::ExactSparseIndex>> sparse_;  // per schema field
    // per schema field: multi_vector fields' token stores (+ MUVERA FDEs: blocks, or a graph), `mv_<field>.mvix`
    std::vector<std::unique_ptr<multivector::MultiVectorIndex>> multi_;
    std::vector<std::size_t> mv_candidates_;  // per schema field: MUVERA candidates (FieldSpec::muvera)
    bool token_values_ = false;  // the schema has multi_vector fields: docs.qvr is written as version 3
    std::vector<std::string> field_names_;
    std::uint64_t bytes_ = 0;
    mutable std::mutex lengths_mu_;  // guards lengths_ (held while a field's lengths are computed)
    mutable std::vector<std::shared_ptr<const std::vector<std::uint32_t>>> lengths_;  // per schema field
};

/// The BM25 statistics of one segment's deleted documents for one DeleteSet version, which corpus-wide
/// scoring subtracts. Per text field: the count with tokens and total length (from the segment's
/// exact lengths, `Segment::text_lengths`), and the document frequencies of the terms queries ask for,
/// each counted once per version: from the previous computed version's count plus the documents
/// deleted since (a seek per document in the term's postings), or, for a term not counted before, one
/// pass over its postings testing the delete set. The write path never analyses text; a run of deletes
/// between two searches is counted once. Thread-safe: concurrent calls compute once.
class DeadStats {
public:
    /// The version for `deleted` following `previous` (null for the segment's first); null when
    /// nothing is deleted.
    static std::shared_ptr<DeadStats> next(std::shared_ptr<const Segment> seg, DeleteSet deleted,
                                           const std::shared_ptr<DeadStats>& previous);
    /// The statistics of text field `field`: `counts`, and in doc_freq[i] the deleted documents holding
    /// term ids[i] of the field's index (0 for kTerminated). doc_freq.size() == ids.size().
    Status text_stats(const Schema& schema, std::size_t field, std::span<const sparse::TermId> ids,
                      DeadTextCounts& counts, std::span<std::uint32_t> doc_freq);
    /// Terms whose counts a version carries on to the next at most (more: the next starts empty).
    static constexpr std::size_t kMaxCarriedTerms = 4096;

private:
    Status compute(const Schema& schema);  // under mu_
    std::uint32_t count_locked(std::size_t field, sparse::TermId id);

    std::mutex mu_;                  // held while computing and while reading or adding counts
    bool done_ = false;              // counts_ / status_ are final (under mu_)
    std::atomic<bool> usable_{false};  // done_ and status_ ok: a later version may start from this one
    Status status_;
    std::shared_ptr<const Segment> seg_;
    DeleteSet deleted_;
    mutable std::mutex base_mu_;       // guards base_ only; never held while computing
    std::shared_ptr<DeadStats> base_;  // a computed earlier version, or null (nothing was dead)
    std::vector<DeadTextCounts> counts_;  // per schema field
    // per schema field: document frequencies among the deleted documents, of the terms counted so far
    std::vector<std::unordered_map<sparse::TermId, std::uint32_t>> doc_freq_;
    std::vector<std::optional<Bitmap>> entries_;  // per schema field: deleted BM25 documents (on demand)
};

}  // namespace quiver::engine
