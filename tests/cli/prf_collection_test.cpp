// Collections give `quiver eval`'s figures (real data; skipped without it): Cranfield ingested with
// `quiver ingest` and searched with RM3 gives the MAP of `quiver eval --prf`; SciFact searched with the
// calibrated cut-off that `quiver eval --cutoff calibrated --save-pipeline` trained on the train split
// gives eval's precision, recall and F1 on test.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "quiver/core/json.h"
#include "quiver/engine/store.h"
#include "quiver/eval/dataset.h"
#include "quiver/eval/metrics.h"
#include "quiver/pipeline/calibration.h"
#include "quiver/pipeline/pipeline_file.h"
#include "testing/testing.h"

namespace quiver {
namespace {

testing::CommandResult run(const std::string& args) {
    return testing::run_command(std::string(QUIVER_CLI_PATH) + " " + args + " 2>&1");
}

// The JSON report of `quiver eval ... --json` (progress goes to stderr, not captured here).
json::Value eval_json(const std::string& args) {
    auto r = testing::run_command(std::string(QUIVER_CLI_PATH) + " eval " + args + " --json --quiet 2>/dev/null");
    EXPECT_EQ(r.code, 0) << r.out;
    auto v = json::parse(r.out);
    EXPECT_TRUE(v) << r.out;
    return v ? *v : json::Value::object();
}

// Runs every query of `ds` through the collection as eval does: depth + 1 hits, the query's own id
// dropped, cut at depth.
eval::Run collection_run(engine::Collection& c, const eval::Dataset& ds, std::size_t depth,
                         const engine::SearchRequest& base) {
    eval::Run out;
    for (const auto& q : ds.queries) {
        engine::SearchRequest r = base;
        r.clauses[0].text = q.text;
        r.k = depth + 1;
        r.return_fields = std::vector<std::string>{};
        auto hits = c.search(r);
        EXPECT_TRUE(hits) << hits.error().to_string();
        if (!hits) continue;
        auto& list = out[q.id];
        for (const auto& h : *hits) {
            if (h.id == q.id || list.size() == depth) continue;
            list.push_back({h.id, h.score});
        }
    }
    return out;
}

double metric(const eval::Dataset& ds, const eval::Run& r, const char* name) {
    auto spec = eval::parse_metrics(name);
    EXPECT_TRUE(spec);
    auto rep = eval::evaluate(ds.qrels, r, *spec, {});
    EXPECT_TRUE(rep);
    return rep ? rep->metrics[0].mean : -1.0;
}

TEST(CollectionPipeline, CranfieldRm3MatchesEvalPrf) {
    QUIVER_REQUIRE_DATA(data, "cranfield");
    testing::TempDir dir;
    auto r = run("ingest --data " + dir.file("store") + " --collection cran --input " + data);
    ASSERT_EQ(r.code, 0) << r.out;
    const std::string prf = "rm3:fb_docs=10,fb_terms=10,weight=0.5";
    const json::Value plain = eval_json("--dataset " + data + " --metrics map --k 1000");
    const json::Value with_prf = eval_json("--dataset " + data + " --metrics map --k 1000 --prf " + prf);
    const double want_plain = plain.find("metrics")->find("map")->as_number();
    const double want_prf = with_prf.find("metrics")->find("map")->as_number();

    auto ds = eval::load_dataset(data);
    ASSERT_TRUE(ds) << ds.error().to_string();
    engine::CollectionOptions copts;
    copts.background_merge = false;
    auto store = engine::Store::open(dir.file("store"), copts);
    ASSERT_TRUE(store) << store.error().to_string();
    auto c = (*store)->get("cran");
    ASSERT_TRUE(c) << c.error().to_string();
    engine::SearchRequest base;
    base.clauses.push_back(engine::QueryClause::of_text("contents", ""));
    const double got_plain = metric(*ds, collection_run(**c, *ds, 1000, base), "map");
    base.clauses[0].prf = *pipeline::parse_prf(prf);
    const double got_prf = metric(*ds, collection_run(**c, *ds, 1000, base), "map");
    std::printf("[ measure ] Cranfield MAP: eval bm25 %.4f, collection %.4f; eval --prf %s %.4f, collection prf %.4f\n",
                want_plain, got_plain, prf.c_str(), want_prf, got_prf);
    EXPECT_NEAR(got_plain, want_plain, 1e-4);
    EXPECT_NEAR(got_prf, want_prf, 1e-4);
    EXPECT_GT(got_prf, got_plain + 0.01);  // RM3 helps on Cranfield

    // `quiver query --prf` runs the same search from the command line.
    r = run("query --read-only --data " + dir.file("store") + " --collection cran --text \"" + ds->queries[0].text +
            "\" -k 3 --json --prf " + prf);
    ASSERT_EQ(r.code, 0) << r.out;
    base.clauses[0].text = ds->queries[0].text;
    base.k = 3;
    auto hits = (*c)->search(base);
    ASSERT_TRUE(hits);
    for (const auto& h : *hits) EXPECT_NE(r.out.find("\"id\": \"" + h.id + "\""), std::string::npos) << r.out;
    r = run("query --read-only --data " + dir.file("store") + " --collection cran --text x --prf rm3:alpha=1");
    EXPECT_EQ(r.code, 2) << r.out;
    r = run("query --read-only --data " + dir.file("store") + " --collection cran --text x --min-relevance 0.5");
    EXPECT_EQ(r.code, 2) << r.out;
}

TEST(CollectionPipeline, SciFactCalibratedCutoffMatchesEval) {
    QUIVER_REQUIRE_DATA(data, "scifact");
    testing::TempDir dir;
    auto r = run("ingest --data " + dir.file("store") + " --collection scifact --input " + data);
    ASSERT_EQ(r.code, 0) << r.out;
    const std::string pipeline_file = dir.file("p.json");
    const json::Value rep = eval_json("--dataset " + data + " --split test --metrics ndcg@10 --cutoff calibrated "
                                      "--calibration-split train --save-pipeline " + pipeline_file);
    const json::Value* cal = rep.find("cutoff")->find("calibrated");
    ASSERT_NE(cal, nullptr);
    // The figures docs/pipeline.md cites: calibrated F1 0.5330 (P 0.5055, R 0.6082) against 0.3262 for the
    // best single global threshold on train, same run.
    EXPECT_NEAR(cal->find("f1")->as_number(), 0.5330, 1e-4);
    EXPECT_NEAR(cal->find("precision")->as_number(), 0.5055, 1e-4);
    EXPECT_NEAR(cal->find("recall")->as_number(), 0.6082, 1e-4);
    const json::Value* global = rep.find("cutoff")->find("global_tuned");
    ASSERT_NE(global, nullptr);
    EXPECT_NEAR(global->find("f1")->as_number(), 0.3262, 1e-4);
    auto config = pipeline::load_pipeline(pipeline_file);
    ASSERT_TRUE(config) << config.error().to_string();
    ASSERT_TRUE(config->cutoff.has_value());
    EXPECT_EQ(config->cutoff->split, "train");
    EXPECT_EQ(config->cutoff->model.threshold, cal->find("threshold")->as_number());

    eval::LoadOptions lo;
    lo.split = "test";
    auto ds = eval::load_dataset(data, lo);
    ASSERT_TRUE(ds) << ds.error().to_string();
    engine::CollectionOptions copts;
    copts.background_merge = false;
    auto store = engine::Store::open(dir.file("store"), copts);
    ASSERT_TRUE(store) << store.error().to_string();
    auto c = (*store)->get("scifact");
    ASSERT_TRUE(c) << c.error().to_string();
    engine::SearchRequest base;
    base.clauses.push_back(engine::QueryClause::of_text("contents", ""));
    base.cutoff = config->cutoff->model;
    // The cut-off's sets: what each test query returns (at most depth hits, limit 1000).
    eval::Run returned;
    std::size_t with_relevance = 0;
    for (const auto& q : ds->queries) {
        if (ds->qrels.count(q.id) == 0) continue;
        engine::SearchRequest req = base;
        req.clauses[0].text = q.text;
        req.k = 1000;
        req.return_fields = std::vector<std::string>{};
        auto hits = (*c)->search(req);
        ASSERT_TRUE(hits) << hits.error().to_string();
        auto& list = returned[q.id];
        for (const auto& h : *hits) {
            with_relevance += h.relevance.has_value() ? 1 : 0;
            if (h.id != q.id) list.push_back({h.id, h.score});
        }
    }
    EXPECT_GT(with_relevance, 0u);
    const auto got = pipeline::set_metrics(returned, ds->qrels);
    std::printf("[ measure ] SciFact test, calibrated cut-off trained on train: eval P %.4f R %.4f F1 %.4f; "
                "collection P %.4f R %.4f F1 %.4f (%zu queries)\n",
                cal->find("precision")->as_number(), cal->find("recall")->as_number(), cal->find("f1")->as_number(),
                got.precision, got.recall, got.f1, got.queries);
    EXPECT_NEAR(got.precision, cal->find("precision")->as_number(), 1e-3);
    EXPECT_NEAR(got.recall, cal->find("recall")->as_number(), 1e-3);
    EXPECT_NEAR(got.f1, cal->find("f1")->as_number(), 1e-3);
    // The file also drives `quiver query --pipeline` (relevance printed beside each hit).
    r = run("query --read-only --data " + dir.file("store") + " --collection scifact --text \"" + ds->queries[0].text +
            "\" --json --pipeline " + pipeline_file);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("\"relevance\""), std::string::npos) << r.out;
}

}  // namespace
}  // namespace quiver
