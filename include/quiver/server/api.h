/// @file api.h
/// @brief The HTTP API as a transport-independent function: request in, JSON response out.
///
/// `Api::handle` owns routing, authentication, limits, JSON decoding and error mapping, so the fuzz
/// and bad-input tests exercise exactly what the socket server runs. Routes (docs/openapi.yaml):
///   GET /healthz, GET /metrics, GET /collections, PUT|GET|DELETE /collections/{name},
///   POST /collections/{name}/documents (JSON array, {"documents": [...]}, or NDJSON),
///   GET|DELETE /collections/{name}/documents/{id}, POST /collections/{name}/documents/delete,
///   POST /collections/{name}/search, POST /collections/{name}/flush, POST /collections/{name}/optimize.
/// Every error is `{"error": {"code": ..., "message": ...}}` with a 4xx/5xx status:
/// kInvalidArgument 400, auth 401, kNotFound 404, kAlreadyExists 409, body/batch limits 413,
/// kResourceExhausted 507, kUnavailable 503, others 500.
///
/// Thread-safety: `handle` is safe to call from many threads at once.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "quiver/engine/store.h"

namespace quiver::server {

struct ApiLimits {
    std::size_t max_body_bytes = 64u << 20;  ///< larger bodies get 413
    std::size_t max_batch_docs = 10000;      ///< documents or ids per write request
    std::size_t max_k = 1000;
};

struct ApiRequest {
    std::string method;  ///< "GET", "PUT", "POST", "DELETE", ...
    std::string path;    ///< path as sent (percent-encoded), no query string; segments are decoded
                         ///< after splitting, so an id may contain '/' as %2F
    std::string body;
    std::string content_type;
    std::string authorization;  ///< the Authorization header ("Bearer KEY")
    std::string api_key;        ///< the X-API-Key header
};

struct ApiResponse {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
};

class Api {
public:
    /// `api_key` empty = no authentication.
    Api(engine::Store& store, std::string api_key, ApiLimits limits = {});

    ApiResponse handle(const ApiRequest& request);
    /// A JSON error response (used by the transport for errors it detects itself, e.g. 413).
    static ApiResponse error_response(int status, std::string_view code, std::string_view message);
    const ApiLimits& limits() const noexcept { return limits_; }

private:
    ApiResponse route(const ApiRequest& request, std::string& route_label);
    std::string metrics_text();
    void record(const std::string& label, int status, double seconds);

    engine::Store& store_;
    std::string api_key_;
    ApiLimits limits_;

    struct RouteStats {
        std::map<int, std::uint64_t> by_status;
        std::uint64_t count = 0;
        double seconds = 0.0;
        std::uint64_t buckets[12] = {};  // le 0.5ms .. 10s, then +Inf
    };
    std::mutex metrics_mu_;
    std::map<std::string, RouteStats> routes_;
};

}  // namespace quiver::server
