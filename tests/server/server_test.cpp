// The HTTP API: routes, bad input (each gets a JSON 4xx and the server keeps serving), API keys,
// and a socket round trip through cpp-httplib.
#include "quiver/server/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

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
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "emb": [1, 2]}])"), 400},          // wrong dimension
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "emb": [1, NaN, 2]}])"), 400},     // NaN
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "emb": [1, 1e999, 2]}])"), 400},   // overflow
        {req("POST", "/collections/docs/search", R"({"field": "emb", "vector": [1, 2]})"), 400},       // wrong dimension
        {req("POST", "/collections/docs/search", R"({"field": "nope", "text": "x"})"), 400},           // unknown field
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "colour": "red"}])"), 400},        // unknown field
        {req("POST", "/collections/docs/search", R"({"field": "body", "text": "x", "filter": {"field": "nope", "eq": 1}})"), 400},
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "year": "x"}])"), 400},            // wrong type
        {req("POST", "/collections/docs/documents", R"([{"id": "a", "sp": {"x": -1}}])"), 400},        // negative weight
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

TEST(ApiKey, RequiredEverywhereButHealthz) {
    testing::TempDir dir;
    auto store = engine::Store::open(dir.path());
    ASSERT_TRUE(store);
    Api api(**store, "s3cret");
    EXPECT_EQ(api.handle(req("GET", "/healthz")).status, 200);
    auto missing = api.handle(req("GET", "/collections"));
    EXPECT_EQ(missing.status, 401);
    EXPECT_EQ(error_code(missing), "unauthenticated");
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

}  // namespace
}  // namespace quiver::server
