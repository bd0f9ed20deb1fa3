#include "quiver/sparse/sparse_vector.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <unordered_set>

#include "quiver/core/json.h"
#include "quiver/storage/file_format.h"

namespace quiver::sparse {

Status canonicalize(SparseVector& v, std::string_view what) {
    if (v.terms.size() != v.weights.size())
        return invalid_argument(fmt::format("{}: {} terms but {} weights", what, v.terms.size(), v.weights.size()));
    const std::size_t n = v.terms.size();
    for (std::size_t i = 0; i < n; ++i) {
        const float w = v.weights[i];
        if (!std::isfinite(w))
            return invalid_argument(fmt::format("{}: term {} has a non-finite weight", what, v.terms[i]));
        if (w < 0.0f)
            return invalid_argument(
                fmt::format("{}: term {} has negative weight {} (learned-sparse weights must be >= 0)", what,
                            v.terms[i], w));
    }
    bool sorted = true;
    for (std::size_t i = 1; i < n && sorted; ++i) sorted = v.terms[i - 1] < v.terms[i];
    if (!sorted) {
        std::vector<std::uint32_t> perm(n);
        std::iota(perm.begin(), perm.end(), 0u);
        std::sort(perm.begin(), perm.end(), [&](std::uint32_t a, std::uint32_t b) { return v.terms[a] < v.terms[b]; });
        SparseVector s;
        s.terms.resize(n);
        s.weights.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            s.terms[i] = v.terms[perm[i]];
            s.weights[i] = v.weights[perm[i]];
        }
        v = std::move(s);
    }
    for (std::size_t i = 1; i < n; ++i)
        if (v.terms[i - 1] == v.terms[i])
            return invalid_argument(fmt::format("{}: term {} appears twice", what, v.terms[i]));
    std::size_t out = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (v.weights[i] == 0.0f) continue;
        v.terms[out] = v.terms[i];
        v.weights[out] = v.weights[i];
        ++out;
    }
    v.terms.resize(out);
    v.weights.resize(out);
    return {};
}

float dot(SparseVectorView a, SparseVectorView b) noexcept {
    float s = 0.0f;
    std::size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        if (a.terms[i] < b.terms[j]) ++i;
        else if (b.terms[j] < a.terms[i]) ++j;
        else s += a.weights[i++] * b.weights[j++];
    }
    return s;
}

namespace {

Result<TermId> parse_integer_term(std::string_view key) {
    std::uint64_t v = 0;
    const auto r = std::from_chars(key.data(), key.data() + key.size(), v);
    if (r.ec != std::errc() || r.ptr != key.data() + key.size() || key.empty() || v >= (1ull << 31))
        return invalid_argument(fmt::format("term '{}' is not an integer id in [0, 2^31)", key));
    return static_cast<TermId>(v);
}

}  // namespace

Result<TermId> Vocabulary::add(std::string_view key) {
    if (mode_ == TermMode::kInteger) {
        QUIVER_ASSIGN_OR_RETURN(TermId id, parse_integer_term(key));
        if (id + 1 > dim_) dim_ = id + 1;
        return id;
    }
    auto it = ids_.find(std::string(key));
    if (it != ids_.end()) return it->second;
    const auto id = static_cast<TermId>(strings_.size());
    strings_.emplace_back(key);
    ids_.emplace(strings_.back(), id);
    dim_ = static_cast<std::uint32_t>(strings_.size());
    return id;
}

Result<TermId> Vocabulary::find(std::string_view key) const {
    if (mode_ == TermMode::kInteger) {
        auto id = parse_integer_term(key);
        if (!id || *id >= dim_) return not_found(fmt::format("unknown term '{}'", key));
        return *id;
    }
    auto it = ids_.find(std::string(key));
    if (it == ids_.end()) return not_found(fmt::format("unknown term '{}'", key));
    return it->second;
}

std::string Vocabulary::key(TermId id) const {
    if (mode_ == TermMode::kInteger || id >= strings_.size()) return std::to_string(id);
    return strings_[id];
}

Result<Vocabulary> Vocabulary::from_strings(std::vector<std::string> strings) {
    Vocabulary v(TermMode::kString);
    v.ids_.reserve(strings.size());
    for (std::size_t i = 0; i < strings.size(); ++i)
        if (!v.ids_.emplace(strings[i], static_cast<TermId>(i)).second)
            return data_loss(fmt::format("vocabulary lists term '{}' twice", strings[i]));
    v.strings_ = std::move(strings);
    v.dim_ = static_cast<std::uint32_t>(v.strings_.size());
    return v;
}

Status SparseCollection::add(std::string id, SparseVector v) {
    QUIVER_TRY(canonicalize(v, fmt::format("document '{}'", id)));
    append_canonical(std::move(id), v.view());
    return {};
}

void SparseCollection::append_canonical(std::string id, SparseVectorView v) {
    terms.insert(terms.end(), v.terms.begin(), v.terms.end());
    weights.insert(weights.end(), v.weights.begin(), v.weights.end());
    offsets.push_back(terms.size());
    ids.push_back(std::move(id));
}

namespace {

Result<std::string> id_of(const json::Value& obj) {
    for (const char* key : {"id", "_id", "docid"}) {
        const json::Value* v = obj.find(key);
        if (!v) continue;
        if (v->is_string()) return v->as_string();
        if (v->is_integer()) return std::to_string(v->as_int());
        return invalid_argument(fmt::format("\"{}\" must be a string or an integer, not {}", key, v->type_name()));
    }
    return invalid_argument("missing \"id\"");
}

// Parses `"vector": {...}` of one JSONL record. `add_terms` grows the vocabulary (documents); otherwise
// unknown terms are dropped and counted (queries).
template <class Lookup>
Status parse_vector(const json::Value& obj, Lookup&& lookup, SparseVector& out, std::size_t& unknown) {
    const json::Value* vec = obj.find("vector");
    if (!vec) return invalid_argument("missing \"vector\"");
    if (!vec->is_object()) return invalid_argument(fmt::format("\"vector\" must be an object, not {}", vec->type_name()));
    std::unordered_set<std::string_view> seen;
    for (const auto& [key, val] : vec->as_object()) {
        if (!val.is_number())
            return invalid_argument(fmt::format("weight of term '{}' must be a number, not {}", key, val.type_name()));
        if (!seen.insert(key).second) return invalid_argument(fmt::format("term '{}' appears twice", key));
        const double w = val.as_number();
        if (!(w >= 0.0) || !std::isfinite(w))
            return invalid_argument(fmt::format("term '{}' has invalid weight {} (weights must be finite and >= 0)",
                                                key, w));
        auto id = lookup(key);
        if (!id) {
            if (id.error().code() == ErrorCode::kNotFound) {
                ++unknown;
                continue;
            }
            return std::move(id).error();
        }
        out.terms.push_back(*id);
        out.weights.push_back(static_cast<float>(w));
    }
    return {};
}

template <class Fn>
Status for_each_line(std::string_view text, std::string_view source, Fn&& fn) {
    std::size_t pos = 0, line_no = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
        Status st = fn(line);
        if (!st) return std::move(st).error().with_context(fmt::format("{}:{}", source, line_no));
    }
    return {};
}

}  // namespace

Result<SparseCollection> parse_collection_jsonl(std::string_view text, std::string_view source, Vocabulary vocab) {
    SparseCollection c;
    c.vocab = std::move(vocab);
    std::unordered_set<std::string> seen_ids;
    QUIVER_TRY(for_each_line(text, source, [&](std::string_view line) -> Status {
        QUIVER_ASSIGN_OR_RETURN(json::Value obj, json::parse(line));
        if (!obj.is_object()) return invalid_argument("each line must be a JSON object");
        QUIVER_ASSIGN_OR_RETURN(std::string id, id_of(obj));
        if (!seen_ids.insert(id).second) return invalid_argument(fmt::format("duplicate document id '{}'", id));
        SparseVector v;
        std::size_t unknown = 0;
        QUIVER_TRY(parse_vector(obj, [&](std::string_view k) { return c.vocab.add(k); }, v, unknown));
        return c.add(std::move(id), std::move(v));
    }));
    return c;
}

Result<SparseCollection> read_collection_jsonl(const std::string& path, Vocabulary vocab) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    return parse_collection_jsonl(text, path, std::move(vocab));
}

Result<QuerySet> parse_queries(std::string_view text, std::string_view source, const Vocabulary& vocab) {
    QuerySet qs;
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    const bool jsonl = first != std::string_view::npos && text[first] == '{';
    auto lookup = [&](std::string_view k) { return vocab.find(k); };
    QUIVER_TRY(for_each_line(text, source, [&](std::string_view line) -> Status {
        SparseVector v;
        std::string id;
        if (jsonl) {
            QUIVER_ASSIGN_OR_RETURN(json::Value obj, json::parse(line));
            if (!obj.is_object()) return invalid_argument("each line must be a JSON object");
            QUIVER_ASSIGN_OR_RETURN(id, id_of(obj));
            QUIVER_TRY(parse_vector(obj, lookup, v, qs.unknown_terms));
        } else {
            const std::size_t tab = line.find('\t');
            if (tab == std::string_view::npos) return invalid_argument("expected 'qid<TAB>tokens'");
            id = std::string(line.substr(0, tab));
            std::unordered_map<TermId, double> acc;
            std::unordered_set<std::string_view> weighted;
            std::string_view rest = line.substr(tab + 1);
            std::size_t p = 0;
            while (p < rest.size()) {
                while (p < rest.size() && (rest[p] == ' ' || rest[p] == '\t')) ++p;
                std::size_t e = p;
                while (e < rest.size() && rest[e] != ' ' && rest[e] != '\t') ++e;
                if (e == p) break;
                std::string_view tok = rest.substr(p, e - p);
                p = e;
                double w = 1.0;
                const std::size_t colon = tok.rfind(':');
                if (colon != std::string_view::npos && colon > 0) {
                    const std::string num(tok.substr(colon + 1));
                    char* end = nullptr;
                    w = std::strtod(num.c_str(), &end);
                    if (num.empty() || end != num.c_str() + num.size())
                        return invalid_argument(fmt::format("token '{}': weight is not a number", tok));
                    tok = tok.substr(0, colon);
                    if (!weighted.insert(tok).second)
                        return invalid_argument(fmt::format("term '{}' appears twice", tok));
                }
                if (!(w >= 0.0) || !std::isfinite(w))
                    return invalid_argument(fmt::format("term '{}' has invalid weight {}", tok, w));
                auto tid = vocab.find(tok);
                if (!tid) {
                    ++qs.unknown_terms;
                    continue;
                }
                acc[*tid] += w;
            }
            for (const auto& [t, w] : acc) {
                v.terms.push_back(t);
                v.weights.push_back(static_cast<float>(w));
            }
        }
        QUIVER_TRY(canonicalize(v, fmt::format("query '{}'", id)));
        qs.ids.push_back(std::move(id));
        qs.vectors.push_back(std::move(v));
        return {};
    }));
    return qs;
}

Result<QuerySet> read_queries(const std::string& path, const Vocabulary& vocab) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    return parse_queries(text, path, vocab);
}

namespace {

void append_record(std::string& out, std::string_view id, SparseVectorView v, const Vocabulary& vocab) {
    out += "{\"id\":";
    json::append_quoted(out, id);
    out += ",\"contents\":\"\",\"vector\":{";
    for (std::size_t j = 0; j < v.size(); ++j) {
        if (j) out += ',';
        json::append_quoted(out, vocab.key(v.terms[j]));
        out += ':';
        json::append_number(out, static_cast<double>(v.weights[j]));
    }
    out += "}}\n";
}

Status write_all(const std::string& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return errno_error("creating", path);
    const std::size_t n = std::fwrite(text.data(), 1, text.size(), f);
    const bool bad = n != text.size() || std::ferror(f) != 0;
    if (std::fclose(f) != 0 || bad) return errno_error("writing", path);
    return {};
}

}  // namespace

Status write_collection_jsonl(const std::string& path, const SparseCollection& c) {
    std::string out;
    for (std::size_t i = 0; i < c.size(); ++i) append_record(out, c.ids[i], c.row(i), c.vocab);
    return write_all(path, out);
}

Status write_queries_jsonl(const std::string& path, const QuerySet& q, const Vocabulary& vocab) {
    std::string out;
    for (std::size_t i = 0; i < q.size(); ++i) append_record(out, q.ids[i], q.vectors[i].view(), vocab);
    return write_all(path, out);
}

namespace {

template <class RowFn>
SparseStats stats_of(std::size_t n, RowFn&& row) {
    SparseStats s;
    s.vectors = n;
    s.min_nnz = n ? 1e300 : 0;
    std::unordered_set<TermId> terms;
    double wsum = 0, mass = 0;
    std::vector<float> tmp;
    for (std::size_t i = 0; i < n; ++i) {
        SparseVectorView v = row(i);
        s.nnz += v.size();
        s.min_nnz = std::min(s.min_nnz, static_cast<double>(v.size()));
        s.max_nnz = std::max(s.max_nnz, static_cast<double>(v.size()));
        tmp.assign(v.weights.begin(), v.weights.end());
        double total = 0;
        for (float w : tmp) {
            total += w;
            s.max_weight = std::max(s.max_weight, static_cast<double>(w));
        }
        wsum += total;
        if (!tmp.empty() && total > 0) {
            const std::size_t top = std::max<std::size_t>(1, tmp.size() / 10);
            std::nth_element(tmp.begin(), tmp.begin() + static_cast<std::ptrdiff_t>(top - 1), tmp.end(),
                             std::greater<float>());
            double t = 0;
            for (std::size_t j = 0; j < top; ++j) t += tmp[j];
            mass += t / total;
        }
        if (i < 200000) terms.insert(v.terms.begin(), v.terms.end());
    }
    s.mean_nnz = n ? static_cast<double>(s.nnz) / static_cast<double>(n) : 0;
    s.mean_weight = s.nnz ? wsum / static_cast<double>(s.nnz) : 0;
    s.top10pct_mass = n ? mass / static_cast<double>(n) : 0;
    s.distinct_terms = terms.size();
    return s;
}

}  // namespace

SparseStats compute_stats(const SparseCollection& c) {
    return stats_of(c.size(), [&](std::size_t i) { return c.row(i); });
}

SparseStats compute_stats(const std::vector<SparseVector>& vs) {
    return stats_of(vs.size(), [&](std::size_t i) { return vs[i].view(); });
}

}  // namespace quiver::sparse
