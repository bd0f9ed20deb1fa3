// Pseudo-relevance feedback operators (see prf.h).
#include "quiver/pipeline/prf.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

namespace quiver::pipeline {
namespace {

using TermVector = std::map<std::string, double, std::less<>>;

TermVector counts(std::span<const std::string> tokens, const std::function<bool(std::string_view)>* keep) {
    TermVector v;
    for (const std::string& t : tokens) {
        if (keep != nullptr && !(*keep)(t)) continue;
        v[t] += 1.0;
    }
    return v;
}

// Sorted by weight descending, then term ascending.
std::vector<WeightedTerm> ranked(const TermVector& v) {
    std::vector<WeightedTerm> out;
    out.reserve(v.size());
    for (const auto& [t, w] : v) out.push_back({t, w});
    std::stable_sort(out.begin(), out.end(), [](const WeightedTerm& a, const WeightedTerm& b) { return a.weight > b.weight; });
    return out;
}

TermVector prune(const TermVector& v, std::size_t n) {
    std::vector<WeightedTerm> r = ranked(v);
    if (r.size() > n) r.resize(n);
    TermVector out;
    for (auto& t : r) out.emplace(std::move(t.term), t.weight);
    return out;
}

void scale_l1(TermVector& v) {
    double sum = 0.0;
    for (const auto& [t, w] : v) sum += std::abs(w);
    if (sum > 0.0) {
        for (auto& [t, w] : v) w /= sum;
    }
}

void scale_l2(TermVector& v) {
    double sum = 0.0;
    for (const auto& [t, w] : v) sum += w * w;
    if (sum > 0.0) {
        const double n = std::sqrt(sum);
        for (auto& [t, w] : v) w /= n;
    }
}

bool parse_number(std::string_view s, double& out) {
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && ptr == s.data() + s.size() && !s.empty() && std::isfinite(out);
}

}  // namespace

Result<PrfSpec> parse_prf(std::string_view text) {
    PrfSpec spec;
    const std::size_t colon = text.find(':');
    const std::string_view method = text.substr(0, colon);
    if (method == "rm3") {
        spec.method = PrfMethod::kRm3;
    } else if (method == "rocchio") {
        spec.method = PrfMethod::kRocchio;
    } else {
        return invalid_argument(fmt::format("--prf '{}': unknown method '{}' (rm3, rocchio)", text, method));
    }
    std::string_view rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
    while (!rest.empty()) {
        const std::size_t comma = std::min(rest.find(','), rest.size());
        const std::string_view item = rest.substr(0, comma);
        rest = comma < rest.size() ? rest.substr(comma + 1) : std::string_view();
        const std::size_t eq = item.find('=');
        double x = 0.0;
        if (eq == std::string_view::npos || !parse_number(item.substr(eq + 1), x)) {
            return invalid_argument(fmt::format("--prf '{}': '{}' is not NAME=NUMBER", text, item));
        }
        const std::string_view name = item.substr(0, eq);
        if (name == "fb_docs" || name == "fb_terms") {
            if (x < 1.0 || x != std::floor(x) || x > 1e6) {
                return invalid_argument(fmt::format("--prf '{}': {} must be a whole number >= 1", text, name));
            }
            (name == "fb_docs" ? spec.fb_docs : spec.fb_terms) = static_cast<std::size_t>(x);
        } else if (name == "weight" && spec.method == PrfMethod::kRm3) {
            if (x < 0.0 || x > 1.0) return invalid_argument(fmt::format("--prf '{}': weight must be in [0, 1]", text));
            spec.weight = x;
        } else if ((name == "alpha" || name == "beta") && spec.method == PrfMethod::kRocchio) {
            if (x < 0.0) return invalid_argument(fmt::format("--prf '{}': {} must be >= 0", text, name));
            (name == "alpha" ? spec.alpha : spec.beta) = x;
        } else {
            return invalid_argument(fmt::format("--prf '{}': unknown parameter '{}' for {}", text, name, method));
        }
    }
    return spec;
}

std::string to_string(const PrfSpec& spec) {
    if (spec.method == PrfMethod::kRm3) {
        return fmt::format("rm3:fb_docs={},fb_terms={},weight={}", spec.fb_docs, spec.fb_terms, spec.weight);
    }
    return fmt::format("rocchio:fb_docs={},fb_terms={},alpha={},beta={}", spec.fb_docs, spec.fb_terms, spec.alpha,
                       spec.beta);
}

Status validate_prf(const PrfSpec& spec) {
    if (spec.fb_docs < 1 || spec.fb_docs > 1000) return invalid_argument("prf: fb_docs must be 1..1000");
    if (spec.fb_terms < 1 || spec.fb_terms > 1000) return invalid_argument("prf: fb_terms must be 1..1000");
    if (!(spec.weight >= 0.0 && spec.weight <= 1.0)) return invalid_argument("prf: the original query weight must be in [0, 1]");
    if (!(spec.alpha >= 0.0) || !std::isfinite(spec.alpha) || !(spec.beta >= 0.0) || !std::isfinite(spec.beta)) {
        return invalid_argument("prf: alpha and beta must be finite and >= 0");
    }
    return ok_status();
}

bool anserini_feedback_term(std::string_view term, std::uint64_t doc_freq, std::uint64_t num_docs) noexcept {
    if (term.size() < 2) return false;
    for (char c : term) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
    }
    // Anserini compares in float: (float) df / numDocs > 0.1f drops the term.
    return num_docs > 0 && !(static_cast<float>(doc_freq) / static_cast<float>(num_docs) > 0.1f);
}

std::vector<WeightedTerm> expand_query(std::span<const std::string> query_tokens, std::span<const FeedbackDoc> docs,
                                       const PrfSpec& spec, const std::function<bool(std::string_view)>& keep) {
    const std::size_t n = std::min(docs.size(), spec.fb_docs);
    TermVector q = counts(query_tokens, nullptr);
    TermVector expanded;
    if (spec.method == PrfMethod::kRm3) {
        std::vector<TermVector> vecs;
        std::vector<double> norms;
        for (std::size_t i = 0; i < n; ++i) {
            vecs.push_back(prune(counts(docs[i].tokens, &keep), spec.fb_terms));
            double l1 = 0.0;
            for (const auto& [t, w] : vecs.back()) l1 += w;
            norms.push_back(l1);
        }
        TermVector rm;
        for (std::size_t i = 0; i < n; ++i) {
            if (norms[i] <= 0.001) continue;
            for (const auto& [t, tf] : vecs[i]) rm[t] += tf / norms[i] * docs[i].score;
        }
        rm = prune(rm, spec.fb_terms);
        scale_l1(rm);
        scale_l1(q);
        for (const auto& [t, w] : q) expanded[t] += spec.weight * w;
        for (const auto& [t, w] : rm) expanded[t] += (1.0 - spec.weight) * w;
    } else {
        TermVector mean;
        for (std::size_t i = 0; i < n; ++i) {
            TermVector v = counts(docs[i].tokens, &keep);
            scale_l2(v);
            for (const auto& [t, w] : v) mean[t] += w / static_cast<double>(n);
        }
        mean = prune(mean, spec.fb_terms);
        scale_l2(q);
        for (const auto& [t, w] : q) expanded[t] += spec.alpha * w;
        for (const auto& [t, w] : mean) expanded[t] += spec.beta * w;
    }
    std::vector<WeightedTerm> out = ranked(expanded);
    std::erase_if(out, [](const WeightedTerm& t) { return !(t.weight > 0.0); });
    return out;
}

std::vector<float> rocchio_vector(std::span<const float> query, std::span<const float> docs, std::size_t dim,
                                  const PrfSpec& spec, bool normalize) {
    std::vector<double> acc(dim, 0.0);
    const std::size_t n = std::min(docs.size() / dim, spec.fb_docs);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t c = 0; c < dim; ++c) acc[c] += docs[i * dim + c];
    }
    std::vector<float> out(dim);
    double norm = 0.0;
    for (std::size_t c = 0; c < dim; ++c) {
        const double x = spec.alpha * query[c] + (n > 0 ? spec.beta * acc[c] / static_cast<double>(n) : 0.0);
        out[c] = static_cast<float>(x);
        norm += x * x;
    }
    if (normalize && norm > 0.0) {
        const double inv = 1.0 / std::sqrt(norm);
        for (float& x : out) x = static_cast<float>(x * inv);
    }
    return out;
}

}  // namespace quiver::pipeline
