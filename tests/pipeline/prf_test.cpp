// PRF operators: RM3 on a hand-computed case and against a brute-force reference written
// independently (dense arrays over a vocabulary, full sorts), Rocchio, and parameter parsing.
#include "quiver/pipeline/prf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

namespace quiver::pipeline {
namespace {

const auto kKeepAll = [](std::string_view) { return true; };

TEST(Rm3, HandComputed) {
    const std::vector<std::string> q = {"a", "b"};
    const std::vector<std::string> d1 = {"a", "a", "c"}, d2 = {"c", "d"};
    const std::vector<FeedbackDoc> docs = {{d1, 2.0}, {d2, 1.0}};
    PrfSpec spec;  // rm3, weight 0.5
    // d1: a 2/3, c 1/3 (x score 2); d2: c 1/2, d 1/2 (x 1) -> a 4/3, c 7/6, d 1/2; L1 -> 4/9, 7/18, 1/6;
    // mixed with q (a 1/2, b 1/2) at 0.5.
    auto got = expand_query(q, docs, spec, kKeepAll);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].term, "a");
    EXPECT_NEAR(got[0].weight, 17.0 / 36, 1e-12);
    EXPECT_EQ(got[1].term, "b");
    EXPECT_NEAR(got[1].weight, 9.0 / 36, 1e-12);
    EXPECT_EQ(got[2].term, "c");
    EXPECT_NEAR(got[2].weight, 7.0 / 36, 1e-12);
    EXPECT_EQ(got[3].term, "d");
    EXPECT_NEAR(got[3].weight, 3.0 / 36, 1e-12);
    // fb_terms = 1: d1 keeps a (2), d2 keeps c (tie with d, term order); RM a 2, c 1 -> cut to a.
    spec.fb_terms = 1;
    got = expand_query(q, docs, spec, kKeepAll);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_NEAR(got[0].weight, 0.75, 1e-12);
    EXPECT_NEAR(got[1].weight, 0.25, 1e-12);
    // fb_docs = 1 and a filter that drops "a": d1 gives only c.
    spec.fb_terms = 10;
    spec.fb_docs = 1;
    got = expand_query(q, docs, spec, [](std::string_view t) { return t != "a"; });
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].term, "c");
    EXPECT_NEAR(got[0].weight, 0.5, 1e-12);
}

// The reference: every vocabulary term in a dense array, the formulas of prf.h spelled out.
std::map<std::string, double> brute_rm3(const std::vector<std::string>& vocab, const std::vector<std::string>& query,
                                        const std::vector<std::vector<std::string>>& docs,
                                        const std::vector<double>& scores, std::size_t fb_docs, std::size_t fb_terms,
                                        double weight) {
    const std::size_t v = vocab.size();
    auto index_of = [&](const std::string& t) {
        return static_cast<std::size_t>(std::find(vocab.begin(), vocab.end(), t) - vocab.begin());
    };
    // Top-n of a dense vector: weight descending, then term ascending; others zeroed.
    auto cut = [&](std::vector<double>& x, std::size_t n) {
        std::vector<std::size_t> order(v);
        for (std::size_t i = 0; i < v; ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            if (x[a] != x[b]) return x[a] > x[b];
            return vocab[a] < vocab[b];
        });
        std::size_t kept = 0;
        for (std::size_t i : order) {
            if (x[i] > 0.0 && kept < n) {
                ++kept;
            } else {
                x[i] = 0.0;
            }
        }
    };
    std::vector<double> rm(v, 0.0);
    for (std::size_t d = 0; d < std::min(fb_docs, docs.size()); ++d) {
        std::vector<double> tf(v, 0.0);
        for (const auto& t : docs[d]) tf[index_of(t)] += 1.0;
        cut(tf, fb_terms);
        double l1 = 0.0;
        for (double x : tf) l1 += x;
        if (l1 <= 0.001) continue;
        for (std::size_t i = 0; i < v; ++i) rm[i] += tf[i] / l1 * scores[d];
    }
    cut(rm, fb_terms);
    double sum = 0.0;
    for (double x : rm) sum += x;
    std::vector<double> qv(v, 0.0);
    for (const auto& t : query) qv[index_of(t)] += 1.0 / static_cast<double>(query.size());
    std::map<std::string, double> out;
    for (std::size_t i = 0; i < v; ++i) {
        const double w = weight * qv[i] + (1.0 - weight) * (sum > 0 ? rm[i] / sum : 0.0);
        if (w > 0.0) out[vocab[i]] = w;
    }
    return out;
}

TEST(Rm3, EqualsBruteForceOnRandomFeedback) {
    std::mt19937 rng(13);
    std::vector<std::string> vocab;
    for (int i = 0; i < 30; ++i) vocab.push_back("t" + std::to_string(i));
    for (int trial = 0; trial < 200; ++trial) {
        std::uniform_int_distribution<int> word(0, 29), len(0, 25), ndocs(1, 12), small(1, 12);
        std::vector<std::vector<std::string>> docs(static_cast<std::size_t>(ndocs(rng)));
        std::vector<double> scores;
        double s = 20.0;
        for (auto& d : docs) {
            const int n = len(rng);
            for (int i = 0; i < n; ++i) d.push_back(vocab[static_cast<std::size_t>(word(rng) % (5 + trial % 25))]);
            s -= std::uniform_real_distribution<double>(0.0, 2.0)(rng);
            scores.push_back(s);
        }
        std::vector<std::string> query;
        for (int i = 0; i < 1 + trial % 4; ++i) query.push_back(vocab[static_cast<std::size_t>(word(rng))]);
        PrfSpec spec;
        spec.fb_docs = static_cast<std::size_t>(small(rng));
        spec.fb_terms = static_cast<std::size_t>(small(rng));
        spec.weight = (trial % 5) / 4.0;
        std::vector<FeedbackDoc> fb;
        for (std::size_t i = 0; i < docs.size(); ++i) fb.push_back({docs[i], scores[i]});
        const auto got = expand_query(query, fb, spec, kKeepAll);
        const auto want = brute_rm3(vocab, query, docs, scores, spec.fb_docs, spec.fb_terms, spec.weight);
        ASSERT_EQ(got.size(), want.size()) << "trial " << trial;
        for (std::size_t i = 0; i < got.size(); ++i) {
            ASSERT_TRUE(want.count(got[i].term)) << got[i].term;
            EXPECT_NEAR(got[i].weight, want.at(got[i].term), 1e-12) << "trial " << trial << " " << got[i].term;
            if (i > 0) {
                EXPECT_GE(got[i - 1].weight, got[i].weight);
            }
        }
    }
}

TEST(Rocchio, LexicalAndDense) {
    const std::vector<std::string> q = {"a"};
    const std::vector<std::string> d1 = {"a", "b"}, d2 = {"b", "b", "b", "b"};
    PrfSpec spec = *parse_prf("rocchio:fb_docs=2,fb_terms=5,alpha=1,beta=0.5");
    // d1 L2: a, b = 1/sqrt2; d2: b = 1. mean: a 0.35355, b 0.85355; q: a 1.
    const std::vector<FeedbackDoc> docs = {{d1, 3.0}, {d2, 1.0}};
    auto got = expand_query(q, docs, spec, kKeepAll);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].term, "a");
    EXPECT_NEAR(got[0].weight, 1.0 + 0.5 * (1 / std::sqrt(2.0)) / 2, 1e-12);
    EXPECT_NEAR(got[1].weight, 0.5 * (1 / std::sqrt(2.0) + 1) / 2, 1e-12);

    const std::vector<float> query = {1.0f, 0.0f};
    const std::vector<float> fb = {0.0f, 1.0f, 0.0f, 3.0f, 100.0f, 100.0f};  // third row beyond fb_docs
    PrfSpec dense = *parse_prf("rocchio:fb_docs=2,alpha=0.9,beta=0.1");
    auto v = rocchio_vector(query, fb, 2, dense, false);
    EXPECT_FLOAT_EQ(v[0], 0.9f);
    EXPECT_FLOAT_EQ(v[1], 0.2f);
    v = rocchio_vector(query, fb, 2, dense, true);
    EXPECT_NEAR(v[0], 0.9 / std::sqrt(0.85), 1e-6);
}

TEST(PrfSpecParsing, DefaultsAndRefusals) {
    auto rm3 = parse_prf("rm3:fb_docs=10,fb_terms=10,weight=0.5");
    ASSERT_TRUE(rm3.ok());
    EXPECT_EQ(rm3->method, PrfMethod::kRm3);
    EXPECT_EQ(to_string(*rm3), "rm3:fb_docs=10,fb_terms=10,weight=0.5");
    EXPECT_EQ(parse_prf("rm3")->fb_docs, 10u);
    EXPECT_FALSE(parse_prf("rm4"));
    EXPECT_FALSE(parse_prf("rm3:weight=1.5"));
    EXPECT_FALSE(parse_prf("rm3:fb_docs=0"));
    EXPECT_FALSE(parse_prf("rm3:fb_docs=2.5"));
    EXPECT_FALSE(parse_prf("rm3:alpha=1"));
    EXPECT_FALSE(parse_prf("rocchio:weight=0.5"));
    EXPECT_FALSE(parse_prf("rocchio:beta=-1"));
    EXPECT_FALSE(parse_prf("rm3:fb_docs"));
    EXPECT_TRUE(anserini_feedback_term("abc1", 1, 100));
    EXPECT_FALSE(anserini_feedback_term("a", 1, 100));
    EXPECT_FALSE(anserini_feedback_term("ab-c", 1, 100));
    EXPECT_FALSE(anserini_feedback_term("abc", 11, 100));
    EXPECT_TRUE(anserini_feedback_term("abc", 10, 100));
}

}  // namespace
}  // namespace quiver::pipeline
