// Monitoring routes answer while a writer is stuck in the WAL fsync (a stalled disk, as under
// fsfreeze): GET /collections, GET /collections/{name} and /metrics never take the writer lock.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "quiver/server/api.h"
#include "testing/testing.h"

namespace quiver::server {
namespace {

using namespace std::chrono_literals;

ApiRequest req(std::string method, std::string path, std::string body = "") {
    ApiRequest r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.body = std::move(body);
    r.content_type = "application/json";
    return r;
}

struct Stall {
    std::mutex mu;
    std::condition_variable cv;
    bool armed = false;
    bool stalled = false;
    bool released = false;
};

TEST(StalledWrite, MonitoringRoutesAnswerWhileAWriterIsInFsync) {
    testing::TempDir dir;
    auto stall = std::make_shared<Stall>();
    engine::CollectionOptions o;
    o.background_merge = false;
    o.wal_sync_hook = [stall]() -> Status {
        std::unique_lock lock(stall->mu);
        if (!stall->armed) return ok_status();
        stall->stalled = true;
        stall->cv.notify_all();
        stall->cv.wait(lock, [&] { return stall->released; });
        return ok_status();
    };
    auto store = engine::Store::open(dir.path(), o);
    ASSERT_TRUE(store);
    Api api(**store, "", ApiLimits{});
    ASSERT_EQ(api.handle(req("PUT", "/collections/c", R"({"fields": [{"name": "body", "type": "text"}]})")).status, 201);
    ASSERT_EQ(api.handle(req("POST", "/collections/c/documents", R"([{"id": "a", "body": "first"}])")).status, 200);
    {
        std::lock_guard lock(stall->mu);
        stall->armed = true;
    }
    auto writer = std::async(std::launch::async, [&] {
        return api.handle(req("POST", "/collections/c/documents", R"([{"id": "b", "body": "second"}])")).status;
    });
    {
        std::unique_lock lock(stall->mu);
        stall->cv.wait(lock, [&] { return stall->stalled; });
    }
    for (const char* path : {"/collections", "/collections/c", "/metrics"}) {
        auto r = std::async(std::launch::async, [&] { return api.handle(req("GET", path)); });
        ASSERT_EQ(r.wait_for(60s), std::future_status::ready) << path << " waited for the stalled writer";
        const ApiResponse resp = r.get();
        EXPECT_EQ(resp.status, 200) << path << " " << resp.body;
        if (std::string(path) == "/collections/c") {
            EXPECT_NE(resp.body.find("\"documents\":1"), std::string::npos) << resp.body;  // b is not acknowledged
        }
    }
    auto search = std::async(std::launch::async, [&] {
        return api.handle(req("POST", "/collections/c/search", R"({"field": "body", "text": "first second"})"));
    });
    ASSERT_EQ(search.wait_for(60s), std::future_status::ready);
    EXPECT_EQ(search.get().status, 200);
    EXPECT_EQ(writer.wait_for(0s), std::future_status::timeout);  // still inside its fsync
    {
        std::lock_guard lock(stall->mu);
        stall->released = true;
    }
    stall->cv.notify_all();
    EXPECT_EQ(writer.get(), 200);
    EXPECT_NE(api.handle(req("GET", "/collections/c")).body.find("\"documents\":2"), std::string::npos);
}

}  // namespace
}  // namespace quiver::server
