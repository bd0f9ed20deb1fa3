/// @file postings.h
/// @brief The one posting-list core shared by lexical BM25 and learned-sparse retrieval.
///
/// A `PostingStore` holds, for every term id in [0, num_terms()), the documents that contain it with
/// one weight each. BM25 stores integer term frequencies; learned-sparse models (SPLADE and friends)
/// store real-valued or 8-bit quantised impacts. Scoring is not the store's business: a caller turns
/// (doc, weight) into a score, and `compute_block_scores` records, per block, the largest such score
/// so that dynamic pruning (block-max MaxScore, see maxscore.h) can skip blocks.
///
/// Encoding. Each list is cut into blocks of `kBlockSize` (128) postings. A block stores its doc ids
/// as deltas (the first one relative to the previous block's last doc, or to -1 for the first block)
/// bit-packed at one fixed width per block, then its weights: frequencies bit-packed as (tf - 1) at a
/// fixed width, or raw float32, or u8 codes times a per-list scale. Full blocks are packed in the
/// 4-lane vertical layout of the SIMD-BP128 family, so SSE2 decodes four values per step; a list's
/// last, partial block is a plain bit stream.
/// Per block, `BlockInfo` keeps the last doc id (so `seek` skips whole blocks without decoding), the
/// byte offset, the largest raw weight and the largest unit score. See docs/formats-sparse.md.
///
/// Ownership and thread-safety. A built or opened store is immutable; any number of threads may
/// create cursors over it concurrently. A cursor is single-threaded and valid while its store lives
/// and is not moved.
/// An opened store views the mapped file it was read from and keeps it alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/storage/file_format.h"

namespace quiver::sparse {

/// A term (dimension) id. The store's term table is dense: its size is max term id + 1, so ids
/// should be small integers (vocabulary ids), not hashes.
using TermId = std::uint32_t;
/// A dense internal document number (0..num_docs-1) inside one store.
using DocIndex = std::uint32_t;

/// Returned by cursors once exhausted; larger than every valid DocIndex.
inline constexpr DocIndex kTerminated = 0xFFFFFFFFu;
/// Postings per block (the last block of a list may hold fewer).
inline constexpr std::size_t kBlockSize = 128;

/// How weights are stored. Serialised as one byte; values are stable.
enum class WeightType : std::uint8_t {
    kFrequency = 0,   ///< positive integer counts (BM25 tf), bit-packed; weight() returns the count
    kFloat32 = 1,     ///< raw float32 impacts (exact learned-sparse weights)
    kQuantized8 = 2,  ///< u8 code per posting, weight = code * list scale (scale = list max / 255)
};

/// One input triple for `PostingsBuilder`.
struct Posting {
    TermId term;
    DocIndex doc;
    float weight;  ///< > 0; an integer >= 1 when the store holds kFrequency
};

/// Metadata of one block. Lives in one flat array for the whole store.
struct BlockInfo {
    DocIndex last_doc;     ///< largest doc id in the block
    std::uint32_t offset;  ///< byte offset of the encoded block inside the data section
    float max_weight;      ///< largest decoded weight in the block
    float max_score;       ///< largest unit score in the block (see compute_block_scores)
};
static_assert(sizeof(BlockInfo) == 16);

/// Per-term metadata. `first_block`..`first_block + num_blocks` index the block array.
struct TermInfo {
    std::uint32_t first_block;
    std::uint32_t num_blocks;
    std::uint32_t doc_freq;  ///< number of postings (documents containing the term)
    float scale;             ///< kQuantized8: weight = code * scale; 1 otherwise
    float max_weight;        ///< largest weight in the list
    float max_score;         ///< largest unit score in the list (the list's upper bound)
};
static_assert(sizeof(TermInfo) == 24);

class PostingStore;

/// Forward iterator over one posting list, document-at-a-time, with block-max information.
///
/// A fresh cursor is positioned on the list's first posting (doc() == kTerminated for an empty
/// list). `next` and `seek` decode at most one block per call; `shallow_seek` moves only the block
/// pointer, so pruning can read a block's bounds without decoding it.
class PostingCursor {
public:
    PostingCursor() = default;

    DocIndex doc() const noexcept { return doc_; }
    /// The current posting's weight (tf for kFrequency). Undefined once terminated.
    float weight() const noexcept { return weights_[pos_]; }
    /// Moves to the next posting; returns the new doc() (kTerminated at the end).
    DocIndex next() noexcept;
    /// Moves to the first posting with doc >= target (never backwards); returns the new doc().
    DocIndex seek(DocIndex target) noexcept;
    /// Points the block pointer at the first block whose last_doc >= target, without decoding and
    /// without moving doc(). Returns that block's last_doc, or kTerminated when no block is left.
    /// Requires target >= doc().
    DocIndex shallow_seek(DocIndex target) noexcept;
    /// Calls `fn(doc, weight)` for every posting from doc() up to `last` (inclusive), in order, and
    /// leaves the cursor on the first posting after `last` (or terminated). The bulk form of next():
    /// the decoded block is read in a tight loop.
    template <class Fn>
    void for_each_through(DocIndex last, Fn&& fn) noexcept {
        while (doc_ <= last && doc_ != kTerminated) {
            std::uint32_t i = pos_;
            while (i < count_ && docs_[i] <= last) {
                fn(docs_[i], weights_[i]);
                ++i;
            }
            if (i < count_) {
                pos_ = i;
                doc_ = docs_[i];
                return;
            }
            load_block(block_ + 1);
        }
    }
    /// The run form of for_each_through: calls `fn(docs, weights, count, block_max_score)` for each
    /// decoded block's run of postings from doc() up to `last` (inclusive; count >= 1, docs ascending),
    /// and leaves the cursor on the first posting after `last` (or terminated).
    template <class Fn>
    void for_each_run_through(DocIndex last, Fn&& fn) noexcept {
        while (doc_ <= last && doc_ != kTerminated) {
            std::uint32_t end = count_;
            if (docs_[count_ - 1] > last) {
                end = pos_;
                while (docs_[end] <= last) ++end;
            }
            fn(docs_ + pos_, weights_ + pos_, end - pos_, blocks_[block_].max_score);
            if (end < count_) {
                pos_ = end;
                doc_ = docs_[end];
                return;
            }
            load_block(block_ + 1);
        }
    }
    /// Bounds of the block the block pointer is on (after shallow_seek, or the current block).
    float block_max_score() const noexcept { return shallow_block_ < num_blocks_ ? blocks_[shallow_block_].max_score : 0.0f; }
    float block_max_weight() const noexcept { return shallow_block_ < num_blocks_ ? blocks_[shallow_block_].max_weight : 0.0f; }
    DocIndex block_last_doc() const noexcept { return shallow_block_ < num_blocks_ ? blocks_[shallow_block_].last_doc : kTerminated; }
    /// Whole-list metadata.
    std::uint32_t doc_freq() const noexcept { return info_.doc_freq; }
    float max_score() const noexcept { return info_.max_score; }
    float max_weight() const noexcept { return info_.max_weight; }

private:
    friend class PostingStore;
    void load_block(std::uint32_t block) noexcept;

    const PostingStore* store_ = nullptr;
    const BlockInfo* blocks_ = nullptr;
    TermInfo info_{};
    std::uint32_t num_blocks_ = 0;
    std::uint32_t block_ = 0;          // decoded block
    std::uint32_t shallow_block_ = 0;  // block pointer for bounds
    std::uint32_t pos_ = 0;            // position inside the decoded block
    std::uint32_t count_ = 0;          // postings in the decoded block
    DocIndex doc_ = kTerminated;
    alignas(64) DocIndex docs_[kBlockSize] = {};
    alignas(64) float weights_[kBlockSize] = {};
};

/// Immutable compressed posting lists. Build with PostingsBuilder, or read with `read`.
class PostingStore {
public:
    PostingStore() = default;
    PostingStore(PostingStore&&) noexcept = default;
    PostingStore& operator=(PostingStore&&) noexcept = default;

    WeightType weight_type() const noexcept { return weight_type_; }
    std::uint32_t num_terms() const noexcept { return static_cast<std::uint32_t>(terms_.size()); }
    std::uint32_t num_docs() const noexcept { return num_docs_; }
    std::uint64_t num_postings() const noexcept { return num_postings_; }
    /// Metadata for `term`; a zero TermInfo (empty list) when term >= num_terms().
    TermInfo term_info(TermId term) const noexcept;
    std::span<const BlockInfo> blocks() const noexcept { return blocks_; }
    /// Encoded bytes of all blocks (for size reports).
    std::size_t data_bytes() const noexcept { return data_.size(); }

    /// A cursor over `term`'s list (an exhausted cursor when the term has no postings).
    PostingCursor cursor(TermId term) const noexcept;
    /// Decodes a whole list into `docs` and `weights` (cleared first). O(doc_freq).
    void decode(TermId term, std::vector<DocIndex>& docs, std::vector<float>& weights) const;

    /// Sets every block's and list's max_score to the largest unit_score(term, doc, weight) over its
    /// postings. Until called, max_score == max_weight (right for dot-product scoring with
    /// non-negative query weights). Not thread-safe; call before sharing the store. O(num_postings).
    using UnitScoreFn = std::function<float(TermId term, DocIndex doc, float weight)>;
    void compute_block_scores(const UnitScoreFn& unit_score);

    /// Appends the store to an open container file (8-byte aligned sections).
    [[nodiscard]] Status write(storage::FileWriter& out) const;
    /// Reads a store written by `write` from `in`, viewing the bytes in place; `keep_alive` owns
    /// the mapping. Structure is validated (block ranges, offsets, bit widths): corrupt bytes give
    /// kDataLoss, never a crash.
    [[nodiscard]] static Result<PostingStore> read(storage::BinaryReader& in,
                                                   std::shared_ptr<const storage::MappedFile> keep_alive);

private:
    friend class PostingsBuilder;
    friend class PostingCursor;

    WeightType weight_type_ = WeightType::kFrequency;
    std::uint32_t num_docs_ = 0;
    std::uint64_t num_postings_ = 0;
    // Built stores own their arrays; opened stores view the mapping (blocks_/data_ spans).
    std::vector<TermInfo> terms_;
    std::vector<BlockInfo> owned_blocks_;
    std::vector<std::uint8_t> owned_data_;
    std::span<const BlockInfo> blocks_;
    std::span<const std::uint8_t> data_;  // padded with >= 8 zero bytes for word-wide reads
    std::shared_ptr<const storage::MappedFile> keep_alive_;
};

/// Collects (term, doc, weight) triples in any order and encodes them.
/// Memory: ~8 bytes per triple until build(). Not thread-safe.
class PostingsBuilder {
public:
    explicit PostingsBuilder(WeightType type = WeightType::kFrequency) : type_(type) {}

    /// Adds one posting. Cheap; validation happens in build().
    void add(TermId term, DocIndex doc, float weight);
    void add(const Posting& p) { add(p.term, p.doc, p.weight); }
    /// Adds a whole document's sparse vector: terms[i] has weight weights[i].
    void add_document(DocIndex doc, std::span<const TermId> terms, std::span<const float> weights);
    /// Declares the document count (defaults to max doc id + 1).
    void set_num_docs(std::uint32_t n) { num_docs_ = n; }

    /// Encodes everything added. kInvalidArgument for a duplicate (term, doc) pair, a weight that is
    /// not finite and > 0, a non-integer frequency, or a doc id >= the declared num_docs.
    /// The builder is left empty.
    [[nodiscard]] Result<PostingStore> build();

private:
    WeightType type_;
    std::uint32_t num_docs_ = 0;
    std::vector<std::vector<std::pair<DocIndex, float>>> lists_;
};

}  // namespace quiver::sparse
