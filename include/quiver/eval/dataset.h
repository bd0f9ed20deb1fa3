/// @file dataset.h
/// @brief Test collections for retrieval evaluation: documents, queries and relevance judgments.
///
/// Layouts read (auto-detected by `detect_layout` from file contents, not names; see docs/cli-eval.md):
///   - BEIR: `corpus.jsonl` ({"_id","title","text"}), `queries.jsonl` ({"_id","text"}), and
///     `qrels/<split>.tsv` (header `query-id corpus-id score`); LIMIT's `qrels.jsonl`
///     ({"query-id","corpus-id","score"}) is accepted in place of the qrels folder.
///   - TREC: document files of `<DOC><DOCNO>id</DOCNO>...</DOC>` records, a topics file of `<top>`
///     records (`<num>`, `<title>` is the query), and 4-column qrels `qid iter docid rel` (Terrier's
///     `doc-text.trec`, `query-text.trec`, `qrels` as shipped).
///   Files are classified by their first bytes: `<DOC>` documents, `<top>` topics, `.I` SMART records
///   (documents when a record has `.T`/`.A`/`.B`, queries when only `.W`, or when the name says qry/quer),
///   and judgments (first line of 3 or 4 columns ending in an integer). README/SOURCE/LICENSE/.md skipped.
///   - SMART (Cranfield): `.I/.T/.A/.B/.W` records; qrels `qid docid grade`. When the qrels' query
///     numbers are not all `.I` numbers but all fit 1..num_queries, queries are numbered by their
///     ordinal position (the Cranfield quirk). Cleverdon grades 1 (best) .. 4 become gains 4 .. 1;
///     grades <= 0 stay as they are (not relevant).
/// Malformed input is kInvalidArgument naming file and line ("corpus.jsonl:17: ..."). Problems that do
/// not prevent evaluation become `warnings` (qrels naming unknown documents or queries, empty queries).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "quiver/core/json.h"
#include "quiver/core/result.h"

namespace quiver::eval {

struct Document {
    std::string id;
    std::string title;
    std::string text;
    /// BEIR's `metadata` member as given (a JSON object), or null when the record has none.
    json::Value metadata;
};

struct Query {
    std::string id;
    std::string text;
};

/// query id -> document id -> graded relevance (>= 1 relevant, 0 judged non-relevant, < 0 unjudged).
using Qrels = std::map<std::string, std::map<std::string, int>>;

enum class Layout { kBeir, kTrec, kSmart };
const char* to_string(Layout layout) noexcept;

struct Dataset {
    Layout layout = Layout::kBeir;
    std::vector<Document> documents;
    std::vector<Query> queries;  ///< only the queries judged in the chosen split, in file order
    Qrels qrels;
    std::vector<std::string> warnings;
};

struct LoadOptions {
    std::string split = "test";  ///< BEIR qrels/<split>.tsv; ignored by the other layouts
    bool load_documents = true;  ///< false when only queries and qrels are needed (evaluating a run)
    bool load_queries = true;    ///< false when only the documents are needed (see load_corpus)
};

/// Which layout `dir` holds; kNotFound naming the files looked for when none matches.
[[nodiscard]] Result<Layout> detect_layout(const std::string& dir);
/// Detects the layout and loads everything.
[[nodiscard]] Result<Dataset> load_dataset(const std::string& dir, const LoadOptions& options = {});
/// Detects the layout and loads only the documents (no queries or qrels needed): what `quiver ingest`
/// serves. kInvalidArgument when a document id repeats.
[[nodiscard]] Result<Dataset> load_corpus(const std::string& dir);

// Individual readers (each names its file and line in errors).
[[nodiscard]] Result<std::vector<Document>> load_beir_corpus(const std::string& path);
[[nodiscard]] Result<std::vector<Query>> load_beir_queries(const std::string& path);
/// BEIR TSV (3 columns, optional header) or TREC qrels (4 columns), chosen per file by column count.
[[nodiscard]] Result<Qrels> load_qrels_text(const std::string& path);
/// LIMIT-style JSONL qrels.
[[nodiscard]] Result<Qrels> load_qrels_jsonl(const std::string& path);
[[nodiscard]] Result<std::vector<Document>> load_trec_documents(const std::string& path);
[[nodiscard]] Result<std::vector<Query>> load_trec_topics(const std::string& path);
[[nodiscard]] Result<std::vector<Document>> load_smart_documents(const std::string& path);
/// Queries keep their `.I` numbers (leading zeros removed).
[[nodiscard]] Result<std::vector<Query>> load_smart_queries(const std::string& path);
/// `qid docid grade` lines; grades mapped as described above.
[[nodiscard]] Result<Qrels> load_smart_qrels(const std::string& path);

/// Checks ids between the parts, drops queries without judgments, and appends warnings for qrels
/// naming unknown queries or documents, duplicate ids and empty query texts. kInvalidArgument when
/// no judged query remains or document ids repeat.
[[nodiscard]] Status reconcile(Dataset& dataset, bool check_documents);

}  // namespace quiver::eval
