/// @file http_guard.h
/// @brief The checks `quiver serve` makes on a request's head before it reads the body or routes it:
/// Host (DNS rebinding), Origin and CORS, API keys (full and read-only), content type (CSRF) and the
/// declared body size. Transport-independent, so they are unit-tested without sockets; server.cpp
/// calls `check_head` once the request line and headers are in (their total size is bounded by the
/// transport before this runs).
///
/// Order of the checks, first failure wins: Host 403 -> CORS preflight (answered here, 204/403) ->
/// foreign Origin 403 -> API key 401 (missing/wrong) or 403 (read-only key on a write) -> declared
/// body over the limit 413 -> a body without a JSON content type 415.
/// `/healthz` skips only the API key check.
///
/// Thread-safety: all functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quiver/server/api.h"

namespace quiver::server {

struct AccessOptions {
    std::string bound_host = "127.0.0.1";    ///< the address the server is bound to
    std::vector<std::string> allowed_hosts;  ///< extra Host names; "*" allows any Host
    std::string cors_origin;                 ///< the one origin allowed cross-origin access; empty = none
    std::string api_key;                     ///< empty = no authentication
    std::string read_only_api_key;           ///< empty = none; may GET and search, never write
};

/// What the transport knows once the headers are in.
struct RequestHead {
    std::string method;
    std::string path;  ///< raw path, no query string
    std::string host;  ///< the Host header ("" when absent)
    std::string origin;
    std::string content_type;
    std::string authorization;
    std::string api_key;  ///< X-API-Key
    bool has_body = false;  ///< Content-Length > 0 or a chunked body
    std::optional<std::uint64_t> content_length;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// A response decided by the guard, with any extra headers (CORS, Allow).
struct GuardReply {
    ApiResponse response;
    HeaderList headers;
};

/// The host part of a Host header value ("[::1]:6333" -> "::1", "Example.com:80" -> "example.com").
std::string host_name(std::string_view host_header);
/// True when `host_header` may address this server: absent, an IP literal (a DNS-rebinding attack needs a
/// name), "localhost", the bound host, or one of `allowed_hosts` (case-insensitive; "*" = any).
bool host_allowed(const AccessOptions& o, std::string_view host_header);
/// `application/json` or `application/x-ndjson`, with any parameters (`; charset=utf-8`).
bool json_content_type(std::string_view content_type);
/// Requests a read-only key may make: GET/HEAD, and POST to .../search, .../search/batch, .../count,
/// .../scroll (with or without the /v1 prefix).
bool read_only_route(std::string_view method, std::string_view path);
/// The response headers for an allowed cross-origin request (empty when `origin` is not the allowed one).
HeaderList cors_headers(const AccessOptions& o, std::string_view origin);

/// nullopt = go on (read the body, route the request); otherwise send this reply.
std::optional<GuardReply> check_head(const AccessOptions& o, const RequestHead& head, std::size_t max_body_bytes);

}  // namespace quiver::server
