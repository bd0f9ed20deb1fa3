#include "quiver/eval/dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>
#include <unordered_set>

#include "eval/dataset_internal.h"
#include "quiver/core/json.h"
#include "quiver/storage/file_format.h"

namespace quiver::eval {

namespace fs = std::filesystem;
using detail::for_each_line;

bool detail::parse_int(std::string_view s, int& out) {
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

namespace {

// An id field: a JSON string, or an integral number printed without a fraction.
bool json_id(const json::Value* v, std::string& out) {
    if (v == nullptr) return false;
    if (v->is_string()) {
        out = v->as_string();
        return !out.empty();
    }
    if (v->is_number() && v->is_integer()) {
        out = std::to_string(v->as_int());
        return true;
    }
    return false;
}

Result<json::Value> parse_json_line(const std::string& path, std::size_t line_no, std::string_view line) {
    auto v = json::parse(line);
    if (!v) return invalid_argument(fmt::format("{}:{}: bad JSON: {}", path, line_no, v.error().message()));
    if (!v->is_object()) return invalid_argument(fmt::format("{}:{}: expected a JSON object", path, line_no));
    return std::move(v).value();
}

Status text_field(const std::string& path, std::size_t line_no, const json::Value& obj, const char* key,
                  bool required, std::string& out) {
    const json::Value* v = obj.find(key);
    if (v == nullptr || v->is_null()) {
        if (required) return invalid_argument(fmt::format("{}:{}: missing string field \"{}\"", path, line_no, key));
        out.clear();
        return ok_status();
    }
    if (!v->is_string()) {
        return invalid_argument(fmt::format("{}:{}: field \"{}\" must be a string, not {}", path, line_no, key,
                                            v->type_name()));
    }
    out = v->as_string();
    return ok_status();
}

bool exists_file(const std::string& path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec);
}

// First non-blank bytes of a file (up to 256), for layout sniffing.
std::string sniff(const fs::path& p) {
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (f == nullptr) return {};
    char buf[256];
    const std::size_t n = std::fread(buf, 1, sizeof(buf), f);
    std::fclose(f);
    return std::string(detail::trim(std::string_view(buf, n)));
}

std::vector<fs::path> regular_files(const std::string& dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.is_regular_file(ec)) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool name_has(const fs::path& p, std::string_view what) {
    std::string name = p.filename().string();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    return name.find(what) != std::string::npos;
}

Result<Dataset> load_beir(const std::string& dir, const LoadOptions& options) {
    Dataset ds;
    ds.layout = Layout::kBeir;
    if (!options.load_queries) {
        QUIVER_ASSIGN_OR_RETURN(ds.documents, load_beir_corpus(dir + "/corpus.jsonl"));
        return ds;
    }
    const std::string qrels_tsv = fmt::format("{}/qrels/{}.tsv", dir, options.split);
    const std::string qrels_jsonl = dir + "/qrels.jsonl";
    if (exists_file(qrels_tsv)) {
        QUIVER_ASSIGN_OR_RETURN(ds.qrels, load_qrels_text(qrels_tsv));
    } else if (exists_file(qrels_jsonl)) {
        QUIVER_ASSIGN_OR_RETURN(ds.qrels, load_qrels_jsonl(qrels_jsonl));
    } else {
        return not_found(fmt::format("no judgments for split '{}': looked for '{}' and '{}'", options.split,
                                     qrels_tsv, qrels_jsonl));
    }
    QUIVER_ASSIGN_OR_RETURN(ds.queries, load_beir_queries(dir + "/queries.jsonl"));
    if (options.load_documents) {
        QUIVER_ASSIGN_OR_RETURN(ds.documents, load_beir_corpus(dir + "/corpus.jsonl"));
    }
    return ds;
}

// What a file holds, judged by its content (names only break ties between SMART documents and queries).
enum class FileKind { kOther, kTrecDocs, kTrecTopics, kSmartDocs, kSmartQueries, kSmartQrels, kTrecQrels };

FileKind classify(const fs::path& p) {
    if (name_has(p, "readme") || name_has(p, ".md") || name_has(p, "source") || name_has(p, "license")) {
        return FileKind::kOther;
    }
    const std::string head = sniff(p);
    if (head.rfind("<DOC>", 0) == 0) return FileKind::kTrecDocs;
    if (head.rfind("<top>", 0) == 0) return FileKind::kTrecTopics;
    if ((name_has(p, "qry") || name_has(p, "quer")) && head.rfind(".", 0) == 0) return FileKind::kSmartQueries;
    if (head.rfind(".I", 0) == 0) {
        // Documents carry a title, author or bibliography field; queries only .W text.
        std::FILE* f = std::fopen(p.c_str(), "rb");
        if (f == nullptr) return FileKind::kOther;
        std::string buf(8192, '\0');
        buf.resize(std::fread(buf.data(), 1, buf.size(), f));
        std::fclose(f);
        for (const char* marker : {"\n.T", "\n.A", "\n.B"}) {
            if (buf.find(marker) != std::string::npos) return FileKind::kSmartDocs;
        }
        return FileKind::kSmartQueries;
    }
    // Judgments: the first line has 3 or 4 columns ending in an integer grade.
    const std::string_view first = std::string_view(head).substr(0, std::min(head.find('\n'), head.size()));
    std::string_view f[5];
    const std::size_t n = detail::split_ws(detail::trim(first), f, 4);
    int grade = 0;
    if ((n == 3 || n == 4) && detail::parse_int(f[n - 1], grade)) {
        int a = 0, b = 0;
        if (n == 3 && detail::parse_int(f[0], a) && detail::parse_int(f[1], b)) return FileKind::kSmartQrels;
        return FileKind::kTrecQrels;
    }
    return FileKind::kOther;
}

struct Scan {
    std::vector<std::string> trec_docs, trec_topics, smart_docs, smart_queries, smart_qrels, trec_qrels;
};

Scan scan_dir(const std::string& dir) {
    Scan s;
    std::vector<fs::path> files = regular_files(dir);
    for (const char* sub : {"docs", "corpus", "documents"}) {
        for (const fs::path& p : regular_files(dir + "/" + sub)) files.push_back(p);
    }
    for (const fs::path& p : files) {
        switch (classify(p)) {
            case FileKind::kTrecDocs: s.trec_docs.push_back(p.string()); break;
            case FileKind::kTrecTopics: s.trec_topics.push_back(p.string()); break;
            case FileKind::kSmartDocs: s.smart_docs.push_back(p.string()); break;
            case FileKind::kSmartQueries: s.smart_queries.push_back(p.string()); break;
            case FileKind::kSmartQrels: s.smart_qrels.push_back(p.string()); break;
            case FileKind::kTrecQrels: s.trec_qrels.push_back(p.string()); break;
            case FileKind::kOther: break;
        }
    }
    return s;
}

// The one file of a kind, or kNotFound / kInvalidArgument naming what was found.
Result<std::string> one_of(const std::vector<std::string>& found, const std::string& dir, std::string_view what) {
    if (found.empty()) return not_found(fmt::format("no {} in '{}'", what, dir));
    if (found.size() > 1) {
        return invalid_argument(fmt::format("more than one {} in '{}': '{}' and '{}'", what, dir, found[0], found[1]));
    }
    return found[0];
}

Result<Qrels> load_any_qrels(const Scan& s, const std::string& dir) {
    if (s.trec_qrels.size() + s.smart_qrels.size() == 0) {
        return not_found(fmt::format("no qrels file in '{}' ('qid iter docid rel' or 'qid docid grade' lines)", dir));
    }
    if (s.trec_qrels.size() + s.smart_qrels.size() > 1) {
        const std::string a = s.trec_qrels.empty() ? s.smart_qrels[0] : s.trec_qrels[0];
        const std::string b = s.trec_qrels.size() > 1 ? s.trec_qrels[1] : s.smart_qrels.back();
        return invalid_argument(fmt::format("more than one qrels file in '{}': '{}' and '{}'", dir, a, b));
    }
    // Three integer columns are SMART (Cleverdon grades); four are TREC.
    return s.smart_qrels.empty() ? load_qrels_text(s.trec_qrels[0]) : load_smart_qrels(s.smart_qrels[0]);
}

Result<Dataset> load_smart(const std::string& dir, const LoadOptions& options) {
    Dataset ds;
    ds.layout = Layout::kSmart;
    const Scan s = scan_dir(dir);
    QUIVER_ASSIGN_OR_RETURN(const std::string docs, one_of(s.smart_docs, dir, "SMART documents file (.I records with .T/.A/.B)"));
    if (!options.load_queries) {
        QUIVER_ASSIGN_OR_RETURN(ds.documents, load_smart_documents(docs));
        return ds;
    }
    QUIVER_ASSIGN_OR_RETURN(const std::string queries, one_of(s.smart_queries, dir, "SMART queries file (.I records with .W only)"));
    QUIVER_ASSIGN_OR_RETURN(ds.qrels, load_any_qrels(s, dir));
    QUIVER_ASSIGN_OR_RETURN(ds.queries, load_smart_queries(queries));
    if (options.load_documents) {
        QUIVER_ASSIGN_OR_RETURN(ds.documents, load_smart_documents(docs));
    }
    // Cranfield quirk: qrels number queries by position, not by their .I number.
    std::set<std::string> ids;
    for (const Query& q : ds.queries) ids.insert(q.id);
    bool all_known = true;
    bool all_ordinal = true;
    for (const auto& [qid, judged] : ds.qrels) {
        all_known = all_known && ids.count(qid) > 0;
        int n = 0;
        all_ordinal = all_ordinal && detail::parse_int(qid, n) && n >= 1 && static_cast<std::size_t>(n) <= ds.queries.size();
    }
    if (!all_known && all_ordinal) {
        for (std::size_t i = 0; i < ds.queries.size(); ++i) ds.queries[i].id = std::to_string(i + 1);
        ds.warnings.push_back(fmt::format("'{}': qrels number queries by position (1..{}), not by .I number; "
                                          "queries renumbered accordingly", s.smart_qrels.empty() ? s.trec_qrels[0] : s.smart_qrels[0],
                                          ds.queries.size()));
    }
    return ds;
}

Result<Dataset> load_trec(const std::string& dir, const LoadOptions& options) {
    Dataset ds;
    ds.layout = Layout::kTrec;
    const Scan s = scan_dir(dir);
    if (s.trec_docs.empty()) return not_found(fmt::format("no TREC document files (<DOC> records) in '{}'", dir));
    if (options.load_queries) {
        QUIVER_ASSIGN_OR_RETURN(const std::string topics, one_of(s.trec_topics, dir, "topics file (<top> records)"));
        QUIVER_ASSIGN_OR_RETURN(ds.qrels, load_any_qrels(s, dir));
        QUIVER_ASSIGN_OR_RETURN(ds.queries, load_trec_topics(topics));
    }
    if (options.load_documents) {
        for (const std::string& f : s.trec_docs) {
            QUIVER_ASSIGN_OR_RETURN(auto docs, load_trec_documents(f));
            for (Document& d : docs) ds.documents.push_back(std::move(d));
        }
    }
    return ds;
}

}  // namespace

const char* to_string(Layout layout) noexcept {
    switch (layout) {
        case Layout::kBeir: return "beir";
        case Layout::kTrec: return "trec";
        case Layout::kSmart: return "smart";
    }
    return "unknown";
}

Result<std::vector<Document>> load_beir_corpus(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    std::vector<Document> docs;
    const Status parsed = for_each_line(text, [&](std::size_t line_no, std::string_view line) -> Status {
        if (detail::trim(line).empty()) return ok_status();
        QUIVER_ASSIGN_OR_RETURN(json::Value v, parse_json_line(path, line_no, line));
        Document d;
        if (!json_id(v.find("_id"), d.id)) {
            return invalid_argument(fmt::format("{}:{}: missing or empty \"_id\"", path, line_no));
        }
        QUIVER_TRY(text_field(path, line_no, v, "title", false, d.title));
        QUIVER_TRY(text_field(path, line_no, v, "text", true, d.text));
        if (const json::Value* m = v.find("metadata"); m != nullptr && !m->is_null()) {
            if (!m->is_object()) {
                return invalid_argument(fmt::format("{}:{}: \"metadata\" must be an object, not {}", path, line_no,
                                                    m->type_name()));
            }
            d.metadata = *m;
        }
        docs.push_back(std::move(d));
        return ok_status();
    });
    QUIVER_TRY(parsed);
    if (docs.empty()) return invalid_argument(fmt::format("{}: no documents", path));
    return docs;
}

Result<std::vector<Query>> load_beir_queries(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    std::vector<Query> queries;
    const Status parsed = for_each_line(text, [&](std::size_t line_no, std::string_view line) -> Status {
        if (detail::trim(line).empty()) return ok_status();
        QUIVER_ASSIGN_OR_RETURN(json::Value v, parse_json_line(path, line_no, line));
        Query q;
        if (!json_id(v.find("_id"), q.id)) {
            return invalid_argument(fmt::format("{}:{}: missing or empty \"_id\"", path, line_no));
        }
        QUIVER_TRY(text_field(path, line_no, v, "text", true, q.text));
        queries.push_back(std::move(q));
        return ok_status();
    });
    QUIVER_TRY(parsed);
    return queries;
}

Result<Qrels> load_qrels_text(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    Qrels qrels;
    const Status parsed = for_each_line(text, [&](std::size_t line_no, std::string_view line) -> Status {
        std::string_view f[4];
        const std::size_t n = detail::split_ws(line, f, 4);
        if (n == 0) return ok_status();
        if (n != 3 && n != 4) {
            return invalid_argument(fmt::format("{}:{}: expected 'query-id corpus-id score' or 'qid iter docid rel', "
                                                "got {} columns", path, line_no, n > 4 ? "more than 4" : std::to_string(n)));
        }
        const std::string_view qid = f[0];
        const std::string_view doc = n == 3 ? f[1] : f[2];
        const std::string_view rel_s = n == 3 ? f[2] : f[3];
        int rel = 0;
        if (!detail::parse_int(rel_s, rel)) {
            if (line_no == 1 && n == 3) return ok_status();  // BEIR header "query-id corpus-id score"
            return invalid_argument(fmt::format("{}:{}: relevance '{}' is not an integer", path, line_no, rel_s));
        }
        qrels[std::string(qid)][std::string(doc)] = rel;
        return ok_status();
    });
    QUIVER_TRY(parsed);
    if (qrels.empty()) return invalid_argument(fmt::format("{}: no judgments", path));
    return qrels;
}

Result<Qrels> load_qrels_jsonl(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    Qrels qrels;
    const Status parsed = for_each_line(text, [&](std::size_t line_no, std::string_view line) -> Status {
        if (detail::trim(line).empty()) return ok_status();
        QUIVER_ASSIGN_OR_RETURN(json::Value v, parse_json_line(path, line_no, line));
        std::string qid, doc;
        if (!json_id(v.find("query-id"), qid) || !json_id(v.find("corpus-id"), doc)) {
            return invalid_argument(fmt::format("{}:{}: needs \"query-id\" and \"corpus-id\"", path, line_no));
        }
        const json::Value* s = v.find("score");
        if (s == nullptr || !s->is_number() || !s->is_integer()) {
            return invalid_argument(fmt::format("{}:{}: \"score\" must be an integer", path, line_no));
        }
        qrels[qid][doc] = static_cast<int>(s->as_int());
        return ok_status();
    });
    QUIVER_TRY(parsed);
    if (qrels.empty()) return invalid_argument(fmt::format("{}: no judgments", path));
    return qrels;
}

Result<Layout> detect_layout(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return not_found(fmt::format("dataset directory '{}' does not exist", dir));
    // queries.jsonl alone is enough: evaluating a run file needs no corpus.
    if (exists_file(dir + "/corpus.jsonl") || exists_file(dir + "/queries.jsonl")) return Layout::kBeir;
    const Scan s = scan_dir(dir);
    if (!s.trec_docs.empty()) return Layout::kTrec;
    if (!s.smart_docs.empty() || !s.smart_queries.empty()) return Layout::kSmart;
    return not_found(fmt::format("no known dataset layout in '{}': expected BEIR (corpus.jsonl, queries.jsonl, "
                                 "qrels/), TREC (<DOC> files, a <top> topics file, qrels) or SMART (.I records, "
                                 "qrels); files are recognised by their content, not their names", dir));
}

Status reconcile(Dataset& ds, bool check_documents) {
    std::unordered_set<std::string_view> doc_ids;
    if (check_documents) {
        doc_ids.reserve(ds.documents.size());
        for (const Document& d : ds.documents) {
            if (!doc_ids.insert(d.id).second) {
                return invalid_argument(fmt::format("document id '{}' appears more than once in the corpus", d.id));
            }
        }
    }
    std::unordered_set<std::string> query_ids;
    std::vector<Query> kept;
    std::size_t duplicate_queries = 0;
    std::size_t empty_queries = 0;
    for (Query& q : ds.queries) {
        if (!query_ids.insert(q.id).second) {
            ++duplicate_queries;
            continue;
        }
        if (ds.qrels.count(q.id) == 0) continue;
        if (detail::trim(q.text).empty()) ++empty_queries;
        kept.push_back(std::move(q));
    }
    std::size_t unknown_queries = 0;
    std::size_t unknown_docs = 0;
    std::string example_doc;
    std::set<std::string_view> kept_ids;
    for (const Query& q : kept) kept_ids.insert(q.id);
    for (auto it = ds.qrels.begin(); it != ds.qrels.end();) {
        if (kept_ids.count(it->first) == 0) {
            ++unknown_queries;
            it = ds.qrels.erase(it);
            continue;
        }
        if (check_documents) {
            for (const auto& [doc, rel] : it->second) {
                if (doc_ids.count(doc) == 0) {
                    ++unknown_docs;
                    if (example_doc.empty()) example_doc = doc;
                }
            }
        }
        ++it;
    }
    ds.queries = std::move(kept);
    if (duplicate_queries > 0) {
        ds.warnings.push_back(fmt::format("{} duplicate query ids ignored (first occurrence kept)", duplicate_queries));
    }
    if (unknown_queries > 0) {
        ds.warnings.push_back(fmt::format("{} judged queries have no query text and were dropped", unknown_queries));
    }
    if (unknown_docs > 0) {
        ds.warnings.push_back(fmt::format("{} judgments name documents not in the corpus (e.g. '{}'); they count as "
                                          "relevant but unretrievable, as in trec_eval", unknown_docs, example_doc));
    }
    if (empty_queries > 0) {
        ds.warnings.push_back(fmt::format("{} queries have empty text; they retrieve nothing and, like any query missing from the run, are left out of the averages (--all-queries counts them as 0)",
                                          empty_queries));
    }
    if (ds.queries.empty()) return invalid_argument("no query has both text and judgments");
    return ok_status();
}

Result<Dataset> load_dataset(const std::string& dir, const LoadOptions& options) {
    QUIVER_ASSIGN_OR_RETURN(const Layout layout, detect_layout(dir));
    Result<Dataset> ds = layout == Layout::kBeir    ? load_beir(dir, options)
                         : layout == Layout::kSmart ? load_smart(dir, options)
                                                    : load_trec(dir, options);
    if (!ds) return std::move(ds).error();
    QUIVER_TRY(reconcile(*ds, options.load_documents));
    return ds;
}

Result<Dataset> load_corpus(const std::string& dir) {
    QUIVER_ASSIGN_OR_RETURN(const Layout layout, detect_layout(dir));
    LoadOptions options;
    options.load_queries = false;
    Result<Dataset> ds = layout == Layout::kBeir    ? load_beir(dir, options)
                         : layout == Layout::kSmart ? load_smart(dir, options)
                                                    : load_trec(dir, options);
    if (!ds) return std::move(ds).error();
    std::unordered_set<std::string_view> ids;
    for (const Document& d : ds->documents) {
        if (!ids.insert(d.id).second) {
            return invalid_argument(fmt::format("document id '{}' appears more than once in the corpus", d.id));
        }
    }
    return ds;
}

}  // namespace quiver::eval
