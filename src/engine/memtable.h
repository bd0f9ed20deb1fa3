// Private to engine: the mutable memtable that small write batches are appended to.
//
// A 1-document upsert must not cost a whole segment (its own BM25 and vector index, a document store,
// then a flush to disk a few writes later). Small batches are instead appended to one growing memtable:
// each document is analysed and its vectors normalised by the writer outside every lock
// (`prepare`), then appended under the collection's writer lock after its WAL record is durable.
// At `capacity` documents (or when a merge wants everything persisted) the writer freezes the memtable
// into an ordinary immutable in-memory segment and starts a new one.
//
// Readers see a consistent prefix: a snapshot records (memtable, visible count n, snapshot seq). Slots
// below n are never written again, except their `deleted_at` word, an atomic holding the sequence
// number of the write that deleted or replaced the document (0 = live). A document is visible to a
// snapshot when deleted_at is 0 or greater than the snapshot's seq, so a snapshot keeps seeing the
// state it was published with while the writer goes on. Slots live in one array allocated at
// construction (never reallocated), so readers need no lock.
//
// Text search walks a small inverted index (term -> slots with that term, ascending) that the writer
// extends at append under `index_mu_` (readers hold it shared while they read the posting lists of their
// query terms), so BM25 statistics and scores cost the postings of the query terms, not a lookup per
// slot and term. A chunked text field (FieldSpec::chunking) indexes (slot, chunk) postings and scores
// chunks, counting them in its statistics, as the segment's BM25 index over chunks does. A chunked
// vector field keeps each document's non-zero chunk vectors and scores every chunk. Vector and sparse search are exact and brute force over the visible prefix (the
// memtable is small). BM25 uses Lucene's
// formula (bm25_index.h: one-byte SmallFloat norms) with the collection-wide statistics the caller sums
// over the snapshot's segments and this prefix (`add_text_stats`), so a document scores the same here
// and in the segment the memtable freezes into; exact vector distances with the field's metric,
// exact sparse inner products, and exact MaxSim for multi-vector fields (multivector::maxsim, the
// function every segment score comes from, so a document scores the same before and after a freeze).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/segment.h"
#include "quiver/core/result.h"
#include "quiver/engine/payload_index.h"
#include "quiver/engine/schema.h"

namespace quiver::engine {

/// A validated document with its per-field search data, ready to append.
struct MemDoc {
    struct Text {
        std::vector<std::pair<std::string, std::uint32_t>> terms;  // analysed term -> frequency, sorted
        std::uint32_t length = 0;                                  // tokens
    };
    Document doc;
    Document attrs;                            // attribute fields only, for filters
    std::vector<Text> text;                    // per schema field (empty unless an indexed text field)
    std::vector<std::vector<Text>> chunks;     // per schema field: a chunked text field's chunks (text empty)
    std::vector<std::vector<float>> vectors;   // per schema field; normalised for cosine
    // per schema field: a chunked vector field's chunk number of each row of vectors[field] (the
    // chunks whose vector is not zero; vectors[field] then holds those rows, row-major)
    std::vector<std::vector<std::uint32_t>> vector_chunks;
};

class Memtable {
public:
    Memtable(const Schema& schema, std::size_t capacity);

    /// Analyses, extracts and normalises `doc` (validated against the schema). Thread-safe; no lock.
    /// kInvalidArgument for a zero vector in a cosine field (as the segment indexes refuse it).
    static Result<MemDoc> prepare(const Schema& schema, Document doc);

    // --- writer side: calls hold the collection's writer lock ---
    std::size_t capacity() const noexcept { return capacity_; }
    std::uint32_t size() const noexcept { return size_; }
    bool full() const noexcept { return size_ >= capacity_; }
    /// Appends at slot size(); requires !full().
    void append(MemDoc doc, std::uint64_t seq);
    /// The slot holding the live version of `id`, if any.
    std::optional<std::uint32_t> find_live(const std::string& id) const;
    /// The sequence number of the write that put slot `local` here.
    std::uint64_t slot_seq(std::uint32_t local) const noexcept { return slots_[local].seq; }
    /// Marks a live slot deleted by the write with sequence number `seq`.
    void mark_deleted(std::uint32_t local, std::uint64_t seq);
    /// The documents of slots [0, n) not deleted as of now (pointers to this memtable's own, valid and
    /// unchanged while it lives: a segment is built from them without copying), with their sequence
    /// numbers and slots, and their analysis (SegmentBuildOptions::analysed) when `analysed` is set.
    /// Any thread, without the writer lock, for a prefix the writer published (slots below n never
    /// change but for deletion marks).
    void live_prefix(std::uint32_t n, std::vector<const Document*>& docs, std::vector<std::uint64_t>& seqs,
                     std::vector<std::uint32_t>& slots, std::vector<const MemDoc*>* analysed = nullptr) const;
    /// Whether slot `local` has been deleted or replaced by any write so far.
    bool deleted(std::uint32_t local) const noexcept {
        return slots_[local].deleted_at.load(std::memory_order_acquire) != 0;
    }
    /// A new memtable of `capacity` (at least size() - from) slots holding copies of slots [from, size())
    /// with their sequence numbers and deletion marks (what stays in memory when the prefix becomes a
    /// segment).
    std::shared_ptr<Memtable> tail(std::uint32_t from, std::size_t capacity) const;
    std::uint64_t first_seq() const noexcept { return size_ == 0 ? 0 : slots_[0].seq; }

    // --- reader side: any thread, over a published prefix [0, n) as of snapshot sequence `seq` ---
    bool visible(std::uint32_t local, std::uint64_t seq) const noexcept {
        const std::uint64_t d = slots_[local].deleted_at.load(std::memory_order_acquire);
        return d == 0 || d > seq;
    }
    const std::string& doc_id(std::uint32_t local) const noexcept { return slots_[local].doc.doc.id; }
    const Document& document(std::uint32_t local) const noexcept { return slots_[local].doc.doc; }
    /// The attribute fields only (what filters read).
    const Document& attributes(std::uint32_t local) const noexcept { return slots_[local].doc.attrs; }
    /// The visible slot holding `id`, if any (a scan from the newest slot down).
    std::optional<std::uint32_t> find(std::string_view id, std::uint32_t n, std::uint64_t seq) const;
    /// Live documents in the prefix.
    std::size_t live_count(std::uint32_t n, std::uint64_t seq) const;

    /// Adds this prefix's BM25 statistics of text field `field` (documents with tokens, tokens, and the
    /// document frequency of each of `stats.terms`) to `stats`, as a segment's part of the collection's.
    void add_text_stats(std::size_t field, sparse::Bm25QueryStats& stats, std::uint32_t n, std::uint64_t seq) const;
    /// BM25 scored with supplied (collection-wide) statistics, best first, ties by slot. A chunked
    /// field scores its chunks (statistics count chunks): hits are chunks (`chunk` set), ties by
    /// (slot, chunk).
    std::vector<ScoredDoc> search_text(std::size_t field, const sparse::Bm25QueryStats& stats, std::size_t k,
                                       std::uint32_t n, std::uint64_t seq, const Filter* filter) const;
    /// Exact inner product; documents scoring 0 are not hits (as the segment index).
    std::vector<ScoredDoc> search_sparse(std::size_t field, const SparseTerms& query, std::size_t k, std::uint32_t n,
                                         std::uint64_t seq, const Filter* filter) const;
    /// Exact MaxSim top-k over a multi_vector field (query.dim = the field's dim).
    std::vector<ScoredDoc> search_multivector(std::size_t field, MatrixView<float> query, std::size_t k, std::uint32_t n,
                                              std::uint64_t seq, const Filter* filter) const;
    /// Exact nearest vectors; score = -distance. A chunked vector field scores its chunks: hits are
    /// chunks (`chunk` set), ties by (slot, chunk).
    std::vector<ScoredDoc> search_vector(std::size_t field, std::span<const float> query, std::size_t k,
                                         std::uint32_t n, std::uint64_t seq, const Filter* filter) const;

private:
    struct Slot {
        MemDoc doc;
        std::uint64_t seq = 0;
        std::atomic<std::uint64_t> deleted_at{0};
    };
    bool accepts(std::uint32_t local, std::uint64_t seq, const std::optional<CompiledFilter>& filter) const {
        return visible(local, seq) && (!filter || filter->matches(slots_[local].doc.attrs.fields));
    }
    static std::optional<CompiledFilter> compile(const Filter* filter) {
        if (filter == nullptr) return std::nullopt;
        return CompiledFilter(*filter);
    }

    struct Posting {
        std::uint32_t slot;
        std::uint32_t tf;
        std::uint32_t chunk;  // chunked fields; 0 otherwise
    };
    using Postings = std::unordered_map<std::string, std::vector<Posting>>;  // term -> ascending slots
    /// search_vector of a chunked vector field.
    std::vector<ScoredDoc> search_vector_chunks(std::size_t field, std::span<const float> query, std::size_t k,
                                                std::uint32_t n, std::uint64_t seq, const Filter* filter) const;
    /// search_text of a chunked field.
    std::vector<ScoredDoc> search_chunks(std::size_t field, const sparse::Bm25QueryStats& stats, std::size_t k,
                                         std::uint32_t n, std::uint64_t seq, const Filter* filter) const;
    /// The postings of `term` in text field `field` (nullptr: none); requires index_mu_ (shared).
    const std::vector<Posting>* postings(std::size_t field, std::string_view term) const;
    /// Lucene's BM25 with the supplied (collection-wide) statistics, exactly as Bm25Index scores them:
    /// for each query term in order, `add(posting, contribution)` per visible posting of the prefix,
    /// the length of the scored unit (document or chunk) given by `length(posting)`.
    template <class Length, class Add>
    void score_postings(std::size_t field, const sparse::Bm25QueryStats& stats, std::uint32_t n, std::uint64_t seq,
                        Length&& length, Add&& add) const;

    const Schema* schema_;  // the collection's, which outlives its memtables
    std::size_t capacity_;
    std::unique_ptr<Slot[]> slots_;
    std::uint32_t size_ = 0;                                  // writer only
    std::unordered_map<std::string, std::uint32_t> latest_;  // id -> newest slot (written under index_mu_)
    mutable std::shared_mutex index_mu_;  // guards latest_ and text_index_ (the writer appends, readers share)
    std::vector<Postings> text_index_;   // per schema field (empty maps for non-text fields)
};

}  // namespace quiver::engine
