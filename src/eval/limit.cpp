// LIMIT generation and the free-embedding experiment (see limit.h).
#include "quiver/eval/limit.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <unordered_set>

#include "eval/dataset_internal.h"
#include "quiver/core/json.h"
#include "quiver/storage/file_format.h"

namespace quiver::eval {
namespace {

// splitmix64: a tiny generator whose sequence is the same on every platform (std:: distributions are not).
struct Rng {
    std::uint64_t state;
    std::uint64_t next() noexcept {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::size_t below(std::size_t n) noexcept {  // uniform in [0, n), Lemire's multiply-high
        return static_cast<std::size_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
    }
    double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    template <class T>
    void shuffle(std::vector<T>& v) noexcept {
        for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
    }
};

std::vector<std::string> lower_words(std::string_view s) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (std::isalnum(static_cast<unsigned char>(c))) {
            cur.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        } else if (!cur.empty()) {
            out.push_back(std::move(cur));
            cur.clear();
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

double binomial(std::size_t n, std::size_t k) {
    double r = 1.0;
    for (std::size_t i = 1; i <= k; ++i) r = r * static_cast<double>(n - k + i) / static_cast<double>(i);
    return r;
}

// The first `count` k-subsets of 0..n-1 in lexicographic order.
std::vector<std::vector<std::size_t>> first_subsets(std::size_t n, std::size_t k, std::size_t count) {
    std::vector<std::vector<std::size_t>> out;
    std::vector<std::size_t> c(k);
    for (std::size_t i = 0; i < k; ++i) c[i] = i;
    while (out.size() < count) {
        out.push_back(c);
        std::size_t i = k;
        while (i > 0 && c[i - 1] == n - k + i - 1) --i;
        if (i == 0) break;
        ++c[i - 1];
        for (std::size_t j = i; j < k; ++j) c[j] = c[j - 1] + 1;
    }
    return out;
}

const char* const kSyllables[] = {"ba", "be", "bi", "bo", "da", "de", "di", "do", "fa", "fe", "ga", "gi", "go", "ka",
                                  "ke", "ki", "ko", "la", "le", "li", "lo", "lu", "ma", "me", "mi", "mo", "na", "ne",
                                  "ni", "no", "pa", "pe", "ra", "re", "ri", "ro", "sa", "se", "si", "so", "ta", "te",
                                  "ti", "to", "va", "ve", "vi", "za", "ze", "zo", "bran", "dor", "len", "mar", "ton",
                                  "wyn", "rick", "son", "ley", "ford"};

std::string syllable_name(Rng& rng, std::size_t syllables) {
    std::string s;
    for (std::size_t i = 0; i < syllables; ++i) s += kSyllables[rng.below(std::size(kSyllables))];
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return s;
}

Status write_whole(const std::string& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return errno_error("writing", path);
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok) return errno_error("writing", path);
    return ok_status();
}

}  // namespace

Result<LimitVocabulary> load_limit_vocabulary(const std::string& limit_queries_jsonl, const std::string& vocab_file,
                                              std::size_t filler) {
    QUIVER_ASSIGN_OR_RETURN(auto queries, load_beir_queries(limit_queries_jsonl));
    LimitVocabulary v;
    std::set<std::string> seen;
    std::unordered_set<std::string> query_words;
    for (const Query& q : queries) {
        const std::string_view t = q.text;
        if (t.rfind("Who likes ", 0) != 0 || t.size() < 12 || t.back() != '?') {
            return invalid_argument(fmt::format("{}: query '{}' is not \"Who likes X?\"", limit_queries_jsonl, q.id));
        }
        std::string attr(t.substr(10, t.size() - 11));
        if (!seen.insert(attr).second) continue;
        for (auto& w : lower_words(attr)) query_words.insert(std::move(w));
        v.query_attributes.push_back(std::move(attr));
    }
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(vocab_file));
    std::size_t rank = 0;
    const Status st = detail::for_each_line(text, [&](std::size_t, std::string_view line) -> Status {
        ++rank;
        const std::string_view w = detail::trim(line);
        if (rank < 2000 || w.size() < 4 || v.filler_attributes.size() >= filler) return ok_status();
        for (char c : w) {
            if (c < 'a' || c > 'z') return ok_status();
        }
        if (query_words.count(std::string(w)) > 0) return ok_status();
        std::string a(w);
        a[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(a[0])));
        v.filler_attributes.push_back(std::move(a));
        return ok_status();
    });
    QUIVER_TRY(st);
    return v;
}

Result<Dataset> generate_limit(const LimitOptions& o, const LimitVocabulary& vocabulary) {
    const std::size_t k = o.relevant_per_query;
    if (k == 0 || o.num_queries == 0) return invalid_argument("LIMIT needs at least one query and k >= 1");
    std::size_t n = k;
    while (binomial(n, k) < static_cast<double>(o.num_queries)) ++n;
    if (o.num_docs < n) {
        return invalid_argument(fmt::format("{} queries with k = {} need at least {} documents", o.num_queries, k, n));
    }
    if (vocabulary.query_attributes.size() < o.num_queries) {
        return invalid_argument(fmt::format("{} queries need {} query attributes; the vocabulary has {}", o.num_queries,
                                            o.num_queries, vocabulary.query_attributes.size()));
    }
    Rng rng{o.seed};
    std::vector<std::string> query_attrs = vocabulary.query_attributes;
    rng.shuffle(query_attrs);
    // Names: 2 x num_docs candidates, shuffled, first occurrences kept.
    std::vector<std::string> candidates;
    for (std::size_t i = 0; i < 2 * o.num_docs; ++i) {
        candidates.push_back(syllable_name(rng, 2 + rng.below(2)) + " " + syllable_name(rng, 2 + rng.below(2)));
    }
    rng.shuffle(candidates);
    std::vector<std::string> names;
    std::unordered_set<std::string> used;
    for (auto& c : candidates) {
        if (names.size() == o.num_docs) break;
        if (used.insert(c).second) names.push_back(std::move(c));
    }
    if (names.size() < o.num_docs) return invalid_argument("could not draw enough distinct names");
    const auto subsets = first_subsets(n, k, o.num_queries);
    std::vector<std::vector<std::string>> attrs(o.num_docs);
    Dataset ds;
    ds.layout = Layout::kBeir;
    for (std::size_t q = 0; q < subsets.size(); ++q) {
        const std::string qid = "query_" + std::to_string(q);
        ds.queries.push_back({qid, "Who likes " + query_attrs[q] + "?"});
        for (std::size_t d : subsets[q]) {
            attrs[d].push_back(query_attrs[q]);
            ds.qrels[qid][names[d]] = 1;
        }
    }
    std::size_t most = 0;
    for (std::size_t d = 0; d < n; ++d) most = std::max(most, attrs[d].size());
    if (most > o.items_per_doc) {
        return invalid_argument(fmt::format("a relevant document carries {} query attributes, more than --items {}", most,
                                            o.items_per_doc));
    }
    if (vocabulary.filler_attributes.size() < o.items_per_doc) {
        return invalid_argument(fmt::format("{} attributes per document need as many filler attributes; the vocabulary "
                                            "has {}", o.items_per_doc, vocabulary.filler_attributes.size()));
    }
    const auto& filler = vocabulary.filler_attributes;
    for (std::size_t d = 0; d < o.num_docs; ++d) {
        std::unordered_set<std::size_t> picked;
        while (attrs[d].size() < o.items_per_doc) {
            const std::size_t i = rng.below(filler.size());
            if (picked.insert(i).second) attrs[d].push_back(filler[i]);
        }
        rng.shuffle(attrs[d]);
        std::string text = names[d] + " likes ";
        for (std::size_t i = 0; i < attrs[d].size(); ++i) {
            if (i > 0) text += i + 1 == attrs[d].size() ? " and " : ", ";
            text += attrs[d][i];
        }
        text += ".";
        ds.documents.push_back({names[d], "", std::move(text), json::Value()});
    }
    return ds;
}

Status write_limit(const Dataset& ds, const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return invalid_argument(fmt::format("cannot create '{}': {}", dir, ec.message()));
    std::string corpus, queries, qrels;
    for (const Document& d : ds.documents) {
        json::Value v = json::Value::object();
        v.set("_id", json::Value::string(d.id));
        v.set("title", json::Value::string(d.title));
        v.set("text", json::Value::string(d.text));
        corpus += json::dump(v) + "\n";
    }
    for (const Query& q : ds.queries) {
        json::Value v = json::Value::object();
        v.set("_id", json::Value::string(q.id));
        v.set("text", json::Value::string(q.text));
        queries += json::dump(v) + "\n";
        for (const auto& [doc, rel] : ds.qrels.at(q.id)) {
            json::Value r = json::Value::object();
            r.set("query-id", json::Value::string(q.id));
            r.set("corpus-id", json::Value::string(doc));
            r.set("score", json::Value::number(rel));
            qrels += json::dump(r) + "\n";
        }
    }
    QUIVER_TRY(write_whole(dir + "/corpus.jsonl", corpus));
    QUIVER_TRY(write_whole(dir + "/queries.jsonl", queries));
    QUIVER_TRY(write_whole(dir + "/qrels.jsonl", qrels));
    return ok_status();
}

namespace {

bool solves_from(std::size_t n, std::size_t dim, const FreeEmbeddingOptions& o, std::uint64_t seed) {
    const auto pairs = first_subsets(n, 2, static_cast<std::size_t>(binomial(n, 2)));
    const std::size_t m = pairs.size();
    Rng rng{seed * 0x100000001b3ULL + n * 131 + dim};
    // Parameters: queries (m x dim) then documents (n x dim), Gaussian-ish start, normalised.
    std::vector<double> x((m + n) * dim), g(x.size()), adam_m(x.size(), 0.0), adam_v(x.size(), 0.0);
    for (double& v : x) v = rng.unit() * 2.0 - 1.0;
    auto normalise = [&]() {
        for (std::size_t r = 0; r < m + n; ++r) {
            double s = 0.0;
            for (std::size_t c = 0; c < dim; ++c) s += x[r * dim + c] * x[r * dim + c];
            const double inv = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
            for (std::size_t c = 0; c < dim; ++c) x[r * dim + c] *= inv;
        }
    };
    normalise();
    std::vector<double> s(n), p(n);
    auto solved = [&]() {
        for (std::size_t q = 0; q < m; ++q) {
            const double* qv = &x[q * dim];
            double worst_pos = 1e300, best_neg = -1e300;
            for (std::size_t d = 0; d < n; ++d) {
                double dot = 0.0;
                for (std::size_t c = 0; c < dim; ++c) dot += qv[c] * x[(m + d) * dim + c];
                if (d == pairs[q][0] || d == pairs[q][1]) {
                    worst_pos = std::min(worst_pos, dot);
                } else {
                    best_neg = std::max(best_neg, dot);
                }
            }
            if (!(worst_pos > best_neg)) return false;
        }
        return true;
    };
    double best_loss = 1e300;
    std::size_t since_best = 0;
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (std::size_t step = 1; step <= o.max_steps; ++step) {
        std::fill(g.begin(), g.end(), 0.0);
        double loss = 0.0;
        for (std::size_t q = 0; q < m; ++q) {
            const double* qv = &x[q * dim];
            double mx = -1e300;
            for (std::size_t d = 0; d < n; ++d) {
                double dot = 0.0;
                for (std::size_t c = 0; c < dim; ++c) dot += qv[c] * x[(m + d) * dim + c];
                s[d] = dot / o.temperature;
                mx = std::max(mx, s[d]);
            }
            double z = 0.0;
            for (std::size_t d = 0; d < n; ++d) z += (p[d] = std::exp(s[d] - mx));
            for (std::size_t d = 0; d < n; ++d) p[d] /= z;
            // loss = -mean over the two positives of log softmax.
            loss -= 0.5 * (std::log(p[pairs[q][0]]) + std::log(p[pairs[q][1]]));
            for (std::size_t d = 0; d < n; ++d) {
                double gs = p[d] - ((d == pairs[q][0] || d == pairs[q][1]) ? 0.5 : 0.0);
                gs /= o.temperature * static_cast<double>(m);
                for (std::size_t c = 0; c < dim; ++c) {
                    g[q * dim + c] += gs * x[(m + d) * dim + c];
                    g[(m + d) * dim + c] += gs * qv[c];
                }
            }
        }
        loss /= static_cast<double>(m);
        const double c1 = 1.0 - std::pow(b1, static_cast<double>(step)), c2 = 1.0 - std::pow(b2, static_cast<double>(step));
        for (std::size_t i = 0; i < x.size(); ++i) {
            adam_m[i] = b1 * adam_m[i] + (1 - b1) * g[i];
            adam_v[i] = b2 * adam_v[i] + (1 - b2) * g[i] * g[i];
            x[i] -= o.learning_rate * (adam_m[i] / c1) / (std::sqrt(adam_v[i] / c2) + eps);
        }
        normalise();
        if (step % 25 == 0 && solved()) return true;
        if (loss < best_loss - 1e-6) {
            best_loss = loss;
            since_best = 0;
        } else if (++since_best >= o.patience) {
            break;
        }
    }
    return solved();
}

}  // namespace

bool free_embedding_solves(std::size_t n, std::size_t dim, const FreeEmbeddingOptions& options) {
    for (std::size_t r = 0; r < std::max<std::size_t>(options.restarts, 1); ++r) {
        if (solves_from(n, dim, options, options.seed + r)) return true;
    }
    return false;
}

std::size_t free_embedding_critical_n(std::size_t dim, const FreeEmbeddingOptions& options, std::size_t max_n) {
    std::size_t best = 0;
    for (std::size_t n = 3; n <= max_n; ++n) {
        if (!free_embedding_solves(n, dim, options)) break;
        best = n;
    }
    return best;
}

}  // namespace quiver::eval
