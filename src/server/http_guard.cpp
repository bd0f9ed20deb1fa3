// Request-head checks of `quiver serve`. See http_guard.h.
#include "quiver/server/http_guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace quiver::server {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool ip_literal(const std::string& h) {
    unsigned char buf[16];
    return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

bool constant_time_equal(std::string_view given, std::string_view key) {
    if (key.empty()) return false;
    unsigned char diff = given.size() == key.size() ? 0 : 1;
    for (std::size_t i = 0; i < given.size(); ++i) {
        diff |= static_cast<unsigned char>(given[i] ^ key[i % key.size()]);
    }
    return diff == 0;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

GuardReply reply(int status, std::string_view code, std::string_view message, HeaderList headers = {}) {
    return GuardReply{Api::error_response(status, code, message), std::move(headers)};
}

constexpr const char* kAllowedMethods = "GET, POST, PUT, PATCH, DELETE";
constexpr const char* kAllowedHeaders = "Content-Type, Authorization, X-API-Key, X-Request-Id";

}  // namespace

std::string host_name(std::string_view host_header) {
    std::string_view h = trim(host_header);
    if (!h.empty() && h.front() == '[') {  // [v6]:port
        const std::size_t close = h.find(']');
        return lower(close == std::string_view::npos ? h.substr(1) : h.substr(1, close - 1));
    }
    const std::size_t colon = h.find(':');
    if (colon != std::string_view::npos && h.find(':', colon + 1) == std::string_view::npos) h = h.substr(0, colon);
    while (!h.empty() && h.back() == '.') h.remove_suffix(1);  // "localhost." names the same host
    return lower(h);
}

bool host_allowed(const AccessOptions& o, std::string_view host_header) {
    if (trim(host_header).empty()) return true;  // HTTP/1.0; browsers always send Host
    const std::string h = host_name(host_header);
    if (h.empty()) return false;
    if (ip_literal(h) || h == "localhost" || h == lower(o.bound_host)) return true;
    for (const auto& a : o.allowed_hosts) {
        if (a == "*" || lower(a) == h) return true;
    }
    return false;
}

bool json_content_type(std::string_view content_type) {
    std::string_view t = content_type.substr(0, content_type.find(';'));
    const std::string media = lower(trim(t));
    return media == "application/json" || media == "application/x-ndjson";
}

bool read_only_route(std::string_view method, std::string_view path) {
    if (method == "GET" || method == "HEAD") return true;
    if (method != "POST") return false;
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    return ends_with(path, "/search") || ends_with(path, "/search/batch") || ends_with(path, "/count") ||
           ends_with(path, "/scroll");
}

HeaderList cors_headers(const AccessOptions& o, std::string_view origin) {
    if (o.cors_origin.empty() || origin.empty() || origin != o.cors_origin) return {};
    return {{"Access-Control-Allow-Origin", o.cors_origin},
            {"Vary", "Origin"},
            {"Access-Control-Expose-Headers", "X-Request-Id"}};
}

std::optional<GuardReply> check_head(const AccessOptions& o, const RequestHead& head, std::size_t max_body_bytes) {
    if (!host_allowed(o, head.host)) {
        return reply(403, "forbidden", "Host header not allowed (see quiver serve --allowed-hosts)");
    }
    const bool cors_ok = !o.cors_origin.empty() && head.origin == o.cors_origin;
    // Same-origin requests carry Origin too (e.g. a page served from this address): allowed.
    const bool same_origin = !head.origin.empty() && !head.host.empty() && head.origin == "http://" + std::string(trim(head.host));
    if (head.method == "OPTIONS") {
        if (!head.origin.empty() && !cors_ok && !same_origin) {
            return reply(403, "forbidden", "cross-origin requests are not allowed (see quiver serve --cors-origin)");
        }
        GuardReply r;
        r.response.status = 204;
        r.response.content_type.clear();
        r.headers = {{"Allow", std::string("OPTIONS, ") + kAllowedMethods}};
        if (cors_ok) {
            r.headers = cors_headers(o, head.origin);
            r.headers.emplace_back("Access-Control-Allow-Methods", kAllowedMethods);
            r.headers.emplace_back("Access-Control-Allow-Headers", kAllowedHeaders);
            r.headers.emplace_back("Access-Control-Max-Age", "600");
        }
        return r;
    }
    if (!head.origin.empty() && !cors_ok && !same_origin) {
        return reply(403, "forbidden", "cross-origin requests are not allowed (see quiver serve --cors-origin)");
    }
    HeaderList cors = cors_headers(o, head.origin);
    std::string_view path = head.path;
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    const bool health = path == "/healthz" || path == "/v1/healthz";
    if (!health && (!o.api_key.empty() || !o.read_only_api_key.empty())) {
        std::string_view given = head.api_key;
        if (given.empty() && head.authorization.rfind("Bearer ", 0) == 0) given = std::string_view(head.authorization).substr(7);
        given = trim(given);
        const bool full = constant_time_equal(given, o.api_key);
        const bool read_only = !full && constant_time_equal(given, o.read_only_api_key);
        if (!full && !read_only) {
            HeaderList h = cors;
            h.emplace_back("WWW-Authenticate", "Bearer");
            return reply(401, "unauthorized", given.empty() ? "missing API key" : "wrong API key", std::move(h));
        }
        if (read_only && !read_only_route(head.method, head.path)) {
            return reply(403, "forbidden", "this API key is read-only", cors);
        }
    }
    if (head.content_length && *head.content_length > max_body_bytes) {
        return reply(413, "payload_too_large", "request body exceeds " + std::to_string(max_body_bytes) + " bytes", cors);
    }
    if (head.has_body && !json_content_type(head.content_type)) {
        return reply(415, "unsupported_media_type",
                     "request bodies must be sent as Content-Type: application/json or application/x-ndjson", cors);
    }
    return std::nullopt;
}

}  // namespace quiver::server
