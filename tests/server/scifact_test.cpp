// End to end: SciFact ingested through the HTTP server and searched with BM25 gives the same nDCG@10 as
// `quiver eval --retriever bm25` (a Bm25Index over the whole corpus, k1 0.9, b 0.4). Skips without data.
#include <httplib.h>

#include <gtest/gtest.h>

#include <thread>

#include "quiver/core/json.h"
#include "quiver/eval/dataset.h"
#include "quiver/eval/metrics.h"
#include "quiver/server/server.h"
#include "quiver/sparse/bm25_index.h"
#include "testing/bm25_reference.h"
#include "testing/testing.h"

namespace quiver::server {
namespace {

using testing::ndcg10;

TEST(EndToEnd, SciFactThroughTheServerMatchesEval) {
    QUIVER_REQUIRE_DATA(data, "scifact");
    auto ds = eval::load_dataset(data);
    ASSERT_TRUE(ds) << ds.error().to_string();
    constexpr std::size_t kDepth = 100;
    // What `quiver eval --retriever bm25` computes.
    const eval::Run reference = testing::bm25_reference_run(*ds, kDepth);
    testing::TempDir dir;
    auto store = engine::Store::open(dir.path());
    ASSERT_TRUE(store);
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    auto srv = Server::bind(**store, o);
    ASSERT_TRUE(srv);
    std::thread t([&] { (void)(*srv)->run(); });
    httplib::Client cli("127.0.0.1", (*srv)->port());
    cli.set_read_timeout(600);  // optimize() of the corpus takes seconds on a loaded machine
    for (int i = 0; i < 100 && !cli.Get("/healthz"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto r = cli.Put("/collections/scifact", R"({"fields": [{"name": "title", "type": "text", "indexed": false},
        {"name": "text", "type": "text", "indexed": false},
        {"name": "contents", "type": "text", "sources": ["title", "text"]}], "bm25": {"k1": 0.9, "b": 0.4}})",
                     "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    std::string batch;
    std::size_t in_batch = 0;
    auto send = [&] {
        auto w = cli.Post("/collections/scifact/documents", batch, "application/x-ndjson");
        ASSERT_TRUE(w);
        ASSERT_EQ(w->status, 200) << w->body;
        batch.clear();
        in_batch = 0;
    };
    for (const auto& d : ds->documents) {
        json::Value v = json::Value::object();
        v.set("id", json::Value::string(d.id));
        v.set("title", json::Value::string(d.title));
        v.set("text", json::Value::string(d.text));
        batch += json::dump(v) + "\n";
        if (++in_batch == 500) send();
    }
    if (in_batch > 0) send();
    cli.set_read_timeout(120, 0);  // optimize takes seconds on a loaded 2-core machine (client default: 5 s)
    r = cli.Post("/collections/scifact/optimize", "{}", "application/json");  // one segment (an optimisation)
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    eval::Run served;
    for (const auto& q : ds->queries) {
        json::Value body = json::Value::object();
        body.set("field", json::Value::string("contents"));
        body.set("text", json::Value::string(q.text));
        body.set("k", json::Value::number(kDepth + 1));
        body.set("fields", json::Value::array());
        auto s = cli.Post("/collections/scifact/search", json::dump(body), "application/json");
        ASSERT_TRUE(s);
        ASSERT_EQ(s->status, 200) << s->body;
        auto v = json::parse(s->body);
        ASSERT_TRUE(v);
        auto& list = served[q.id];
        for (const auto& h : v->find("hits")->as_array()) {
            const std::string& id = h.find("id")->as_string();
            if (id == q.id || list.size() == kDepth) continue;
            list.push_back({id, h.find("score")->as_number()});
        }
    }
    (*srv)->stop();
    t.join();
    const double want = ndcg10(*ds, reference);
    const double got = ndcg10(*ds, served);
    std::printf("[ measure ] SciFact nDCG@10: quiver eval bm25 %.4f, through the server %.4f (%zu queries)\n", want,
                got, ds->queries.size());
    EXPECT_NEAR(got, want, 1e-9);
}

}  // namespace
}  // namespace quiver::server
