#include "quiver/sparse/synthetic.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "quiver/core/thread_pool.h"

namespace quiver::sparse {

namespace {

// Samples ranks 0..n-1 with P(r) proportional to 1 / (r + 1)^s by inverse CDF.
class Zipf {
public:
    Zipf(std::size_t n, double s) : cdf_(n) {
        double acc = 0;
        for (std::size_t r = 0; r < n; ++r) cdf_[r] = acc += 1.0 / std::pow(static_cast<double>(r + 1), s);
        for (double& c : cdf_) c /= acc;
    }
    template <class Rng>
    std::size_t operator()(Rng& rng) const {
        const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
        const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
        return std::min<std::size_t>(static_cast<std::size_t>(it - cdf_.begin()), cdf_.size() - 1);
    }

private:
    std::vector<double> cdf_;
};

struct Model {
    std::vector<TermId> by_rank;               // background popularity rank -> term
    std::vector<std::vector<TermId>> topic;    // topic -> terms by centrality
    std::uint32_t n_topics = 0;
};

std::uint64_t mix(std::uint64_t seed, std::uint64_t stream, std::uint64_t i) {
    std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + stream * 0xBF58476D1CE4E5B9ull + i * 0x94D049BB133111EBull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// A vector under construction: a repeated term keeps its larger weight. `slot` (one entry per
// vocabulary id, -1 when absent) makes insertion O(1); clear() restores it.
class Builder {
public:
    explicit Builder(std::uint32_t vocab) : slot_(vocab, -1) {}
    void put(TermId t, float w) {
        if (slot_[t] >= 0) {
            float& old = v_[static_cast<std::size_t>(slot_[t])].second;
            old = std::max(old, w);
            return;
        }
        slot_[t] = static_cast<std::int32_t>(v_.size());
        v_.emplace_back(t, w);
    }
    std::size_t size() const noexcept { return v_.size(); }
    // Moves the terms out, sorted, and resets.
    SparseVector take() {
        std::sort(v_.begin(), v_.end());
        SparseVector sv;
        sv.terms.reserve(v_.size());
        sv.weights.reserve(v_.size());
        for (const auto& [t, w] : v_) {
            sv.terms.push_back(t);
            sv.weights.push_back(w);
            slot_[t] = -1;
        }
        v_.clear();
        return sv;
    }

private:
    std::vector<std::int32_t> slot_;
    std::vector<std::pair<TermId, float>> v_;
};

float centrality(std::size_t rank) { return static_cast<float>(0.5 + 1.5 / std::pow(1.0 + static_cast<double>(rank) / 20.0, 0.7)); }

}  // namespace

Result<SyntheticData> generate_synthetic(const SyntheticParams& p) {
    if (p.vocab < 100) return invalid_argument("synthetic: vocab must be >= 100");
    if (p.min_doc_nnz == 0 || p.min_doc_nnz > p.max_doc_nnz || p.max_doc_nnz > p.vocab / 4)
        return invalid_argument(fmt::format("synthetic: bad document nnz range [{}, {}]", p.min_doc_nnz, p.max_doc_nnz));
    if (p.min_query_nnz == 0 || p.min_query_nnz > p.max_query_nnz || p.max_query_nnz > p.vocab / 4)
        return invalid_argument(fmt::format("synthetic: bad query nnz range [{}, {}]", p.min_query_nnz, p.max_query_nnz));
    if (p.topic_terms == 0 || p.topic_terms + 50 > p.vocab) return invalid_argument("synthetic: bad topic_terms");
    if (p.docs == 0 || p.docs >= (1ull << 32) - 1) return invalid_argument("synthetic: docs must be in [1, 2^32 - 1)");
    if (!(p.zipf_s > 0.0)) return invalid_argument("synthetic: zipf_s must be > 0");

    Model m;
    m.n_topics = p.topics ? p.topics : static_cast<std::uint32_t>(std::clamp<std::size_t>(p.docs / 500, 20, 2000));
    std::mt19937_64 rng(mix(p.seed, 0, 0));
    m.by_rank.resize(p.vocab);
    std::iota(m.by_rank.begin(), m.by_rank.end(), 0u);
    std::shuffle(m.by_rank.begin(), m.by_rank.end(), rng);
    const Zipf background(p.vocab, p.zipf_s);
    const Zipf flat(p.vocab - 50, 0.5);
    const Zipf within(p.topic_terms, 0.8);
    m.topic.resize(m.n_topics);
    for (auto& t : m.topic) {
        std::vector<char> used(p.vocab, 0);
        while (t.size() < p.topic_terms) {
            const TermId term = m.by_rank[50 + flat(rng)];
            if (!used[term]) {
                used[term] = 1;
                t.push_back(term);
            }
        }
    }

    SyntheticData out;
    out.docs.vocab = Vocabulary::integer(p.vocab);
    out.queries.ids.reserve(p.queries);
    std::vector<SparseVector> docs(p.docs);
    std::vector<std::uint32_t> primary(p.docs);
    ThreadPool pool(resolve_threads(p.threads));
    std::vector<Builder> builders(pool.size(), Builder(p.vocab));
    pool.parallel_for(p.docs, [&](std::size_t d, std::size_t worker) {
        std::mt19937_64 r(mix(p.seed, 1, d));
        std::uniform_int_distribution<std::uint32_t> pick_topic(0, m.n_topics - 1);
        const std::uint32_t main = pick_topic(r);
        std::vector<std::uint32_t> secondary{pick_topic(r)};
        if (std::bernoulli_distribution(0.5)(r)) secondary.push_back(pick_topic(r));
        const std::uint32_t n = std::uniform_int_distribution<std::uint32_t>(p.min_doc_nnz, p.max_doc_nnz)(r);
        const double share = std::uniform_real_distribution<double>(0.45, 0.65)(r);
        const auto n_topic = static_cast<std::uint32_t>(std::lround(share * n));
        std::normal_distribution<float> topic_w(0.1f, 0.5f), bg_w(-1.6f, 0.7f);
        Builder& v = builders[worker];
        std::size_t attempts = 0;
        while (v.size() < n_topic && attempts++ < 20u * n) {
            const bool prim = std::bernoulli_distribution(0.7)(r);
            const std::uint32_t tp = prim ? main : secondary[r() % secondary.size()];
            const std::size_t rank = within(r);
            const float w = std::exp(topic_w(r)) * centrality(rank) * (prim ? 1.0f : 0.7f);
            v.put(m.topic[tp][rank], w);
        }
        while (v.size() < n && attempts++ < 40u * n) v.put(m.by_rank[background(r)], std::exp(bg_w(r)));
        docs[d] = v.take();
        primary[d] = main;
    }, 256);
    std::size_t nnz = 0;
    for (const auto& v : docs) nnz += v.size();
    out.docs.terms.reserve(nnz);
    out.docs.weights.reserve(nnz);
    out.docs.offsets.reserve(p.docs + 1);
    out.docs.ids.reserve(p.docs);
    for (std::size_t d = 0; d < p.docs; ++d) {
        out.docs.append_canonical(std::to_string(d), docs[d].view());
        SparseVector().terms.swap(docs[d].terms);
        SparseVector().weights.swap(docs[d].weights);
    }

    // Queries from the topic model, independent of every document: an information need is a primary
    // topic (and, one time in three, a secondary one); its head terms are central terms of that topic
    // with SPLADE-like large weights, then lower-weight topic terms, then background expansion terms.
    out.topics = m.topic;
    Builder qbuilder(p.vocab);
    for (std::size_t q = 0; q < p.queries; ++q) {
        std::mt19937_64 r(mix(p.seed, 2, q));
        std::uniform_int_distribution<std::uint32_t> pick_topic(0, m.n_topics - 1);
        const std::uint32_t main = pick_topic(r);
        const bool two = std::bernoulli_distribution(1.0 / 3.0)(r);
        const std::uint32_t second = pick_topic(r);
        const std::uint32_t n = std::uniform_int_distribution<std::uint32_t>(p.min_query_nnz, p.max_query_nnz)(r);
        Builder& v = qbuilder;
        const std::uint32_t n_head = std::uniform_int_distribution<std::uint32_t>(3, 8)(r);
        const auto n_topic = static_cast<std::size_t>(std::lround(0.45 * n));
        std::normal_distribution<float> head_w(0.4f, 0.4f), topic_w(-0.5f, 0.5f), bg_w(-2.0f, 0.6f);
        std::size_t attempts = 0;
        while (v.size() < n_head && v.size() < n && attempts++ < 50u * n) {
            const bool prim = !two || std::bernoulli_distribution(0.65)(r);
            const std::size_t rank = within(r);
            v.put(m.topic[prim ? main : second][rank], std::exp(head_w(r)) * centrality(rank));
        }
        while (v.size() < n_head + n_topic && v.size() < n && attempts++ < 100u * n) {
            const bool prim = !two || std::bernoulli_distribution(0.65)(r);
            const std::size_t rank = within(r);
            v.put(m.topic[prim ? main : second][rank], std::exp(topic_w(r)) * centrality(rank));
        }
        while (v.size() < n && attempts++ < 200u * n) v.put(m.by_rank[background(r)], std::exp(bg_w(r)));
        SparseVector sv = v.take();
        out.queries.ids.push_back("q" + std::to_string(q));
        out.queries.vectors.push_back(std::move(sv));
        out.query_topic.push_back(main);
    }
    return out;
}

}  // namespace quiver::sparse
