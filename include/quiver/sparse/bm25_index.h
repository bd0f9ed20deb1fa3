/// @file bm25_index.h
/// @brief A BM25 inverted index over analysed text, scored exactly as Lucene 9 / Anserini do.
///
/// Scoring (Lucene BM25Similarity, which Pyserini's published BEIR numbers use):
///   idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5)), N = documents with at least one token
///   norm(d)  = SmallFloat.intToByte4(|d|): document length in tokens, kept as one lossy byte
///   avgdl    = total tokens / N
///   score    = sum over distinct query terms of w - w / (1 + tf * 1 / (k1 * (1 - b + b * len(norm) / avgdl)))
///              with w = query term count * idf (Anserini's bag-of-words query boosts repeated terms).
/// Multi-field documents are indexed as one "contents" field: title, a space, then text (Anserini's
/// flat BEIR indexes). Postings hold term frequencies in the shared PostingStore (postings.h); block
/// max scores are computed for the index's k1/b, and `set_params` recomputes them.
///
/// Thread-safety: a built or opened index is immutable and `search` is safe from many threads;
/// analysis needs an Analyzer per thread, which `Bm25Searcher` bundles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quiver/core/progress.h"
#include "quiver/core/result.h"
#include "quiver/sparse/maxscore.h"
#include "quiver/sparse/postings.h"
#include "quiver/text/analyzer.h"

namespace quiver::sparse {

struct Bm25Params {
    float k1 = 0.9f;
    float b = 0.4f;
};

/// A document's analysed text: its distinct terms with their counts, and its length in tokens (the
/// sum of the counts), as analysing title and text with the index's analyzer gives them.
struct Bm25AnalysedText {
    std::span<const std::pair<std::string, std::uint32_t>> terms;  ///< term -> count (> 0), distinct
    std::uint32_t length = 0;
};

/// One input document; the views must stay valid during `Bm25Index::build`.
struct Bm25Document {
    std::string_view id;     ///< the caller's id (unique, non-empty)
    std::string_view title;  ///< may be empty
    std::string_view text;
    /// When set, the document's analysis, taken as it is: title and text are not read.
    const Bm25AnalysedText* analysed = nullptr;
};

struct Bm25Hit {
    DocIndex doc;  ///< internal number; `doc_id(doc)` gives the caller's id
    float score;
};

/// The statistics one query is scored with, Lucene's CollectionStatistics and TermStatistics: over
/// one index (`Bm25Index::query_stats`) or summed over several indexes that form one collection
/// (the engine's segments), so a document's score does not depend on how the collection is split.
struct Bm25QueryStats {
    std::uint64_t doc_count = 0;            ///< documents with at least one token
    std::uint64_t total_tokens = 0;         ///< sum of their lengths (sumTotalTermFreq)
    std::vector<std::string> terms;         ///< distinct analysed query terms, in first-seen order
    std::vector<float> boosts;              ///< occurrences of each in the query
    std::vector<std::uint64_t> doc_freq;    ///< documents containing each

    /// Distinct `terms` with their counts as boosts; statistics zero.
    static Bm25QueryStats for_terms(std::span<const std::string> terms);
};

/// Lucene's idf: ln(1 + (doc_count - df + 0.5) / (df + 0.5)) as a float.
float bm25_idf(std::uint64_t doc_freq, std::uint64_t doc_count) noexcept;

/// Lucene SmallFloat.intToByte4 / byte4ToInt: the one-byte length encoding of BM25 norms.
std::uint8_t encode_norm(std::uint32_t length) noexcept;
std::uint32_t decode_norm(std::uint8_t norm) noexcept;

class Bm25Index {
public:
    inline static constexpr std::uint32_t kFormatVersion = 1;

    struct BuildOptions {
        text::AnalyzerConfig analyzer{};
        Bm25Params params{};
        std::size_t threads = 0;           ///< analysis threads; 0 = all cores
        ProgressBar* progress = nullptr;   ///< advanced once per document when set
    };

    /// Analyses and indexes `docs`. kInvalidArgument for an empty or duplicate id, a bad analyzer
    /// config, or more than 2^32 - 2 documents.
    [[nodiscard]] static Result<Bm25Index> build(std::span<const Bm25Document> docs, const BuildOptions& options);

    /// Documents of a build that existing indexes hold already (a segment merge): `build` given parts
    /// takes the first documents from them, in order, each part's documents but its `removed` ones,
    /// in the part's order (docs[0, kept of part 0) from part 0, the next from part 1, ...). Their
    /// postings, lengths and norms are read from the parts' postings instead of analysing their texts
    /// (their titles and texts are not read; their ids are `docs`' ids); the documents after them
    /// are analysed as by `build`. The result is the same index, byte for byte, as `build` over the
    /// same texts gives with the same analyzer code, as long as no term occurs more than 2^24 times in
    /// one document (postings hold counts as float32, and a length is the sum of its counts; past
    /// that, a length read back may fall short by the rounding).
    struct Part {
        const Bm25Index* index = nullptr;       ///< analysed with `BuildOptions::analyzer`
        std::span<const std::uint32_t> removed; ///< its documents left out, ascending, < index->num_docs()
    };
    /// `build` taking its first documents from `parts` (see Part). kInvalidArgument as `build`, and
    /// when a part's analyzer config differs from `options.analyzer`, its `removed` is not ascending
    /// within it, or the parts' documents outnumber `docs`.
    [[nodiscard]] static Result<Bm25Index> build(std::span<const Bm25Document> docs, const BuildOptions& options,
                                                 std::span<const Part> parts);

    /// Writes the index as one container file (kind 'BM25', version kFormatVersion).
    [[nodiscard]] Status save(const std::string& path) const;
    /// Opens a saved index (mapped; postings are read in place). kDataLoss on corrupt bytes,
    /// kFailedPrecondition on a newer format, kNotFound when the file is missing.
    [[nodiscard]] static Result<Bm25Index> open(const std::string& path);

    /// Changes k1/b: recomputes the norm table and block-max scores, O(postings). Not thread-safe.
    [[nodiscard]] Status set_params(Bm25Params params);
    const Bm25Params& params() const noexcept { return params_; }
    const text::AnalyzerConfig& analyzer_config() const noexcept { return analyzer_; }

    std::uint32_t num_docs() const noexcept { return static_cast<std::uint32_t>(doc_offsets_.size() - 1); }
    std::uint32_t num_terms() const noexcept { return static_cast<std::uint32_t>(term_offsets_.size() - 1); }
    double average_length() const noexcept { return avgdl_; }
    /// Documents with at least one token, and the sum of all document lengths.
    std::uint32_t docs_with_tokens() const noexcept { return docs_with_tokens_; }
    std::uint64_t total_tokens() const noexcept { return total_tokens_; }
    /// Documents containing `term` (kTerminated or unknown: 0).
    std::uint32_t doc_freq(TermId term) const noexcept {
        return term < postings_.num_terms() ? postings_.term_info(term).doc_freq : 0;
    }
    std::string_view doc_id(DocIndex doc) const noexcept;
    /// Term id of an analysed term, or kTerminated when the term is not in the vocabulary (a hash probe).
    TermId find_term(std::string_view term) const noexcept;
    /// The analysed term of `id` (< num_terms()).
    std::string_view term(TermId id) const noexcept {
        return std::string_view(term_blob_).substr(term_offsets_[id], term_offsets_[id + 1] - term_offsets_[id]);
    }
    float idf(TermId term) const noexcept;
    const PostingStore& postings() const noexcept { return postings_; }
    /// Bytes of the saved representation (ids, vocabulary, norms, postings).
    std::size_t size_bytes() const noexcept;

    /// Top-k for analysed query terms (duplicates count as boosts), best first; ties by doc number.
    std::vector<Bm25Hit> search_terms(std::span<const std::string> terms, std::size_t k,
                                      TopKStats* stats = nullptr) const;
    /// The same through the exhaustive reference scorer (tests, verification).
    std::vector<Bm25Hit> search_terms_exhaustive(std::span<const std::string> terms, std::size_t k) const;

    /// This index's own statistics for analysed query terms (what `search_terms` scores with).
    Bm25QueryStats query_stats(std::span<const std::string> terms) const;
    /// Top-k scored with externally supplied statistics (e.g. a whole collection's), skipping
    /// documents `allowed` does not allow inside the walk. Block-max pruning stays exact: the
    /// stored bounds are rescaled for the query's length-norm table (see Bm25Scorer::bound_scale).
    /// A filter bitmap in `allowed` drives the walk as `walk` says (maxscore.h); `min_score` as in
    /// search_top_k (ignored by the exhaustive reference).
    std::vector<Bm25Hit> search_with_stats(const Bm25QueryStats& stats, std::size_t k,
                                           const AllowedDocs* allowed = nullptr, TopKStats* top_k_stats = nullptr,
                                           bool exhaustive = false, const FilterWalkParams& walk = {},
                                           float min_score = 0.0f) const;
    /// The tokens `build` indexes for one document (title, then text), through `analyzer`, which
    /// must have this index's analyzer config. Appends to `out`.
    static void document_tokens(text::Analyzer& analyzer, std::string_view title, std::string_view text,
                                std::vector<std::string>& out);

private:
    void make_norm_table();
    std::vector<QueryTerm> make_query(std::span<const std::string> terms) const;
    Status index_structures();

    text::AnalyzerConfig analyzer_;
    Bm25Params params_;
    std::uint64_t total_tokens_ = 0;
    std::uint32_t docs_with_tokens_ = 0;
    double avgdl_ = 0.0;
    std::vector<std::uint8_t> norms_;
    std::vector<float> norm_inverse_ = std::vector<float>(256, 0.0f);
    std::vector<std::uint64_t> doc_offsets_ = {0};  // into doc_blob_
    std::string doc_blob_;
    std::vector<std::uint64_t> term_offsets_ = {0};  // into term_blob_, terms sorted byte-wise
    std::string term_blob_;
    // Open-addressing hash of the terms (ids; kTerminated = empty), power-of-two size >= 2 x terms:
    // find_term in one or two probes instead of a binary search over the blob (a query looks its terms
    // up in every segment). Built by build() and open().
    std::vector<TermId> term_slots_;
    PostingStore postings_;

    void index_terms();
};

/// Per-thread search handle: an Analyzer plus a reference to the index (which must outlive it).
class Bm25Searcher {
public:
    [[nodiscard]] static Result<Bm25Searcher> create(const Bm25Index& index);
    /// Analyses `query` and returns the top k. An empty analysed query gives no hits.
    std::vector<Bm25Hit> search(std::string_view query, std::size_t k, TopKStats* stats = nullptr);

private:
    Bm25Searcher(const Bm25Index& index, text::Analyzer analyzer) : index_(&index), analyzer_(std::move(analyzer)) {}
    const Bm25Index* index_;
    text::Analyzer analyzer_;
    std::vector<std::string> terms_;
};

}  // namespace quiver::sparse
