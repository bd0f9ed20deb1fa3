#include "quiver/sparse/sparse_vector_text.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "quiver/core/json.h"
#include "quiver/sparse/exact_sparse.h"
#include "quiver/storage/file_format.h"

namespace quiver::sparse {

namespace {

const std::unordered_set<std::string_view>& stopwords() {
    static const std::unordered_set<std::string_view> s = {
        "a",    "an",   "and",  "are",   "as",    "at",   "be",   "but",  "by",   "for",  "if",
        "in",   "into", "is",   "it",    "no",    "not",  "of",   "on",   "or",   "such", "that",
        "the",  "their", "then", "there", "these", "they", "this", "to",   "was",  "will", "with"};
    return s;
}

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

}  // namespace

std::vector<std::string> simple_tokenize(std::string_view text) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && !is_alnum(text[i])) ++i;
        std::size_t j = i;
        while (j < text.size() && is_alnum(text[j])) ++j;
        if (j - i >= 2) {
            std::string tok(text.substr(i, j - i));
            for (char& c : tok)
                if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            if (!stopwords().count(tok)) out.push_back(std::move(tok));
        }
        i = j;
    }
    return out;
}

namespace {

// Whole file, gunzipped when it is gzip (zlib reads plain files unchanged).
Result<std::string> read_maybe_gzip(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) return not_found(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
    std::string out;
    char buf[1 << 16];
    int n = 0;
    while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    // A truncated stream ends reads with 0 and leaves Z_BUF_ERROR, so the error state is checked either way.
    int err = Z_OK;
    const char* msg = gzerror(f, &err);
    const std::string what = msg ? msg : "";
    gzclose(f);
    if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
        return invalid_argument(fmt::format("'{}': cannot decompress: {}", path, what));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

template <class Fn>
Status for_each_line(const std::string& text, Fn&& fn) {
    std::size_t pos = 0, line_no = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        QUIVER_TRY(fn(++line_no, std::string_view(text.data() + pos, nl - pos)));
        pos = nl + 1;
    }
    return {};
}

Result<std::vector<TextRecord>> parse_jsonl(const std::string& path, const std::string& text, std::string_view prefix) {
    std::vector<TextRecord> out;
    QUIVER_TRY(for_each_line(text, [&](std::size_t line_no, std::string_view line) -> Status {
        if (trim(line).empty()) return {};
        auto v = json::parse(line);
        if (!v) return std::move(v).error().with_context(fmt::format("{}:{}", path, line_no));
        const json::Value* id = v->find("_id");
        if (!id) id = v->find("id");
        if (!id || !(id->is_string() || id->is_integer()))
            return invalid_argument(fmt::format("{}:{}: missing string \"_id\"", path, line_no));
        TextRecord r;
        r.id = std::string(prefix) + (id->is_string() ? id->as_string() : std::to_string(id->as_int()));
        if (const json::Value* t = v->find("title"); t && t->is_string()) r.text = t->as_string();
        if (const json::Value* t = v->find("text"); t && t->is_string()) {
            if (!r.text.empty()) r.text += ' ';
            r.text += t->as_string();
        }
        out.push_back(std::move(r));
        return {};
    }));
    return out;
}

// SMART `.I n` records; `.T` and `.W` lines are the text, other fields are skipped.
Result<std::vector<TextRecord>> parse_smart(const std::string& path, const std::string& text, std::string_view prefix) {
    std::vector<TextRecord> out;
    char field = 0;
    QUIVER_TRY(for_each_line(text, [&](std::size_t line_no, std::string_view line) -> Status {
        if (line.size() >= 2 && line[0] == '.' && line[1] >= 'A' && line[1] <= 'Z' &&
            (line.size() == 2 || line[2] == ' ' || line[2] == '\t' || line[2] == '\r')) {
            field = line[1];
            const std::string_view rest = trim(line.substr(2));
            if (field == 'I') {
                if (rest.empty()) return invalid_argument(fmt::format("{}:{}: '.I' needs a record id", path, line_no));
                out.push_back({std::string(prefix) + std::string(rest), {}});
                return {};
            }
            if (out.empty()) return invalid_argument(fmt::format("{}:{}: field '.{}' before the first '.I'", path, line_no, field));
            line = rest;
        } else if (out.empty()) {
            if (trim(line).empty()) return {};
            return invalid_argument(fmt::format("{}:{}: text before the first '.I' record", path, line_no));
        }
        if ((field == 'T' || field == 'W') && !trim(line).empty()) {
            std::string& t = out.back().text;
            if (!t.empty()) t += ' ';
            t += trim(line);
        }
        return {};
    }));
    return out;
}

Result<std::vector<TextRecord>> parse_tsv(const std::string& path, const std::string& text, std::string_view prefix) {
    std::vector<TextRecord> out;
    QUIVER_TRY(for_each_line(text, [&](std::size_t line_no, std::string_view line) -> Status {
        if (trim(line).empty()) return {};
        const std::size_t tab = line.find('\t');
        if (tab == std::string_view::npos) return invalid_argument(fmt::format("{}:{}: expected id<TAB>text", path, line_no));
        const std::string_view id = trim(line.substr(0, tab));
        if (id.empty()) return invalid_argument(fmt::format("{}:{}: empty id", path, line_no));
        out.push_back({std::string(prefix) + std::string(id), std::string(trim(line.substr(tab + 1)))});
        return {};
    }));
    return out;
}

}  // namespace

Result<std::vector<TextRecord>> read_text_jsonl(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    return parse_jsonl(path, text, {});
}

Result<std::vector<TextRecord>> read_text_records(const std::string& path, std::string_view id_prefix) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, read_maybe_gzip(path));
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return invalid_argument(fmt::format("{}: no text records", path));
    Result<std::vector<TextRecord>> r = text[first] == '{' ? parse_jsonl(path, text, id_prefix)
                                        : text.compare(first, 2, ".I") == 0 ? parse_smart(path, text, id_prefix)
                                                                            : parse_tsv(path, text, id_prefix);
    if (r && r->empty()) return invalid_argument(fmt::format("{}: no text records", path));
    return r;
}

std::string text_id_prefix(std::string_view path) {
    const std::size_t slash = path.find_last_of('/');
    std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
    for (std::string_view ext : {".gz", ".tsv", ".jsonl", ".txt"})
        if (base.size() > ext.size() && base.substr(base.size() - ext.size()) == ext) base.remove_suffix(ext.size());
    return std::string(base) + "/";
}

Result<SparseCollection> bm25_impacts(const std::vector<TextRecord>& docs, const ImpactParams& p) {
    if (docs.empty()) return invalid_argument("bm25 impacts: empty corpus");
    if (!(p.k1 > 0.0f) || !(p.b >= 0.0f && p.b <= 1.0f)) return invalid_argument("bm25 impacts: need k1 > 0 and b in [0, 1]");
    Vocabulary vocab(TermMode::kString);
    std::vector<std::unordered_map<TermId, std::uint32_t>> tfs(docs.size());
    std::vector<std::uint32_t> df;
    std::vector<double> lengths(docs.size());
    double total_len = 0;
    for (std::size_t d = 0; d < docs.size(); ++d) {
        const std::vector<std::string> toks = simple_tokenize(docs[d].text);
        for (const std::string& t : toks) {
            QUIVER_ASSIGN_OR_RETURN(TermId id, vocab.add(t));
            if (id >= df.size()) df.resize(id + 1, 0);
            if (tfs[d][id]++ == 0) ++df[id];
        }
        lengths[d] = static_cast<double>(toks.size());
        total_len += lengths[d];
    }
    const double n = static_cast<double>(docs.size());
    const double avgdl = std::max(1.0, total_len / n);
    SparseCollection c;
    c.vocab = std::move(vocab);
    for (std::size_t d = 0; d < docs.size(); ++d) {
        SparseVector v;
        for (const auto& [t, tf] : tfs[d]) {
            const double idf = std::log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5));
            const double norm = p.k1 * (1.0 - p.b + p.b * lengths[d] / avgdl);
            v.terms.push_back(t);
            v.weights.push_back(static_cast<float>(idf * tf * (p.k1 + 1.0) / (tf + norm)));
        }
        QUIVER_TRY(c.add(docs[d].id, std::move(v)));
    }
    return c;
}

Result<QuerySet> expanded_queries(const SparseCollection& impacts, const std::vector<TextRecord>& queries,
                                  const ImpactParams& p) {
    if (!(p.original_weight >= 0.0f && p.original_weight <= 1.0f))
        return invalid_argument("expanded queries: original_weight must be in [0, 1]");
    std::vector<std::uint32_t> df(impacts.dim(), 0);
    for (TermId t : impacts.terms) ++df[t];
    std::vector<float> l1(impacts.size(), 0.0f);
    for (std::size_t d = 0; d < impacts.size(); ++d)
        for (float w : impacts.row(d).weights) l1[d] += w;
    QUIVER_ASSIGN_OR_RETURN(ExactSparseIndex exact, ExactSparseIndex::build(impacts));
    const double n = static_cast<double>(impacts.size());
    QuerySet out;
    for (const TextRecord& q : queries) {
        std::unordered_map<TermId, float> q0;
        for (const std::string& tok : simple_tokenize(q.text)) {
            auto id = impacts.vocab.find(tok);
            if (!id) {
                ++out.unknown_terms;
                continue;
            }
            q0[*id] += static_cast<float>(std::log(1.0 + (n - df[*id] + 0.5) / (df[*id] + 0.5)));
        }
        SparseVector v0;
        float max0 = 0;
        for (const auto& [t, w] : q0) max0 = std::max(max0, w);
        for (const auto& [t, w] : q0) {
            v0.terms.push_back(t);
            v0.weights.push_back(w / max0);
        }
        QUIVER_TRY(canonicalize(v0, fmt::format("query '{}'", q.id)));
        std::unordered_map<TermId, float> mixed;
        for (std::size_t j = 0; j < v0.size(); ++j) mixed[v0.terms[j]] += p.original_weight * v0.weights[j];
        if (!v0.terms.empty() && p.expansion_terms > 0 && p.feedback_docs > 0) {
            const std::vector<SparseHit> top = exact.search(v0.view(), p.feedback_docs);
            std::unordered_map<TermId, float> fb;
            for (const SparseHit& h : top) {
                const SparseVectorView dv = impacts.row(h.doc);
                const float scale = h.score / std::max(1e-9f, l1[h.doc]);
                for (std::size_t j = 0; j < dv.size(); ++j) fb[dv.terms[j]] += dv.weights[j] * scale;
            }
            std::vector<std::pair<float, TermId>> ranked;
            for (const auto& [t, w] : fb)
                if (!q0.count(t)) ranked.emplace_back(w, t);
            const std::size_t e = std::min(p.expansion_terms, ranked.size());
            std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(e), ranked.end(),
                              [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
            const float fmax = e ? ranked[0].first : 1.0f;
            for (std::size_t i = 0; i < e; ++i) mixed[ranked[i].second] += (1.0f - p.original_weight) * ranked[i].first / fmax;
        }
        SparseVector v;
        for (const auto& [t, w] : mixed) {
            v.terms.push_back(t);
            v.weights.push_back(w);
        }
        QUIVER_TRY(canonicalize(v, fmt::format("query '{}'", q.id)));
        out.ids.push_back(q.id);
        out.vectors.push_back(std::move(v));
    }
    return out;
}

}  // namespace quiver::sparse
