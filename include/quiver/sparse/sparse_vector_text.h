/// @file sparse_vector_text.h
/// @brief Real-text learned-sparse-style vectors without a neural encoder: BM25 impacts of a corpus's
/// documents, and queries expanded by pseudo-relevance feedback, so Seismic can be measured on a real
/// term distribution (docs/seismic.md, "Real-text collection").
///
/// Tokenisation (deliberately simple and self-contained): ASCII letters are lower-cased; a token is a
/// maximal run of ASCII letters and digits (any other byte separates tokens); tokens shorter than two
/// characters and a fixed list of 33 English stopwords (Lucene's classic English set) are dropped. No
/// stemming.
///
/// Document vector: term -> idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)), with Lucene's
/// idf = ln(1 + (N - df + 0.5) / (df + 0.5)); every weight is > 0.
/// Query vector: the query's own terms weighted idf * count (scaled to max 1), mixed with the
/// `expansion_terms` best feedback terms: each of the `feedback_docs` top documents (exact inner product
/// of the original query with the impacts) contributes its normalised impacts weighted by its rank
/// score; feedback weights are scaled to max 1, then q = original_weight * q0 + (1 - original_weight) *
/// feedback. Query terms unknown to the corpus are dropped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/sparse/sparse_vector.h"

namespace quiver::sparse {

struct TextRecord {
    std::string id;
    std::string text;  ///< title and body joined
};

struct ImpactParams {
    float k1 = 0.9f;
    float b = 0.4f;
    std::size_t feedback_docs = 10;
    std::size_t expansion_terms = 30;
    float original_weight = 0.5f;
};

/// Tokens of `text` (see the file comment).
std::vector<std::string> simple_tokenize(std::string_view text);

/// Reads BEIR-style JSONL (`_id` or `id`, optional `title`, `text`); title and text are joined.
[[nodiscard]] Result<std::vector<TextRecord>> read_text_jsonl(const std::string& path);

/// Reads text records from any of the formats `sparse-gen --extra-text` accepts, detected from the content:
///   - BEIR-style JSONL (first non-blank byte `{`), as read_text_jsonl;
///   - SMART records (first line starts with `.I`, e.g. Cranfield's cran.all.1400): `.T` (title) and `.W`
///     (text) are joined, other fields (`.A`, `.B`, ...) are ignored, the id is the `.I` number;
///   - otherwise TSV lines `id<TAB>text` (BEIR/Anserini topics); blank lines are skipped, a line without a
///     tab is kInvalidArgument naming file and line.
/// Gzip-compressed files (any of the above) are decompressed transparently (zlib). Every id is prefixed
/// with `id_prefix` (pass e.g. "arguana/" so ids from several files stay distinct). Records with empty
/// text are kept (they become empty vectors). kNotFound / kInvalidArgument name the file; a file with no
/// record is kInvalidArgument.
[[nodiscard]] Result<std::vector<TextRecord>> read_text_records(const std::string& path, std::string_view id_prefix = {});

/// The prefix `sparse-gen --extra-text` gives the records of `path`: its base name without the `.gz`,
/// `.tsv`, `.jsonl`, `.txt` extensions (in that order), then `/`; "topics.beir-v1.0.0-nq.test.tsv.gz" gives
/// "topics.beir-v1.0.0-nq.test/".
std::string text_id_prefix(std::string_view path);

/// BM25 impact vectors of `docs` over a string vocabulary built from them. A document with no token
/// becomes an empty vector. kInvalidArgument for bad parameters or an empty corpus.
[[nodiscard]] Result<SparseCollection> bm25_impacts(const std::vector<TextRecord>& docs, const ImpactParams& params);

/// Expanded query vectors over `impacts`' vocabulary (see the file comment).
[[nodiscard]] Result<QuerySet> expanded_queries(const SparseCollection& impacts, const std::vector<TextRecord>& queries,
                                                const ImpactParams& params);

}  // namespace quiver::sparse
