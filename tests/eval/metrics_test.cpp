// Hand-built cases checked against trec_eval's definitions (algorithms.md section 12); expected
// values were computed by hand from the formulas and are asserted to 4 decimals.
#include "quiver/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace quiver::eval {
namespace {

constexpr double kTol = 5e-5;

// q1: graded relevance, a score tie, a relevant document never retrieved (R = 3 > retrieved relevant).
// q2: judged but no relevant document.   q3: judged, missing from the run.
// q4: the run retrieves the query itself (identical ids).   q9: in the run, not judged.
Qrels qrels() {
    return {{"q1", {{"d1", 2}, {"d2", 1}, {"d3", 0}, {"d4", 1}}},
            {"q2", {{"d7", 0}}},
            {"q3", {{"d8", 1}}},
            {"q4", {{"d9", 1}}}};
}

Run run() {
    return {{"q1", {{"d1", 0.5}, {"d2", 0.9}, {"d3", 0.9}, {"d5", 0.1}}},
            {"q2", {{"d7", 1.0}}},
            {"q4", {{"q4", 2.0}, {"d9", 1.0}}},
            {"q9", {{"d1", 1.0}}}};
}

double value(const EvalReport& r, const std::string& metric, const std::string& qid = "") {
    for (const auto& m : r.metrics) {
        if (m.spec.name() != metric) continue;
        if (qid.empty()) return m.mean;
        auto it = m.per_query.find(qid);
        return it == m.per_query.end() ? -1.0 : it->second;
    }
    return -2.0;
}

EvalReport eval_ok(const std::string& metrics, const EvalOptions& o = {}, const Run& r = run()) {
    auto specs = parse_metrics(metrics);
    EXPECT_TRUE(specs.ok());
    auto rep = evaluate(qrels(), r, *specs, o);
    EXPECT_TRUE(rep.ok());
    return *rep;
}

TEST(Metrics, TiesBreakByDocIdDescending) {
    // trec_eval order for q1: d3 (0.9), d2 (0.9), d1 (0.5), d5 (0.1) -> rels 0, 1, 2, 0.
    const EvalReport r = eval_ok("ndcg@2,ndcg@3,ndcg@10,p@2,p@10,recall@2,map@100,recip_rank,mrr@10");
    const double l3 = std::log2(3.0);
    EXPECT_NEAR(value(r, "ndcg@2", "q1"), (1 / l3) / (2 + 1 / l3), kTol);               // 0.2398
    EXPECT_NEAR(value(r, "ndcg@3", "q1"), (1 / l3 + 1.0) / (2 + 1 / l3 + 0.5), kTol);   // 0.5209
    EXPECT_NEAR(value(r, "ndcg@10", "q1"), 0.5209, 1e-4);
    EXPECT_NEAR(value(r, "p@2", "q1"), 0.5, kTol);
    EXPECT_NEAR(value(r, "p@10", "q1"), 0.2, kTol);         // denominator k even with 4 retrieved
    EXPECT_NEAR(value(r, "recall@2", "q1"), 1.0 / 3, kTol);  // denominator R = 3, not min(R, k)
    EXPECT_NEAR(value(r, "map@100", "q1"), (1.0 / 2 + 2.0 / 3) / 3, kTol);  // 0.3889
    EXPECT_NEAR(value(r, "recip_rank", "q1"), 0.5, kTol);
    // BEIR MRR sorts stably by score only: d2 (first in run order among the tie) is rank 1.
    EXPECT_NEAR(value(r, "mrr@10", "q1"), 1.0, kTol);
}

TEST(Metrics, QueryCoverageFollowsPytrecEval) {
    const EvalReport r = eval_ok("ndcg@10,recall@2,p@2,map@100,recip_rank,mrr@10");
    EXPECT_EQ(r.queries_in_qrels, 4u);
    EXPECT_EQ(r.queries_evaluated, 3u);  // q1, q2, q4; q3 has no run
    EXPECT_EQ(r.run_queries_skipped, 1u);  // q9 has no judgments
    // No relevant documents (q2): every metric 0, and the query still counts.
    EXPECT_NEAR(value(r, "ndcg@10", "q2"), 0.0, kTol);
    EXPECT_NEAR(value(r, "recall@2", "q2"), 0.0, kTol);
    EXPECT_EQ(value(r, "ndcg@10", "q3"), -1.0);  // absent
    EXPECT_NEAR(value(r, "ndcg@10"), (0.520909 + 0 + 1) / 3, 1e-4);  // 0.5070
    EXPECT_NEAR(value(r, "recall@2"), (1.0 / 3 + 0 + 1) / 3, kTol);   // 0.4444
    EXPECT_NEAR(value(r, "p@2"), (0.5 + 0 + 0.5) / 3, kTol);          // 0.3333
    EXPECT_NEAR(value(r, "map@100"), (0.388889 + 0 + 1) / 3, 1e-4);   // 0.4630
    EXPECT_NEAR(value(r, "recip_rank"), 0.5, kTol);
    // BEIR MRR divides by all judged queries (4), including q3 with no run.
    EXPECT_NEAR(value(r, "mrr@10"), (1.0 + 0 + 0 + 1) / 4, kTol);

    EvalOptions all;
    all.all_queries = true;  // trec_eval -c
    const EvalReport c = eval_ok("ndcg@10", all);
    EXPECT_NEAR(value(c, "ndcg@10"), (0.520909 + 0 + 0 + 1) / 4, 1e-4);  // 0.3802
    EXPECT_EQ(c.metrics[0].num_queries, 4u);
}

TEST(Metrics, IdenticalIds) {
    const EvalReport dropped = eval_ok("ndcg@10,recip_rank");
    EXPECT_NEAR(value(dropped, "ndcg@10", "q4"), 1.0, kTol);
    EvalOptions keep;
    keep.ignore_identical_ids = false;
    const EvalReport kept = eval_ok("ndcg@10,recip_rank", keep);
    EXPECT_NEAR(value(kept, "ndcg@10", "q4"), 1.0 / std::log2(3.0), kTol);  // 0.6309
    EXPECT_NEAR(value(kept, "recip_rank", "q4"), 0.5, kTol);
}

TEST(Metrics, GradedGainIsLinear) {
    // Ideal order 3, 1 vs retrieved 1, 3: linear gains (not 2^rel - 1).
    Qrels q = {{"a", {{"x", 3}, {"y", 1}}}};
    eval::Run r = {{"a", {{"y", 2.0}, {"x", 1.0}}}};
    auto specs = parse_metrics("ndcg@2");
    auto rep = evaluate(q, r, *specs);
    ASSERT_TRUE(rep.ok());
    const double l3 = std::log2(3.0);
    EXPECT_NEAR(rep->metrics[0].mean, (1 + 3 / l3) / (3 + 1 / l3), kTol);  // 0.7967
}

TEST(Metrics, EmptyResultListIsAnAbsentQuery) {
    Qrels q = {{"a", {{"x", 1}}}, {"b", {{"y", 1}}}};
    eval::Run r = {{"a", {}}, {"b", {{"y", 1.0}}}};
    auto rep = evaluate(q, r, *parse_metrics("ndcg@10,recall@10,mrr@10"));
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->queries_evaluated, 1u);
    EXPECT_NEAR(rep->metrics[0].mean, 1.0, kTol);
    EXPECT_NEAR(rep->metrics[1].mean, 1.0, kTol);
    EXPECT_NEAR(rep->metrics[2].mean, 0.5, kTol);  // BEIR MRR still divides by both queries
    EvalOptions all;
    all.all_queries = true;
    auto c = evaluate(q, r, *parse_metrics("ndcg@10"), all);
    ASSERT_TRUE(c.ok());
    EXPECT_NEAR(c->metrics[0].mean, 0.5, kTol);
}

TEST(Metrics, RepeatedDocumentIsAnError) {
    Qrels q = {{"a", {{"x", 1}}}};
    eval::Run r = {{"a", {{"x", 1.0}, {"x", 0.5}}}};
    auto rep = evaluate(q, r, *parse_metrics("ndcg@10"));
    ASSERT_FALSE(rep.ok());
    EXPECT_NE(rep.error().message().find("twice"), std::string::npos);
}

TEST(Metrics, ParsesNames) {
    auto m = parse_metrics("nDCG@10, recall@100,map@100,mrr@10,P@5,recip_rank,ndcg_cut_20,ndcg@10");
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(m->size(), 7u);
    EXPECT_EQ((*m)[0].name(), "ndcg@10");
    EXPECT_EQ((*m)[4].name(), "p@5");
    EXPECT_EQ((*m)[5].name(), "recip_rank");
    EXPECT_EQ((*m)[6].name(), "ndcg@20");
    EXPECT_FALSE(parse_metrics("ndcg@x").ok());
    EXPECT_FALSE(parse_metrics("ndcg@0").ok());
    EXPECT_FALSE(parse_metrics("bleu@4").ok());
    EXPECT_FALSE(parse_metrics("").ok());
}

}  // namespace
}  // namespace quiver::eval
