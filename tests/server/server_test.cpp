// The HTTP API: routes, bad input (each gets a JSON 4xx and the server keeps serving), API keys,
// and a socket round trip through cpp-httplib.
#include "quiver/server/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "quiver/core/json.h"
#include "quiver/server/api.h"
#include "testing/testing.h"

namespace quiver::server {
namespace {

const char* kSchema = R"({"fields": [
  {"name": "body", "type": "text"},
  {"name": "tag", "type": "keyword"},
  {"name": "year", "type": "integer"},
  {"name": "emb", "type": "vector", "dim": 3, "metric": "l2", "index": "flat"},
  {"name": "sp", "type": "sparse_vector"}]})";

ApiRequest req(std::string method, std::string path, std::string body = "") {
    ApiRequest r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.body = std::move(body);
    return r;
}

// Asserts a JSON error body with a message and returns its code.
std::string error_code(const ApiResponse& r) {
    auto v = json::parse(r.body);
    EXPECT_TRUE(v) << r.body;
    if (!v) return "";
    const json::Value* e = v->find("error");
    EXPECT_TRUE(e != nullptr && e->find("message") != nullptr && e->find("message")->is_string()) << r.body;
    if (e == nullptr || e->find("code") == nullptr) return "";
    return e->find("code")->as_string();
}

class ApiTest : public ::testing::Test {
protected:
    void SetUp() override {
        engine::CollectionOptions o;
        o.background_merge = false;
        auto s = engine::Store::open(dir_.path(), o);
        ASSERT_TRUE(s);
        store_ = std::move(s).value();
        api_ = std::make_unique<Api>(*store_, "", limits());
        ASSERT_EQ(api_->handle(req("PUT", "/collections/docs", kSchema)).status, 201);
        const auto w = api_->handle(req("POST", "/collections/docs/documents",
                                        R"([{"id": "a", "body": "red apple pie", "tag": "fruit", "year": 2001, "emb": [1, 0, 0]},
                                            {"id": "b", "body": "green apple", "tag": "fruit", "year": 2010, "emb": [0, 1, 0]},
                                            {"id": "c", "body": "red car", "tag": "car", "year": 2020, "emb": [0, 0, 1], "sp": {"car": 2, "red": 0.5}}])"));
        ASSERT_EQ(w.status, 200) << w.body;
    }
    static ApiLimits limits() {
        ApiLimits l;
        l.max_body_bytes = 1 << 16;
        l.max_batch_docs = 100;
        return l;
    }
    testing::TempDir dir_;
    std::unique_ptr<engine::Store> store_;
    std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, RoutesWork) {
    EXPECT_EQ(api_->handle(req("GET", "/healthz")).status, 200);
    auto r = api_->handle(req("GET", "/collections"));
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("\"docs\""), std::string::npos);
    r = api_->handle(req("GET", "/collections/docs/documents/a"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("red apple pie"), std::string::npos);
    r = api_->handle(req("POST", "/collections/docs/search",
                         R"({"field": "body", "text": "apple", "k": 5, "filter": {"field": "year", "range": {"gte": 2005}}})"));
    ASSERT_EQ(r.status, 200) << r.body;
    auto v = json::parse(r.body);
    ASSERT_TRUE(v);
    ASSERT_EQ(v->find("hits")->as_array().size(), 1u);
    EXPECT_EQ(v->find("hits")->as_array()[0].find("id")->as_string(), "b");
    r = api_->handle(req("POST", "/collections/docs/search",
                         R"({"queries": [{"field": "body", "text": "red"}, {"field": "emb", "vector": [0, 0, 1]}], "k": 2,
                             "filter": {"not": {"field": "tag", "in": ["fruit"]}}, "fields": ["year"]})"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"c\""), std::string::npos);
    EXPECT_EQ(r.body.find("red car"), std::string::npos);  // only the requested fields
    r = api_->handle(req("POST", "/collections/docs/search", R"({"field": "sp", "sparse": {"car": 1}, "k": 3})"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"score\":2"), std::string::npos) << r.body;
    // NDJSON batch, delete, get 404.
    auto nd = req("POST", "/collections/docs/documents", "{\"id\": \"d\", \"body\": \"blue\"}\n{\"id\": \"e\", \"body\": \"teal\"}\n");
    nd.content_type = "application/x-ndjson";
    EXPECT_EQ(api_->handle(nd).status, 200);
    EXPECT_EQ(api_->handle(req("DELETE", "/collections/docs/documents/d")).status, 200);
    EXPECT_EQ(api_->handle(req("GET", "/collections/docs/documents/d")).status, 404);
    EXPECT_EQ(api_->handle(req("POST", "/collections/docs/documents/delete", R"({"ids": ["e", "zz"]})")).status, 200);
    // Ids with '/' (or any byte) are reachable percent-encoded: segments are decoded after splitting.
    EXPECT_EQ(api_->handle(req("POST", "/collections/docs/documents", R"([{"id": "x/y z", "body": "slash"}])")).status, 200);
    r = api_->handle(req("GET", "/collections/docs/documents/x%2Fy%20z"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("slash"), std::string::npos);
    EXPECT_EQ(api_->handle(req("DELETE", "/collections/docs/documents/x%2fy%20z")).status, 200);
    EXPECT_EQ(api_->handle(req("GET", "/collections/docs/documents/x%2Fy%20z")).status, 404);
    EXPECT_EQ(api_->handle(req("GET", "/collections/docs/documents/%zz")).status, 404);  // kept literally
    r = api_->handle(req("GET", "/metrics"));
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("quiver_collection_documents{collection=\"docs\"} 3"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("quiver_http_request_duration_seconds_bucket"), std::string::npos);
    // A vector field with an encoder takes text in documents and queries.
    ASSERT_EQ(api_->handle(req("PUT", "/collections/enc", R"({"fields": [{"name": "body", "type": "text"},
        {"name": "v", "type": "vector", "dim": 32, "index": "flat", "encoder": "hashing", "sources": ["body"]}]})")).status, 201);
    ASSERT_EQ(api_->handle(req("POST", "/collections/enc/documents",
                               R"([{"id": "1", "body": "quiet river stones"}, {"id": "2", "body": "loud city trains"},
                                   {"id": "3", "v": "purple moon"}])")).status, 200);
    r = api_->handle(req("POST", "/collections/enc/search", R"({"field": "v", "text": "city trains", "k": 1})"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"id\":\"2\""), std::string::npos) << r.body;
    r = api_->handle(req("POST", "/collections/enc/search", R"({"field": "v", "text": "moon purple", "k": 1})"));
    EXPECT_NE(r.body.find("\"id\":\"3\""), std::string::npos) << r.body;
    EXPECT_EQ(api_->handle(req("DELETE", "/collections/docs")).status, 200);
    EXPECT_EQ(api_->handle(req("GET", "/collections/docs")).status, 404);
}

TEST_F(ApiTest, BadInputGetsJson4xx) {
    struct Case {
        ApiRequest request;
        int status;
    };
    const std::string big(70000, ' ');
    std::string many = "[";
    for (int i = 0; i < 101; ++i) many += std::string(i ? "," : "") + "{\"id\": \"x" + std::to_string(i) + "\"}";
    many += "]";
    const std::vector<Case> cases = {
        {req("POST", "/collections/docs/documents", "[{\"id\": \"a\", "), 400},                        // malformed JSON
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "emb": [1, 2]}])"), 422},          // wrong dimension
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "emb": [1, NaN, 2]}])"), 400},     // NaN
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "emb": [1, 1e999, 2]}])"), 400},   // overflow
        {req("POST", "/collections/docs/search", R"({"field": "emb", "vector": [1, 2]})"), 400},       // wrong dimension
        // Finite, but L2 distances to it overflow float32 (an HNSW search with such a vector once
        // wrote past its beam and crashed the server): a norm above 9.2e18 is refused.
        {req("POST", "/collections/docs/search", R"({"field": "emb", "vector": [1e30, 1e30, 1e30]})"), 400},
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "emb": [1e19, 0, 0]}])"), 422},
        {req("POST", "/collections/docs/search", R"({"field": "nope", "text": "x"})"), 400},           // unknown field
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "colour": "red"}])"), 422},        // unknown field
        {req("POST", "/collections/docs/search", R"({"field": "body", "text": "x", "filter": {"field": "nope", "eq": 1}})"), 400},
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "year": "x"}])"), 422},            // wrong type
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "sp": {"x": -1}}])"), 422},        // negative weight
        {req("POST", "/collections/docs/search", R"({"field": "sp", "vector": [1, 2, 3]})"), 400},
        {req("POST", "/collections/nope/search", R"({"field": "body", "text": "x"})"), 404},           // unknown collection
        {req("GET", "/collections/nope"), 404},
        {req("POST", "/collections/docs/documents", "[{\"id\": \"a\", \"body\": \"\xff\xfe\"}]"), 400},   // invalid UTF-8
        {req("PUT", "/collections/../x", kSchema), 400},                                              // traversal
        {req("PUT", "/collections/..", kSchema), 400},
        {req("GET", "/collections/\xff"), 400},
        {req("PUT", "/collections/docs", kSchema), 409},                                              // exists
        {req("PUT", "/collections/other", R"({"fields": [{"name": "v", "type": "vector", "dim": 0}]})"), 400},
        {req("PUT", "/collections/other", R"({"fields": []})"), 400},
        {req("POST", "/collections/docs/documents", big), 413},                                       // oversized body
        {req("POST", "/collections/docs/documents", many), 413},                                      // batch limit
        {req("POST", "/collections/docs/search", R"({"field": "body", "text": "x", "k": 0})"), 400},
        {req("POST", "/collections/docs/search", R"({"field": "body", "text": "x", "k": 100000})"), 400},
        {req("POST", "/collections/docs/search", ""), 400},
        {req("GET", "/nowhere"), 404},
        {req("PATCH", "/collections/docs"), 405},
    };
    for (const Case& c : cases) {
        const ApiResponse r = api_->handle(c.request);
        EXPECT_EQ(r.status, c.status) << c.request.method << " " << c.request.path << " " << c.request.body.substr(0, 80)
                                      << " -> " << r.body;
        EXPECT_FALSE(error_code(r).empty());
    }
    EXPECT_EQ(api_->handle(req("GET", "/collections/docs/documents/a")).status, 200);  // still serving
}

// Parses a 200 response.
json::Value ok_body(const ApiResponse& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    auto v = json::parse(r.body);
    EXPECT_TRUE(v) << r.body;
    return v ? *v : json::Value();
}

std::vector<std::string> hit_ids(const json::Value& v) {
    std::vector<std::string> out;
    for (const auto& h : v.find("hits")->as_array()) out.push_back(h.find("id")->as_string());
    return out;
}

// Vector fields with "quantization" and "on_disk": accepted, echoed, validated; stats report the memory.
TEST_F(ApiTest, QuantizedVectorFieldsInTheSchema) {
    auto r = api_->handle(req("PUT", "/v1/collections/q", R"({"fields": [
        {"name": "g", "type": "vector", "dim": 8, "quantization": {"codec": "sq8", "rescore": 50}, "on_disk": true},
        {"name": "f", "type": "vector", "dim": 8, "index": "flat", "metric": "l2",
         "quantization": {"codec": "pq4x8", "nlist": 4, "nprobe": 2}}]})"));
    ASSERT_EQ(r.status, 201) << r.body;
    auto info = ok_body(api_->handle(req("GET", "/v1/collections/q")));
    const auto& fields = info.find("schema")->find("fields")->as_array();
    ASSERT_EQ(fields.size(), 2u);
    EXPECT_EQ(fields[0].find("quantization")->find("codec")->as_string(), "sq8");
    EXPECT_EQ(fields[0].find("quantization")->find("rescore")->as_int(), 50);
    EXPECT_TRUE(fields[0].find("on_disk")->as_bool());
    EXPECT_EQ(fields[1].find("quantization")->find("codec")->as_string(), "pq4x8");
    EXPECT_EQ(fields[1].find("quantization")->find("nlist")->as_int(), 4);
    EXPECT_EQ(fields[1].find("quantization")->find("nprobe")->as_int(), 2);
    EXPECT_EQ(fields[1].find("on_disk"), nullptr);
    EXPECT_EQ(info.find("stats")->find("vector_memory_bytes")->as_int(), 0);
    EXPECT_EQ(info.find("stats")->find("vector_disk_bytes")->as_int(), 0);
    for (const char* bad : {
             R"({"name": "v", "type": "vector", "dim": 8, "on_disk": true})",                       // no codes
             R"({"name": "v", "type": "vector", "dim": 8, "quantization": {"codec": "pq3x8"}})",     // 3 does not divide 8
             R"({"name": "v", "type": "vector", "dim": 8, "quantization": {"codec": "zip"}})",
             R"({"name": "v", "type": "vector", "dim": 8, "quantization": {"codec": "pq4x4"}})",     // fast-scan on hnsw
             R"({"name": "v", "type": "vector", "dim": 8, "quantization": {"codec": "none"}})",
             R"({"name": "v", "type": "vector", "dim": 8, "quantization": {"rescore": 5}})",         // no codec
             R"({"name": "v", "type": "vector", "dim": 8, "quantization": {"codec": "sq8", "nlist": 4}})",  // hnsw
             R"({"name": "v", "type": "vector", "dim": 8, "quantization": {"codec": "sq8", "level": 4}})",
             R"({"name": "v", "type": "vector", "dim": 8, "quantization": "sq8"})",
             R"({"name": "v", "type": "vector", "dim": 8, "quantization": {"codec": "sq8"}, "on_disk": 1})",
             R"({"name": "t", "type": "text", "on_disk": true})"}) {
        r = api_->handle(req("PUT", "/v1/collections/bad", std::string(R"({"fields": [)") + bad + "]}"));
        EXPECT_EQ(r.status, 400) << bad << " -> " << r.body;
    }
}

TEST_F(ApiTest, V1PathsIdsFieldsAndPartialUpdates) {
    // Integer ids are stored as their decimal string.
    ASSERT_EQ(api_->handle(req("POST", "/v1/collections/docs/documents", R"([{"id": 7, "body": "seven", "year": 7}])")).status, 200);
    auto d = ok_body(api_->handle(req("GET", "/v1/collections/docs/documents/7")));
    EXPECT_EQ(d.find("id")->as_string(), "7");
    // Vectors only on request; fields select.
    d = ok_body(api_->handle(req("GET", "/v1/collections/docs/documents/a")));
    EXPECT_EQ(d.find("emb"), nullptr);
    EXPECT_NE(d.find("body"), nullptr);
    auto with = req("GET", "/v1/collections/docs/documents/a");
    with.query = "with_vectors=true";
    d = ok_body(api_->handle(with));
    ASSERT_NE(d.find("emb"), nullptr);
    EXPECT_EQ(d.find("emb")->as_array().size(), 3u);
    auto some = req("GET", "/v1/collections/docs/documents/a");
    some.query = "fields=year%2Cemb";
    d = ok_body(api_->handle(some));
    EXPECT_EQ(json::dump(d), R"({"id":"a","emb":[1,0,0],"year":2001})");
    some.query = "fields=nope";
    EXPECT_EQ(api_->handle(some).status, 400);
    some.query = "colour=red";
    EXPECT_EQ(api_->handle(some).status, 400);
    // Patch merges; null removes; the rest stays.
    ASSERT_EQ(api_->handle(req("PATCH", "/v1/collections/docs/documents/a", R"({"year": 1999, "tag": null})")).status, 200);
    with.query = "with_vectors=true";
    d = ok_body(api_->handle(with));
    EXPECT_EQ(json::dump(d), R"({"id":"a","body":"red apple pie","emb":[1,0,0],"year":1999})");
    EXPECT_EQ(api_->handle(req("PATCH", "/v1/collections/docs/documents/zz", R"({"year": 1})")).status, 404);
    EXPECT_EQ(api_->handle(req("PATCH", "/v1/collections/docs/documents/a", R"({"id": "b"})")).status, 400);
    EXPECT_EQ(api_->handle(req("PATCH", "/v1/collections/docs/documents/a", R"({"emb": [1]})")).status, 422);
    // Batch patch: all or nothing.
    EXPECT_EQ(api_->handle(req("PATCH", "/v1/collections/docs/documents", R"([{"id": "b", "year": 1}, {"id": "nope", "year": 2}])")).status, 404);
    EXPECT_EQ(ok_body(api_->handle(req("GET", "/v1/collections/docs/documents/b"))).find("year")->as_number(), 2010);
    auto up = ok_body(api_->handle(req("PATCH", "/v1/collections/docs/documents", R"([{"id": "b", "year": 1}, {"id": 7, "tag": "n"}])")));
    EXPECT_EQ(up.find("updated")->as_number(), 2);
    EXPECT_EQ(ok_body(api_->handle(req("GET", "/v1/collections/docs/documents/7"))).find("tag")->as_string(), "n");
    // Search hits carry no vectors unless asked.
    auto hits = ok_body(api_->handle(req("POST", "/v1/collections/docs/search", R"({"field": "body", "text": "car"})")));
    EXPECT_EQ(hits.find("hits")->as_array()[0].find("fields")->find("emb"), nullptr);
    hits = ok_body(api_->handle(req("POST", "/v1/collections/docs/search", R"({"field": "body", "text": "car", "with_vectors": true})")));
    EXPECT_NE(hits.find("hits")->as_array()[0].find("fields")->find("emb"), nullptr);
    EXPECT_NE(hits.find("hits")->as_array()[0].find("fields")->find("sp"), nullptr);
}

TEST_F(ApiTest, PagesCountScrollDeleteByFilterAndBatch) {
    std::string docs = "[";
    for (int i = 0; i < 40; ++i) {
        docs += std::string(i ? "," : "") + R"({"id": "p)" + std::to_string(100 + i) + R"(", "body": "page words )" +
                std::string(static_cast<std::size_t>(i % 5 + 1), 'x') + R"(", "year": )" + std::to_string(1980 + i) + "}";
    }
    docs += "]";
    ASSERT_EQ(api_->handle(req("POST", "/v1/collections/docs/documents", docs)).status, 200);
    const std::string q = R"("field": "body", "text": "page words", "fields": [])";
    auto all = ok_body(api_->handle(req("POST", "/v1/collections/docs/search", "{" + q + R"(, "limit": 40})")));
    const auto want = hit_ids(all);
    ASSERT_EQ(want.size(), 40u);
    std::vector<std::string> paged, cursored;
    for (int off = 0; off < 40; off += 6) {
        auto page = ok_body(api_->handle(req("POST", "/v1/collections/docs/search",
                                             "{" + q + R"(, "limit": 6, "offset": )" + std::to_string(off) + "}")));
        for (const auto& id : hit_ids(page)) paged.push_back(id);
    }
    EXPECT_EQ(paged, want);
    std::string after;
    for (;;) {
        auto page = ok_body(api_->handle(req("POST", "/v1/collections/docs/search",
                                             "{" + q + R"(, "limit": 7)" + (after.empty() ? "" : ", \"search_after\": " + after) + "}")));
        for (const auto& id : hit_ids(page)) cursored.push_back(id);
        const json::Value* next = page.find("next_search_after");
        ASSERT_NE(next, nullptr);
        if (next->is_null()) break;
        after = json::dump(*next);
    }
    EXPECT_EQ(cursored, want);
    // score_threshold keeps exactly the hits at or above it.
    const double cut = all.find("hits")->as_array()[9].find("score")->as_number();
    char body[256];
    std::snprintf(body, sizeof body, R"({"field": "body", "text": "page words", "limit": 40, "score_threshold": %.17g})", cut);
    auto kept = ok_body(api_->handle(req("POST", "/v1/collections/docs/search", body)));
    std::size_t expect_kept = 0;
    for (const auto& h : all.find("hits")->as_array()) expect_kept += h.find("score")->as_number() >= cut ? 1 : 0;
    EXPECT_EQ(kept.find("hits")->as_array().size(), expect_kept);
    // Filter-only: id order.
    auto fo = ok_body(api_->handle(req("POST", "/v1/collections/docs/search",
                                       R"({"filter": {"field": "year", "range": {"gte": 2015}}, "limit": 3, "fields": []})")));
    EXPECT_EQ(hit_ids(fo), (std::vector<std::string>{"c", "p135", "p136"}));
    // Count.
    EXPECT_EQ(ok_body(api_->handle(req("POST", "/v1/collections/docs/count"))).find("count")->as_number(), 43);
    EXPECT_EQ(ok_body(api_->handle(req("POST", "/v1/collections/docs/count", R"({"filter": {"field": "year", "range": {"lt": 1990}}})")))
                  .find("count")->as_number(), 10);
    // Scroll: every id once, in order.
    std::vector<std::string> scrolled;
    std::string cursor = "null";
    for (;;) {
        auto page = ok_body(api_->handle(req("POST", "/v1/collections/docs/scroll", R"({"limit": 8, "fields": [], "cursor": )" + cursor + "}")));
        for (const auto& d : page.find("documents")->as_array()) {
            EXPECT_EQ(d.as_object().size(), 1u);
            scrolled.push_back(d.find("id")->as_string());
        }
        if (page.find("next_cursor")->is_null()) break;
        cursor = json::dump(*page.find("next_cursor"));
    }
    ASSERT_EQ(scrolled.size(), 43u);
    EXPECT_TRUE(std::is_sorted(scrolled.begin(), scrolled.end()));
    // Batch: in order, same as single searches.
    auto batch = ok_body(api_->handle(req("POST", "/v1/collections/docs/search/batch",
                                          R"({"searches": [{"field": "body", "text": "car"}, {"field": "emb", "vector": [0, 1, 0], "limit": 1}, {"filter": {"field": "tag", "eq": "fruit"}}]})")));
    const auto& results = batch.find("results")->as_array();
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(hit_ids(results[0]), (std::vector<std::string>{"c"}));
    EXPECT_EQ(hit_ids(results[1]), (std::vector<std::string>{"b"}));
    EXPECT_EQ(hit_ids(results[2]), (std::vector<std::string>{"a", "b"}));
    auto bad = api_->handle(req("POST", "/v1/collections/docs/search/batch", R"({"searches": [{}, {"field": "nope", "text": "x"}]})"));
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("search 1: unknown field 'nope'"), std::string::npos) << bad.body;
    // Delete by filter.
    auto del = ok_body(api_->handle(req("POST", "/v1/collections/docs/documents/delete", R"({"filter": {"field": "year", "range": {"lt": 1990}}})")));
    EXPECT_EQ(del.find("deleted")->as_number(), 10);
    EXPECT_EQ(ok_body(api_->handle(req("POST", "/v1/collections/docs/count"))).find("count")->as_number(), 33);
    EXPECT_EQ(api_->handle(req("POST", "/v1/collections/docs/documents/delete", R"({"ids": ["a"], "filter": {"field": "tag", "eq": "x"}})")).status, 400);
    del = ok_body(api_->handle(req("POST", "/v1/collections/docs/documents/delete", R"({"ids": [7, "p139", "zz"]})")));
    EXPECT_EQ(del.find("deleted")->as_number(), 1);
}

TEST_F(ApiTest, FusionWeightsChangeTheOrder) {
    // "red" by BM25 ranks a and c; the vector [0, 1, 0] ranks b first. Weights pick the winner.
    auto top = [&](const std::string& body) { return hit_ids(ok_body(api_->handle(req("POST", "/v1/collections/docs/search", body))))[0]; };
    const std::string clauses = R"("queries": [{"field": "body", "text": "red", "weight": %W1%}, {"field": "emb", "vector": [0, 1, 0], "weight": %W2%}])";
    auto with = [&](const std::string& w1, const std::string& w2, const std::string& fusion) {
        std::string c = clauses;
        c.replace(c.find("%W1%"), 4, w1);
        c.replace(c.find("%W2%"), 4, w2);
        return "{" + c + R"(, "fusion": )" + fusion + R"(, "limit": 3, "fields": []})";
    };
    EXPECT_EQ(top(with("0", "1", R"({"method": "rrf"})")), "b");
    EXPECT_NE(top(with("1", "0", R"({"method": "rrf"})")), "b");
    for (const char* norm : {"min_max", "z_score", "dbsf"}) {
        const std::string f = std::string(R"({"method": "convex", "normalization": ")") + norm + "\"}";
        EXPECT_EQ(top(with("0.1", "0.9", f)), "b") << norm;
        EXPECT_NE(top(with("0.9", "0.1", f)), "b") << norm;
    }
    // Hand-computed RRF with k = 0 and weights 1, 2: b = 2/1 (vector rank 1), BM25 ranks "red" hits 1 and 2.
    auto r = ok_body(api_->handle(req("POST", "/v1/collections/docs/search", with("1", "2", R"({"method": "rrf", "k": 0})"))));
    EXPECT_EQ(r.find("hits")->as_array()[0].find("score")->as_number(), 2.0 + 0.0);
}

TEST_F(ApiTest, UnknownKeysAreNamedAndErrorsUseTheCodeSet) {
    struct Case {
        std::string method, path, body, key;
    };
    const std::vector<Case> cases = {
        {"POST", "/v1/collections/docs/search", R"({"field": "body", "text": "x", "limt": 3})", "limt"},
        {"POST", "/v1/collections/docs/search", R"({"queries": [{"field": "body", "text": "x", "boost": 2}]})", "boost"},
        {"POST", "/v1/collections/docs/search", R"({"queries": [{"field": "body", "text": "x"}], "field": "body"})", "field"},
        {"POST", "/v1/collections/docs/search", R"({"field": "body", "text": "x", "fusion": {"method": "rrf", "alpha": 1}})", "alpha"},
        {"POST", "/v1/collections/docs/search", R"({"field": "body", "text": "x", "filter": {"field": "year", "eq": 1, "op": 2}})", "op"},
        {"POST", "/v1/collections/docs/search", R"({"filter": {"and": [{"field": "year", "range": {"gte": 1, "lt": 2, "ne": 3}}]}})", "ne"},
        {"POST", "/v1/collections/docs/count", R"({"filter": {"field": "tag", "eq": "x"}, "exact": true})", "exact"},
        {"POST", "/v1/collections/docs/scroll", R"({"offset": 2})", "offset"},
        {"POST", "/v1/collections/docs/search/batch", R"({"searches": [], "parallel": true})", "parallel"},
        {"POST", "/v1/collections/docs/documents/delete", R"({"ids": ["a"], "wait": true})", "wait"},
        {"POST", "/v1/collections/docs/flush", R"({"wait": true})", "wait"},
        {"PUT", "/v1/collections/n1", R"({"fields": [{"name": "t", "type": "text"}], "shards": 2})", "shards"},
        {"PUT", "/v1/collections/n1", R"({"fields": [{"name": "t", "type": "text", "analyzer": "en"}]})", "analyzer"},
        {"PUT", "/v1/collections/n1", R"({"fields": [{"name": "t", "type": "keyword", "indexed": true}]})", "indexed"},
        {"PUT", "/v1/collections/n1", R"({"fields": [{"name": "t", "type": "text"}], "bm25": {"k1": 1, "k3": 2}})", "k3"},
    };
    for (const auto& c : cases) {
        auto r = api_->handle(req(c.method, c.path, c.body));
        EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
        EXPECT_EQ(error_code(r), "invalid_argument");
        EXPECT_NE(r.body.find("'" + c.key + "'"), std::string::npos) << r.body;
    }
    auto with_query = req("GET", "/v1/collections");
    with_query.query = "limit=5";
    auto q = api_->handle(with_query);
    EXPECT_EQ(q.status, 400);
    EXPECT_NE(q.body.find("'limit'"), std::string::npos) << q.body;
    // The code set.
    auto text_plain = req("POST", "/v1/collections/docs/search", R"({"field": "body", "text": "x"})");
    text_plain.content_type = "text/plain";
    auto r = api_->handle(text_plain);
    EXPECT_EQ(r.status, 415);
    EXPECT_EQ(error_code(r), "unsupported_media_type");
    text_plain.content_type = "application/x-www-form-urlencoded";
    EXPECT_EQ(api_->handle(text_plain).status, 415);
    text_plain.content_type = "Application/JSON; charset=utf-8";
    EXPECT_EQ(api_->handle(text_plain).status, 200);
    r = api_->handle(req("PUT", "/v1/collections/docs", kSchema));
    EXPECT_EQ(error_code(r), "conflict");
    r = api_->handle(req("POST", "/v1/collections/docs/documents", R"([{"id": "a", "year": "x"}])"));
    EXPECT_EQ(r.status, 422);
    EXPECT_EQ(error_code(r), "unprocessable");
    r = api_->handle(req("POST", "/v1/collections/docs/documents", std::string(70000, ' ')));
    EXPECT_EQ(error_code(r), "payload_too_large");
    r = api_->handle(req("GET", "/v1/collections/docs/search"));
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(error_code(r), "method_not_allowed");
    r = api_->handle(req("GET", "/v1/collections/nope"));
    EXPECT_EQ(error_code(r), "not_found");
    // A POST with no body works where no body is needed.
    EXPECT_EQ(api_->handle(req("POST", "/v1/collections/docs/flush")).status, 200);
    EXPECT_EQ(api_->handle(req("POST", "/v1/collections/docs/optimize")).status, 200);
    EXPECT_EQ(api_->handle(req("POST", "/v1/collections/docs/count")).status, 200);
    EXPECT_EQ(api_->handle(req("POST", "/v1/collections/docs/scroll")).status, 200);
    EXPECT_EQ(api_->handle(req("POST", "/v1/collections/docs/search")).status, 400);
}

TEST_F(ApiTest, RequestIdsAreEchoedOrGeneratedAndLogged) {
    std::vector<std::string> lines;
    std::mutex mu;
    api_->set_access_log([&](const std::string& l) {
        std::lock_guard lock(mu);
        lines.push_back(l);
    });
    auto r = req("GET", "/v1/collections");
    r.request_id = "abc-123";
    EXPECT_EQ(api_->handle(r).request_id, "abc-123");
    r.request_id = "";
    const auto generated = api_->handle(r).request_id;
    EXPECT_EQ(generated.size(), 16u);
    EXPECT_NE(api_->handle(r).request_id, generated);
    r.request_id = "bad id\n";
    EXPECT_EQ(api_->handle(r).request_id.size(), 16u);
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[0].rfind("abc-123 GET /v1/collections 200 ", 0), 0u) << lines[0];
    EXPECT_EQ(lines[1].rfind(generated + " GET", 0), 0u) << lines[1];
}

TEST(ApiErrors, MessagesNameNoServerPaths) {
    testing::TempDir dir;
    auto store = engine::Store::open(dir.path());
    ASSERT_TRUE(store);
    Api api(**store, "");
    ASSERT_EQ(api.handle(req("PUT", "/v1/collections/c", kSchema)).status, 201);
    auto c = (*store)->get("c");
    ASSERT_TRUE(c);
    (*c)->close();  // later writes fail with a message naming the collection's directory
    auto r = api.handle(req("POST", "/v1/collections/c/documents", R"([{"id": "a", "body": "x"}])"));
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_EQ(error_code(r), "conflict");
    EXPECT_EQ(r.body.find(dir.path()), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("<data>/c"), std::string::npos) << r.body;
}

TEST(ApiKey, RequiredEverywhereButHealthz) {
    testing::TempDir dir;
    auto store = engine::Store::open(dir.path());
    ASSERT_TRUE(store);
    Api api(**store, "s3cret");
    EXPECT_EQ(api.handle(req("GET", "/healthz")).status, 200);
    auto missing = api.handle(req("GET", "/collections"));
    EXPECT_EQ(missing.status, 401);
    EXPECT_EQ(error_code(missing), "unauthorized");
    auto wrong = req("GET", "/metrics");
    wrong.authorization = "Bearer nope";
    EXPECT_EQ(api.handle(wrong).status, 401);
    auto right = req("GET", "/collections");
    right.authorization = "Bearer s3cret";
    EXPECT_EQ(api.handle(right).status, 200);
    auto header = req("GET", "/collections");
    header.api_key = "s3cret";
    EXPECT_EQ(api.handle(header).status, 200);
}

// One raw HTTP/1.1 exchange on a fresh connection; returns the response text.
std::string raw_exchange(int port, const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return "";
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

TEST(Server, BodilessPostsContentTypesAndRequestIds) {
    testing::TempDir dir;
    auto store = engine::Store::open(dir.path());
    ASSERT_TRUE(store);
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    auto srv = Server::bind(**store, o);
    ASSERT_TRUE(srv) << srv.error().to_string();
    std::thread t([&] { (void)(*srv)->run(); });
    httplib::Client cli("127.0.0.1", (*srv)->port());
    cli.set_read_timeout(60, 0);
    for (int i = 0; i < 100 && !cli.Get("/v1/healthz"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(cli.Put("/v1/collections/c", kSchema, "application/json")->status, 201);
    // curl -X POST URL: no Content-Length, no body.
    const std::string flushed = raw_exchange((*srv)->port(), "POST /v1/collections/c/flush HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                             "Connection: close\r\n\r\n");
    EXPECT_EQ(flushed.rfind("HTTP/1.1 200", 0), 0u) << flushed;
    EXPECT_NE(flushed.find("{\"documents\":0}"), std::string::npos) << flushed;
    EXPECT_NE(flushed.find("X-Request-Id: "), std::string::npos) << flushed;
    // A 1 MB JSON body works with the JSON content type; curl's default form type gets 415 (not 413).
    std::string docs = "[";
    for (int i = 0; i < 2000; ++i) {
        docs += std::string(i ? "," : "") + R"({"id": "d)" + std::to_string(i) + R"(", "body": ")" + std::string(480, 'w') + "\"}";
    }
    docs += "]";
    ASSERT_GT(docs.size(), 1000000u);
    auto r = cli.Post("/v1/collections/c/documents", docs, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body.substr(0, 200);
    const std::string form = "--x\r\nContent-Disposition: form-data; name=\"docs\"\r\n\r\n" + docs + "\r\n--x--\r\n";
    for (const char* type : {"application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"}) {
        r = cli.Post("/v1/collections/c/documents", type[0] == 'm' ? form : docs, type);
        ASSERT_TRUE(r) << type;
        EXPECT_EQ(r->status, 415) << type << ": " << r->body;
        EXPECT_EQ(error_code(ApiResponse{r->status, r->body, "", ""}), "unsupported_media_type");
    }
    // The request id is echoed in a header.
    r = cli.Get("/v1/collections", httplib::Headers{{"X-Request-Id", "req-7"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->get_header_value("X-Request-Id"), "req-7");
    r = cli.Post("/v1/collections/c/count", "", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, R"({"count":2000})");
    (*srv)->stop();
    t.join();
}

TEST(Server, SocketRoundTripAndLimits) {
    testing::TempDir dir;
    auto store = engine::Store::open(dir.path());
    ASSERT_TRUE(store);
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    o.api_key = "k";
    o.limits.max_body_bytes = 4096;
    auto srv = Server::bind(**store, o);
    ASSERT_TRUE(srv) << srv.error().to_string();
    std::thread t([&] { (void)(*srv)->run(); });
    httplib::Client cli("127.0.0.1", (*srv)->port());
    cli.set_connection_timeout(5);
    for (int i = 0; i < 100 && !cli.Get("/healthz"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    httplib::Headers auth = {{"Authorization", "Bearer k"}};
    auto r = cli.Put("/collections/c", auth, kSchema, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 201) << r->body;
    r = cli.Post("/collections/c/documents", auth, R"([{"id": "x y", "body": "hello world"}])", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    r = cli.Get("/collections/c/documents/x%20y", auth);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    r = cli.Post("/collections/c/documents", auth, std::string(10000, '['), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_NE(r->body.find("\"error\""), std::string::npos) << r->body;
    r = cli.Get("/collections/..%2Fx", auth);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    r = cli.Get("/collections");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    r = cli.Post("/collections/c/search", auth, R"({"field": "body", "text": "hello"})", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->body.find("x y"), std::string::npos);
    // Raw garbage on the socket: the connection gets an HTTP error (JSON body), the server keeps serving.
    for (const std::string& garbage : {std::string("GARBAGE\r\n\r\n"), std::string("GET /healthz HTTP/9.9\r\nX: \xff\r\n\r\n"),
                                      std::string("POST /collections/c/documents HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
                                      std::string(5000, 'A') + "\r\n\r\n"}) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_GE(fd, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>((*srv)->port()));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ASSERT_EQ(::send(fd, garbage.data(), garbage.size(), 0), static_cast<ssize_t>(garbage.size()));
        ::shutdown(fd, SHUT_WR);
        char buf[512];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        ::close(fd);
        if (n > 0) {
            EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)).rfind("HTTP/", 0), 0u);
        }
        auto ok = cli.Get("/healthz");
        ASSERT_TRUE(ok);
        EXPECT_EQ(ok->status, 200);
    }
    (*srv)->stop();
    t.join();
}

TEST(ApiFilters, PayloadIndexesNewOperatorsExplainAndLimits) {
    testing::TempDir dir;
    engine::CollectionOptions o;
    o.background_merge = false;
    auto s = engine::Store::open(dir.path(), o);
    ASSERT_TRUE(s);
    ApiLimits l;
    l.max_body_bytes = 4 << 20;
    Api api(**s, "", l);
    auto r = api.handle(req("PUT", "/collections/f", R"({"fields": [{"name": "body", "type": "text"},
        {"name": "tag", "type": "keyword", "index": true}, {"name": "n", "type": "integer", "index": true},
        {"name": "tags", "type": "keyword_list"}, {"name": "emb", "type": "vector", "dim": 2, "metric": "l2"}]})"));
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_NE(r.body.find(R"("name":"tag","type":"keyword","index":true)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("name":"tags","type":"keyword_list"})"), std::string::npos) << r.body;  // no index
    std::string docs = "[";
    for (int i = 0; i < 300; ++i) {
        docs += std::string(i ? "," : "") + R"({"id": ")" + std::to_string(i) + R"(", "body": "w )" +
                (i % 2 ? "odd" : "even") + R"(", "tag": "t)" + std::to_string(i % 10) + R"(", "n": )" + std::to_string(i) +
                (i % 3 ? R"(, "tags": ["x", "y)" + std::to_string(i % 4) + "\"]" : std::string()) + R"(, "emb": [)" +
                std::to_string(i) + ", 0]}";
    }
    docs += "]";
    ASSERT_EQ(api.handle(req("POST", "/collections/f/documents", docs)).status, 200);
    // ne + prefix + exists, explained; the vector search takes the exact scan of 4 matches.
    r = api.handle(req("POST", "/collections/f/search", R"({"field": "emb", "vector": [100, 0], "k": 10, "fields": [],
        "explain": true, "filter": {"and": [{"field": "tag", "prefix": "t1"}, {"field": "n", "ne": 101},
                                            {"field": "tags", "exists": true}, {"field": "n", "range": {"lt": 160}}]}})"));
    ASSERT_EQ(r.status, 200) << r.body;
    auto v = json::parse(r.body);
    ASSERT_TRUE(v);
    std::vector<std::string> ids;
    for (const auto& h : v->find("hits")->as_array()) ids.push_back(h.find("id")->as_string());
    // n = 1, 11, ..., 151 with tags present (n % 3 != 0), minus 101, ordered by |n - 100|.
    EXPECT_EQ(ids, (std::vector<std::string>{"91", "121", "71", "131", "61", "151", "41", "31", "11", "1"})) << r.body;
    const json::Value* ex = v->find("explain");
    ASSERT_NE(ex, nullptr) << r.body;
    EXPECT_EQ(ex->find("filter")->find("matches")->as_int(), 10);
    EXPECT_GT(ex->find("filter")->find("documents_scanned")->as_int(), 0);  // tags has no index
    const auto& plans = ex->find("plans")->as_array();
    ASSERT_EQ(plans.size(), 1u);
    EXPECT_EQ(plans[0].find("strategy")->as_string(), "exact");
    EXPECT_EQ(plans[0].find("matches")->as_int(), 10);
    // Without "explain" the response has none; exists false = absent.
    r = api.handle(req("POST", "/collections/f/count", R"({"filter": {"field": "tags", "exists": false}})"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("100"), std::string::npos) << r.body;
    r = api.handle(req("POST", "/collections/f/search", R"({"field": "body", "text": "odd", "k": 3, "filter": {"field": "tag", "eq": "t3"}})"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body.find("explain"), std::string::npos);
    // Limits: 65,537 values are refused before evaluation; 65,536 work.
    std::string big = R"({"filter": {"field": "tag", "in": [)";
    for (int i = 0; i < 65536; ++i) big += (i ? ",\"v" : "\"v") + std::to_string(i) + "\"";
    r = api.handle(req("POST", "/collections/f/count", big + "]}}"));
    EXPECT_EQ(r.status, 200) << r.body.substr(0, 200);
    r = api.handle(req("POST", "/collections/f/count", big + R"(, "t1"]}})"));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(error_code(r), "invalid_argument");
    r = api.handle(req("POST", "/collections/f/search", R"({"filter": {"field": "n", "prefix": "1"}})"));
    EXPECT_EQ(r.status, 400) << r.body;  // prefix on an integer
    r = api.handle(req("POST", "/collections/f/search", R"({"filter": {"field": "n", "eq": 1, "ne": 2}})"));
    EXPECT_EQ(r.status, 400) << r.body;
    r = api.handle(req("POST", "/collections/f/search", R"({"explain": 1})"));
    EXPECT_EQ(r.status, 400) << r.body;
    r = api.handle(req("PUT", "/collections/g", R"({"fields": [{"name": "t", "type": "text", "index": true}]})"));
    EXPECT_EQ(r.status, 400) << r.body;
}

TEST(ApiFilters, AFilterOverTheWorkBudgetIs422) {
    testing::TempDir dir;
    engine::CollectionOptions o;
    o.background_merge = false;
    o.filter_budget = 100;  // the 300 documents' per-document filter tests go over it
    auto s = engine::Store::open(dir.path(), o);
    ASSERT_TRUE(s);
    Api api(**s, "", ApiLimits{});
    ASSERT_EQ(api.handle(req("PUT", "/collections/f", R"({"fields": [{"name": "body", "type": "text"},
        {"name": "tag", "type": "keyword"}]})")).status, 201);
    std::string docs = "[";
    for (int i = 0; i < 300; ++i) {
        docs += std::string(i ? "," : "") + R"({"id": ")" + std::to_string(i) + R"(", "body": "w", "tag": "t)" +
                std::to_string(i % 10) + "\"}";
    }
    docs += "]";
    ASSERT_EQ(api.handle(req("POST", "/collections/f/documents", docs)).status, 200);
    const char* bodies[] = {R"({"field": "body", "text": "w", "k": 3, "filter": {"field": "tag", "eq": "nothing"}})",
                            R"({"k": 3, "filter": {"field": "tag", "eq": "nothing"}})"};
    for (const char* body : bodies) {
        const auto r = api.handle(req("POST", "/collections/f/search", body));
        EXPECT_EQ(r.status, 422) << r.body;
        EXPECT_EQ(error_code(r), "filter_budget_exceeded") << r.body;
    }
    auto r = api.handle(req("POST", "/collections/f/count", R"({"filter": {"field": "tag", "eq": "nothing"}})"));
    EXPECT_EQ(r.status, 422) << r.body;
    r = api.handle(req("POST", "/collections/f/search/batch", std::string(R"({"searches": [)") + bodies[0] + "]}"));
    EXPECT_EQ(r.status, 422) << r.body;
    EXPECT_EQ(error_code(r), "filter_budget_exceeded") << r.body;
    // Within the budget: served.
    r = api.handle(req("POST", "/collections/f/search", R"({"field": "body", "text": "w", "k": 3})"));
    EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace quiver::server
