/// @file api.h
/// @brief The HTTP API as a transport-independent function: request in, JSON response out.
///
/// `Api::handle` owns routing, authentication, limits, JSON decoding and error mapping, so the fuzz
/// and bad-input tests exercise exactly what the socket server runs. Every route is served under
/// `/v1/...`; the same paths without `/v1` are aliases kept until the next format break
/// (docs/openapi.yaml and docs/api.md list the routes):
///   GET /healthz, GET /metrics, GET /collections, PUT|GET|DELETE /collections/{name},
///   POST|PATCH /collections/{name}/documents, POST /collections/{name}/documents/delete,
///   GET|PATCH|DELETE /collections/{name}/documents/{id}, POST /collections/{name}/search,
///   POST /collections/{name}/search/batch, POST /collections/{name}/count,
///   POST /collections/{name}/scroll, POST /collections/{name}/flush, POST /collections/{name}/optimize.
/// Every error is `{"error": {"code": ..., "message": ...}}`; status and code:
///   400 invalid_argument (malformed JSON, unknown keys, bad values), 401 unauthorized, 403 forbidden,
///   404 not_found, 405 method_not_allowed, 409 conflict, 413 payload_too_large,
///   415 unsupported_media_type, 422 unprocessable (well-formed documents the schema refuses),
///   429 rate_limited, 500 internal / data_loss, 503 unavailable, 507 insufficient_storage.
/// Messages never contain server paths.
///
/// Thread-safety: `handle` is safe to call from many threads at once.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "quiver/engine/store.h"

namespace quiver::server {

struct ApiLimits {
    std::size_t max_body_bytes = 64u << 20;  ///< larger bodies get 413
    std::size_t max_batch_docs = 10000;      ///< documents or ids per write request
    std::size_t max_k = 1000;                ///< largest search limit and scroll page
    std::size_t max_batch_searches = 100;    ///< searches per batch search
};

struct ApiRequest {
    std::string method;  ///< "GET", "PUT", "POST", "DELETE", ...
    std::string path;    ///< path as sent (percent-encoded), no query string; segments are decoded
                         ///< after splitting, so an id may contain '/' as %2F
    std::string body;
    std::string content_type;
    std::string authorization;  ///< the Authorization header ("Bearer KEY")
    std::string api_key;        ///< the X-API-Key header
    std::string query;          ///< the query string after '?', percent-encoded ("" = none)
    std::string request_id;     ///< the X-Request-Id header ("" = generate one)
};

struct ApiResponse {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::string request_id;  ///< echoed (or generated) request id; the transport sends it as X-Request-Id
};

class Api {
public:
    /// `api_key` empty = no authentication.
    Api(engine::Store& store, std::string api_key, ApiLimits limits = {});

    ApiResponse handle(const ApiRequest& request);
    /// A JSON error response (used by the transport for errors it detects itself, e.g. 413).
    static ApiResponse error_response(int status, std::string_view code, std::string_view message);
    /// An error the transport detected before reading the body of `request` (e.g. 415): like
    /// error_response, plus the request id, metrics and access log of `handle`.
    ApiResponse reject(const ApiRequest& request, int status, std::string_view code, std::string_view message);
    const ApiLimits& limits() const noexcept { return limits_; }
    /// True for the content types a request body may have: none, application/json,
    /// application/x-ndjson (and its aliases); any other gets 415.
    static bool accepts_content_type(std::string_view content_type);
    /// The request id a response carries: the client's X-Request-Id when it is 1-128 visible ASCII
    /// characters, else a new random one (transport-level answers use it too).
    static std::string request_id_for(const std::string& given);
    /// Receives one access-log line per request ("<request id> <method> <path> <status> <ms>ms"); set
    /// before serving. Empty = no access log.
    void set_access_log(std::function<void(const std::string&)> sink) { access_log_ = std::move(sink); }

private:
    ApiResponse route(const ApiRequest& request, std::string& route_label);
    /// Request id, metrics and access log of a finished request.
    void finish(const ApiRequest& request, const std::string& label, ApiResponse& response, double seconds);
    std::string metrics_text();
    void record(const std::string& label, int status, double seconds);

    engine::Store& store_;
    std::function<void(const std::string&)> access_log_;
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
