// Routing, authentication, limits and error mapping for the HTTP API. See api.h.
#include "quiver/server/api.h"

#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <random>
#include <vector>

#include "quiver/core/json.h"
#include "quiver/server/body_parser.h"
#include "quiver/server/json_codec.h"

namespace quiver::server {
namespace {

using json::Value;

constexpr double kBucketBounds[11] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0};

// Engine errors -> HTTP status and the API's error code.
std::pair<int, const char*> http_error(ErrorCode code) {
    switch (code) {
        case ErrorCode::kInvalidArgument:
        case ErrorCode::kOutOfRange: return {400, "invalid_argument"};
        case ErrorCode::kNotFound: return {404, "not_found"};
        case ErrorCode::kAlreadyExists:
        case ErrorCode::kFailedPrecondition: return {409, "conflict"};
        case ErrorCode::kResourceExhausted: return {507, "insufficient_storage"};
        case ErrorCode::kUnavailable: return {503, "unavailable"};
        case ErrorCode::kDataLoss: return {500, "data_loss"};
        default: return {500, "internal"};
    }
}

// Removes absolute paths ('/' followed by a name, starting a word) from a message: error texts from
// the storage layer name files, which a client must not see.
std::string scrub_paths(std::string_view m) {
    std::string out;
    out.reserve(m.size());
    std::size_t i = 0;
    while (i < m.size()) {
        const bool word_start = i == 0 || m[i - 1] == ' ' || m[i - 1] == '\'' || m[i - 1] == '"' || m[i - 1] == '(';
        if (m[i] == '/' && word_start && i + 1 < m.size() && m[i + 1] != ' ') {
            std::size_t j = i;
            while (j < m.size() && m[j] != ' ' && m[j] != '\'' && m[j] != '"' && m[j] != ')' && m[j] != ',') ++j;
            const std::string_view path = m.substr(i, j - i);
            const std::size_t slash = path.rfind('/');
            out += "<data>/";
            out += path.substr(slash + 1);
            i = j;
            continue;
        }
        out += m[i++];
    }
    return out;
}

ApiResponse from_error(const Error& e) {
    // A search, count or scroll whose filter is over the per-request work budget (engine FilterBudget):
    // the request itself is refused, whatever the server's state (not 507, which means a full disk).
    if (e.code() == ErrorCode::kResourceExhausted && e.message().find("filter budget exceeded") != std::string::npos) {
        return Api::error_response(422, "filter_budget_exceeded", e.message());
    }
    const auto [status, code] = http_error(e.code());
    // Caller-facing messages name the caller's own values (ids may contain '/'); the rest may name files.
    const bool callers = e.code() == ErrorCode::kInvalidArgument || e.code() == ErrorCode::kNotFound;
    return Api::error_response(status, code, callers ? e.message() : scrub_paths(e.message()));
}

// A document the schema refuses on a write route: 422 (the request itself is well-formed).
ApiResponse from_document_error(const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument) return from_error(e);
    return Api::error_response(422, "unprocessable", e.message());
}

ApiResponse bad_request(std::string message) { return Api::error_response(400, "invalid_argument", message); }

ApiResponse ok_json(const Value& v, int status = 200) {
    ApiResponse r;
    r.status = status;
    r.body = json::dump(v);
    return r;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decodes one path segment; a malformed escape is kept literally.
std::string decode_segment(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

// Splits on '/' first, then decodes each segment, so "%2F" inside an id stays inside that segment.
std::vector<std::string> split_path(const std::string& path) {
    std::vector<std::string> parts;
    std::size_t i = 0;
    while (i < path.size()) {
        if (path[i] == '/') {
            ++i;
            continue;
        }
        const std::size_t j = path.find('/', i);
        parts.push_back(decode_segment(std::string_view(path).substr(i, j == std::string::npos ? std::string::npos : j - i)));
        if (j == std::string::npos) break;
        i = j;
    }
    return parts;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
    return diff == 0 && !b.empty();
}

Result<Value> parse_body(const std::string& body) {
    if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
        return invalid_argument("request body is empty; expected a JSON object");
    }
    auto v = json::parse(body);
    if (!v) return invalid_argument("malformed JSON: " + v.error().message());
    if (!v->is_object()) return invalid_argument("the request body must be a JSON object");
    return v;
}

// An optional body: empty = {}.
Result<Value> parse_optional_body(const std::string& body) {
    if (body.find_first_not_of(" \t\r\n") == std::string::npos) return Value::object();
    return parse_body(body);
}

}  // namespace

bool Api::accepts_content_type(std::string_view ct) {
    const std::size_t semi = ct.find(';');
    std::string_view base = ct.substr(0, semi);
    while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
    std::string lower(base);
    for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return lower.empty() || lower == "application/json" || lower == "application/x-ndjson" ||
           lower == "application/jsonl" || lower == "application/json-seq" || lower == "application/ndjson";
}

namespace {

// Query-string parameters, percent-decoded ('+' is a space).
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view q) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t i = 0;
    while (i <= q.size() && !q.empty()) {
        std::size_t j = q.find('&', i);
        if (j == std::string_view::npos) j = q.size();
        std::string_view kv = q.substr(i, j - i);
        if (!kv.empty()) {
            const std::size_t eq = kv.find('=');
            std::string k(kv.substr(0, eq)), v(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
            for (char& c : v) c = c == '+' ? ' ' : c;
            out.emplace_back(decode_segment(k), decode_segment(v));
        }
        if (j == q.size()) break;
        i = j + 1;
    }
    return out;
}

std::string new_request_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    return buf;
}

// A client's X-Request-Id is echoed when it is 1-128 visible ASCII characters; otherwise a new one.
}  // namespace

std::string Api::request_id_for(const std::string& given) {
    if (given.empty() || given.size() > 128) return new_request_id();
    for (char c : given) {
        if (c <= 0x20 || c >= 0x7f) return new_request_id();
    }
    return given;
}

namespace {

Value hit_to_json(const engine::Schema& schema, const engine::SearchHit& h) {
    Value o = Value::object();
    o.set("id", Value::string(h.id));
    o.set("score", Value::number(h.score));
    if (h.relevance) o.set("relevance", Value::number(*h.relevance));
    if (h.chunk) o.set("chunk", Value::number(static_cast<double>(*h.chunk)));
    Value doc = document_to_json(schema, h.document);
    auto& fields = doc.as_object();
    if (!fields.empty()) fields.erase(fields.begin());  // the id is already there
    o.set("fields", std::move(doc));
    return o;
}

Value hits_to_json(const engine::Schema& schema, const engine::SearchRequest& r, const std::vector<engine::SearchHit>& hits) {
    Value arr = Value::array();
    for (const auto& h : hits) arr.as_array().push_back(hit_to_json(schema, h));
    Value o = Value::object();
    o.set("hits", std::move(arr));
    if (hits.size() == r.k) {
        Value after = Value::array();
        after.as_array().push_back(Value::number(hits.back().score));
        after.as_array().push_back(Value::string(hits.back().id));
        o.set("next_search_after", std::move(after));
    } else {
        o.set("next_search_after", Value::null());
    }
    return o;
}

}  // namespace

Api::Api(engine::Store& store, std::string api_key, ApiLimits limits)
    : store_(store), api_key_(std::move(api_key)), limits_(limits) {}

ApiResponse Api::error_response(int status, std::string_view code, std::string_view message) {
    Value err = Value::object();
    err.set("code", Value::string(std::string(code)));
    err.set("message", Value::string(json::valid_utf8(message) ? std::string(message) : std::string("(invalid UTF-8)")));
    Value o = Value::object();
    o.set("error", std::move(err));
    ApiResponse r;
    r.status = status;
    r.body = json::dump(o);
    return r;
}

ApiResponse Api::handle(const ApiRequest& request) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string label = "unknown";
    ApiResponse resp;
    try {
        resp = route(request, label);
    } catch (const std::exception& e) {
        resp = error_response(500, "internal", std::string("internal error: ") + e.what());
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    finish(request, label, resp, secs);
    return resp;
}

ApiResponse Api::reject(const ApiRequest& request, int status, std::string_view code, std::string_view message) {
    ApiResponse resp = error_response(status, code, message);
    finish(request, "rejected", resp, 0.0);
    return resp;
}

void Api::finish(const ApiRequest& request, const std::string& label, ApiResponse& resp, double secs) {
    resp.request_id = request_id_for(request.request_id);
    record(label, resp.status, secs);
    if (access_log_) {
        char buf[64];
        std::snprintf(buf, sizeof buf, " %d %.3fms", resp.status, secs * 1e3);
        access_log_(resp.request_id + " " + request.method + " " + (json::valid_utf8(request.path) ? request.path : "?") +
                    buf);
    }
}

void Api::record(const std::string& label, int status, double seconds) {
    std::lock_guard lock(metrics_mu_);
    RouteStats& s = routes_[label];
    ++s.by_status[status];
    ++s.count;
    s.seconds += seconds;
    std::size_t b = 0;
    while (b < 11 && seconds > kBucketBounds[b]) ++b;
    ++s.buckets[b];
}

std::string Api::metrics_text() {
    std::string out;
    char buf[256];
    {
        std::lock_guard lock(metrics_mu_);
        out += "# HELP quiver_http_requests_total HTTP requests by route and status.\n";
        out += "# TYPE quiver_http_requests_total counter\n";
        for (const auto& [label, s] : routes_) {
            for (const auto& [status, n] : s.by_status) {
                std::snprintf(buf, sizeof buf, "quiver_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                              label.c_str(), status, static_cast<unsigned long long>(n));
                out += buf;
            }
        }
        out += "# HELP quiver_http_request_duration_seconds Request latency by route.\n";
        out += "# TYPE quiver_http_request_duration_seconds histogram\n";
        for (const auto& [label, s] : routes_) {
            std::uint64_t cumulative = 0;
            for (std::size_t b = 0; b < 12; ++b) {
                cumulative += s.buckets[b];
                if (b < 11) {
                    std::snprintf(buf, sizeof buf, "quiver_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                                  label.c_str(), kBucketBounds[b], static_cast<unsigned long long>(cumulative));
                } else {
                    std::snprintf(buf, sizeof buf, "quiver_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                                  label.c_str(), static_cast<unsigned long long>(cumulative));
                }
                out += buf;
            }
            std::snprintf(buf, sizeof buf, "quiver_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
                          label.c_str(), s.seconds);
            out += buf;
            std::snprintf(buf, sizeof buf, "quiver_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                          label.c_str(), static_cast<unsigned long long>(s.count));
            out += buf;
        }
    }
    out += "# HELP quiver_collection_documents Live documents per collection.\n# TYPE quiver_collection_documents gauge\n";
    std::string segs = "# HELP quiver_collection_segments Segments per collection.\n# TYPE quiver_collection_segments gauge\n";
    std::string durability =
        "# HELP quiver_collection_merge_failures_total Failed merges per collection (each logged).\n"
        "# TYPE quiver_collection_merge_failures_total counter\n";
    std::string recovered =
        "# HELP quiver_collection_recovered_tail_bytes Torn log-tail bytes dropped by recovery at open.\n"
        "# TYPE quiver_collection_recovered_tail_bytes gauge\n";
    std::string recovered_records =
        "# HELP quiver_collection_recovered_tail_records Partial (never acknowledged) log records dropped at open.\n"
        "# TYPE quiver_collection_recovered_tail_records gauge\n";
    std::string stalls =
        "# HELP quiver_collection_write_stalls_total Writes that waited for merges to catch up.\n"
        "# TYPE quiver_collection_write_stalls_total counter\n";
    std::string wal_failed =
        "# HELP quiver_collection_wal_failed 1 when the collection's current log is poisoned by an I/O error.\n"
        "# TYPE quiver_collection_wal_failed gauge\n";
    for (const auto& name : store_.list()) {
        auto c = store_.get(name);
        if (!c) continue;
        const auto st = (*c)->stats();
        std::snprintf(buf, sizeof buf, "quiver_collection_documents{collection=\"%s\"} %zu\n", name.c_str(), st.documents);
        out += buf;
        std::snprintf(buf, sizeof buf, "quiver_collection_segments{collection=\"%s\"} %zu\n", name.c_str(), st.segments);
        segs += buf;
        std::snprintf(buf, sizeof buf, "quiver_collection_merge_failures_total{collection=\"%s\"} %llu\n", name.c_str(),
                      static_cast<unsigned long long>(st.merge_failures));
        durability += buf;
        std::snprintf(buf, sizeof buf, "quiver_collection_recovered_tail_bytes{collection=\"%s\"} %llu\n", name.c_str(),
                      static_cast<unsigned long long>(st.recovered_tail_bytes));
        recovered += buf;
        std::snprintf(buf, sizeof buf, "quiver_collection_recovered_tail_records{collection=\"%s\"} %llu\n",
                      name.c_str(), static_cast<unsigned long long>(st.recovered_tail_records));
        recovered_records += buf;
        std::snprintf(buf, sizeof buf, "quiver_collection_wal_failed{collection=\"%s\"} %d\n", name.c_str(),
                      st.wal_failed ? 1 : 0);
        wal_failed += buf;
        std::snprintf(buf, sizeof buf, "quiver_collection_write_stalls_total{collection=\"%s\"} %llu\n", name.c_str(),
                      static_cast<unsigned long long>(st.write_stalls));
        stalls += buf;
    }
    std::string unavailable =
        "# HELP quiver_collection_unavailable 1 for a collection that failed to open (damaged files).\n"
        "# TYPE quiver_collection_unavailable gauge\n";
    for (const auto& u : store_.unavailable()) {
        std::snprintf(buf, sizeof buf, "quiver_collection_unavailable{collection=\"%s\"} 1\n", u.name.c_str());
        unavailable += buf;
    }
    return out + segs + durability + recovered + recovered_records + wal_failed + stalls + unavailable;
}

ApiResponse Api::route(const ApiRequest& req, std::string& label) {
    std::vector<std::string> parts = split_path(req.path);
    if (!parts.empty() && parts[0] == "v1") parts.erase(parts.begin());  // the unversioned paths are aliases
    const std::string& m = req.method;
    if (parts.size() == 1 && parts[0] == "healthz") {
        label = "/healthz";
        if (m != "GET") return error_response(405, "method_not_allowed", "use GET /healthz");
        Value o = Value::object();
        o.set("status", Value::string("ok"));
        return ok_json(o);
    }
    if (!api_key_.empty()) {
        std::string given = req.api_key;
        if (given.empty() && req.authorization.rfind("Bearer ", 0) == 0) given = req.authorization.substr(7);
        if (!constant_time_equal(given, api_key_)) {
            label = "unauthorized";
            return error_response(401, "unauthorized", given.empty() ? "missing API key" : "wrong API key");
        }
    }
    // Query parameters exist only on GET .../documents/{id} (fields, with_vectors).
    const bool get_document = m == "GET" && parts.size() == 4 && parts[0] == "collections" && parts[2] == "documents";
    if (!req.query.empty() && !get_document) {
        const auto params = parse_query(req.query);
        if (!params.empty()) return bad_request("unknown query parameter '" + params[0].first + "'");
    }
    if (req.body.size() > limits_.max_body_bytes) {
        return error_response(413, "payload_too_large",
                              "request body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes");
    }
    if (!req.body.empty() && !accepts_content_type(req.content_type)) {
        return error_response(415, "unsupported_media_type",
                              "send JSON bodies with Content-Type: application/json (or application/x-ndjson)");
    }
    if (parts.size() == 1 && parts[0] == "metrics") {
        label = "/metrics";
        if (m != "GET") return error_response(405, "method_not_allowed", "use GET /metrics");
        ApiResponse r;
        r.body = metrics_text();
        r.content_type = "text/plain; version=0.0.4";
        return r;
    }
    if (parts.empty() || parts[0] != "collections") {
        return error_response(404, "not_found", "no route for " + m + " " + (json::valid_utf8(req.path) ? req.path : "?"));
    }
    if (parts.size() == 1) {
        label = "/collections";
        if (m != "GET") return error_response(405, "method_not_allowed", "use GET /collections");
        Value arr = Value::array();
        for (const auto& name : store_.list()) {
            auto c = store_.get(name);
            if (!c) continue;
            Value o = Value::object();
            o.set("name", Value::string(name));
            o.set("documents", Value::number(static_cast<double>((*c)->stats().documents)));
            o.set("status", Value::string("ok"));
            arr.as_array().push_back(std::move(o));
        }
        for (const auto& u : store_.unavailable()) {
            Value o = Value::object();
            o.set("name", Value::string(u.name));
            o.set("status", Value::string("unavailable"));
            o.set("error", Value::string(u.error.to_string()));
            arr.as_array().push_back(std::move(o));
        }
        Value o = Value::object();
        o.set("collections", std::move(arr));
        return ok_json(o);
    }
    const std::string& name = parts[1];
    if (!engine::valid_collection_name(name)) {
        label = "/collections/{name}";
        return bad_request("invalid collection name (1-64 of [A-Za-z0-9_-], not starting with '-')");
    }
    if (parts.size() == 2) {
        label = "/collections/{name}";
        if (m == "PUT") {
            auto body = parse_body(req.body);
            if (!body) return from_error(body.error());
            auto schema = schema_from_json(*body);
            if (!schema) return from_error(schema.error());
            auto c = store_.create(name, *schema);
            if (!c) return from_error(c.error());
            Value o = Value::object();
            o.set("name", Value::string(name));
            o.set("schema", schema_to_json(*schema));
            return ok_json(o, 201);
        }
        if (m == "GET") {
            auto c = store_.get(name);
            if (!c) return from_error(c.error());
            const auto st = (*c)->stats();
            Value stats = Value::object();
            stats.set("documents", Value::number(static_cast<double>(st.documents)));
            stats.set("segments", Value::number(static_cast<double>(st.segments)));
            stats.set("memory_segments", Value::number(static_cast<double>(st.memory_segments)));
            stats.set("deleted_pending", Value::number(static_cast<double>(st.deleted_pending)));
            stats.set("merges", Value::number(static_cast<double>(st.merges)));
            stats.set("writes", Value::number(static_cast<double>(st.writes)));
            stats.set("wal_syncs", Value::number(static_cast<double>(st.wal_syncs)));
            stats.set("write_stalls", Value::number(static_cast<double>(st.write_stalls)));
            stats.set("vector_memory_bytes", Value::number(static_cast<double>(st.vector_memory_bytes)));
            stats.set("vector_disk_bytes", Value::number(static_cast<double>(st.vector_disk_bytes)));
            if (!st.vector_budgets.empty()) stats.set("vector_budgets", vector_budgets_to_json(st.vector_budgets));
            Value o = Value::object();
            o.set("name", Value::string(name));
            o.set("schema", schema_to_json((*c)->schema()));
            o.set("stats", std::move(stats));
            return ok_json(o);
        }
        if (m == "DELETE") {
            auto st = store_.drop(name);
            if (!st) return from_error(st.error());
            Value o = Value::object();
            o.set("dropped", Value::string(name));
            return ok_json(o);
        }
        return error_response(405, "method_not_allowed", "use PUT, GET or DELETE on a collection");
    }
    // Label the route before looking the collection up, so 404s are counted under their route.
    const std::string& verb = parts[2];
    if (parts.size() == 3 && (verb == "search" || verb == "flush" || verb == "optimize" || verb == "count" ||
                              verb == "scroll")) {
        label = "/collections/{name}/" + verb;
    } else if (parts.size() == 4 && verb == "search" && parts[3] == "batch") {
        label = "/collections/{name}/search/batch";
    } else if (verb == "documents" && parts.size() == 3) {
        label = "/collections/{name}/documents";
    } else if (verb == "documents" && parts.size() == 4 && parts[3] == "delete" && m == "POST") {
        label = "/collections/{name}/documents/delete";
    } else if (verb == "documents" && parts.size() == 4) {
        label = "/collections/{name}/documents/{id}";
    } else {
        return error_response(404, "not_found", "no route for " + m + " " + (json::valid_utf8(req.path) ? req.path : "?"));
    }
    auto coll = store_.get(name);
    if (!coll) return from_error(coll.error());
    engine::Collection& c = **coll;
    const engine::Schema& schema = c.schema();
    auto only = [&](std::string_view method) -> std::optional<ApiResponse> {
        if (m == method) return std::nullopt;
        return error_response(405, "method_not_allowed", "use " + std::string(method) + " on this route");
    };

    if (label == "/collections/{name}/flush" || label == "/collections/{name}/optimize") {
        if (auto e = only("POST")) return *e;
        auto body = parse_optional_body(req.body);
        if (!body) return from_error(body.error());
        if (auto st = check_keys(*body, {}, "this request"); !st) return from_error(st.error());
        auto st = verb == "flush" ? c.flush() : c.optimize();
        if (!st) return from_error(st.error());
        Value o = Value::object();
        o.set("documents", Value::number(static_cast<double>(c.stats().documents)));
        return ok_json(o);
    }
    if (label == "/collections/{name}/search") {
        if (auto e = only("POST")) return *e;
        auto body = parse_body(req.body);
        if (!body) return from_error(body.error());
        auto sr = search_from_json(*body, limits_.max_k, schema);
        if (!sr) return from_error(sr.error());
        engine::SearchExplain explain;
        auto hits = c.search(*sr, sr->explain ? &explain : nullptr);
        if (!hits) return from_error(hits.error());
        Value out = hits_to_json(schema, *sr, *hits);
        if (sr->explain) out.set("explain", explain_to_json(explain));
        return ok_json(out);
    }
    if (label == "/collections/{name}/search/batch") {
        if (auto e = only("POST")) return *e;
        auto body = parse_body(req.body);
        if (!body) return from_error(body.error());
        if (auto st = check_keys(*body, {"searches"}, "a batch search"); !st) return from_error(st.error());
        const Value* searches = body->find("searches");
        if (searches == nullptr || !searches->is_array()) return bad_request("expected {\"searches\": [...]}");
        if (searches->as_array().size() > limits_.max_batch_searches) {
            return error_response(413, "payload_too_large",
                                  "batch exceeds " + std::to_string(limits_.max_batch_searches) + " searches");
        }
        std::vector<engine::SearchRequest> requests;
        for (std::size_t i = 0; i < searches->as_array().size(); ++i) {
            auto sr = search_from_json(searches->as_array()[i], limits_.max_k, schema);
            if (!sr) return bad_request("searches[" + std::to_string(i) + "]: " + sr.error().message());
            requests.push_back(std::move(sr).value());
        }
        auto results = c.search_batch(requests);
        if (!results) return from_error(results.error());
        Value arr = Value::array();
        for (std::size_t i = 0; i < requests.size(); ++i) arr.as_array().push_back(hits_to_json(schema, requests[i], (*results)[i]));
        Value o = Value::object();
        o.set("results", std::move(arr));
        return ok_json(o);
    }
    if (label == "/collections/{name}/count") {
        if (auto e = only("POST")) return *e;
        auto body = parse_optional_body(req.body);
        if (!body) return from_error(body.error());
        if (auto st = check_keys(*body, {"filter"}, "a count"); !st) return from_error(st.error());
        std::optional<engine::Filter> filter;
        if (const Value* f = body->find("filter")) {
            auto parsed = filter_from_json(*f);
            if (!parsed) return from_error(parsed.error());
            filter = std::move(parsed).value();
        }
        auto n = c.count(filter);
        if (!n) return from_error(n.error());
        Value o = Value::object();
        o.set("count", Value::number(static_cast<double>(*n)));
        return ok_json(o);
    }
    if (label == "/collections/{name}/scroll") {
        if (auto e = only("POST")) return *e;
        auto body = parse_optional_body(req.body);
        if (!body) return from_error(body.error());
        if (auto st = check_keys(*body, {"filter", "limit", "cursor", "fields", "with_vectors"}, "a scroll"); !st) {
            return from_error(st.error());
        }
        engine::ScrollRequest sr;
        if (const Value* f = body->find("filter")) {
            auto parsed = filter_from_json(*f);
            if (!parsed) return from_error(parsed.error());
            sr.filter = std::move(parsed).value();
        }
        if (const Value* l = body->find("limit")) {
            if (!l->is_integer() || l->as_int() < 1 || static_cast<std::uint64_t>(l->as_int()) > limits_.max_k) {
                return bad_request("'limit' must be an integer in 1.." + std::to_string(limits_.max_k));
            }
            sr.limit = static_cast<std::size_t>(l->as_int());
        }
        if (const Value* cur = body->find("cursor")) {
            if (!cur->is_null()) {
                if (!cur->is_string() || cur->as_string().empty()) {
                    return bad_request("\"cursor\" must be the \"next_cursor\" of the previous page, or null");
                }
                sr.after = cur->as_string();
            }
        }
        auto fields = return_fields_from_json(*body, schema);
        if (!fields) return from_error(fields.error());
        sr.return_fields = std::move(fields).value();
        auto page = c.scroll(sr);
        if (!page) return from_error(page.error());
        Value docs = Value::array();
        for (const auto& d : page->documents) docs.as_array().push_back(document_to_json(schema, d));
        Value o = Value::object();
        o.set("documents", std::move(docs));
        o.set("next_cursor", page->next_after ? Value::string(*page->next_after) : Value::null());
        return ok_json(o);
    }
    if (label == "/collections/{name}/documents/delete") {
        auto body = parse_body(req.body);
        if (!body) return from_error(body.error());
        if (auto st = check_keys(*body, {"ids", "filter"}, "a delete"); !st) return from_error(st.error());
        const Value* ids = body->find("ids");
        const Value* filter = body->find("filter");
        if ((ids == nullptr) == (filter == nullptr)) return bad_request("expected {\"ids\": [...]} or {\"filter\": {...}}");
        Result<std::size_t> n = std::size_t{0};
        if (filter != nullptr) {
            auto parsed = filter_from_json(*filter);
            if (!parsed) return from_error(parsed.error());
            n = c.remove_where(*parsed);
        } else {
            if (!ids->is_array()) return bad_request("\"ids\" must be an array");
            if (ids->as_array().size() > limits_.max_batch_docs) {
                return error_response(413, "payload_too_large",
                                      "batch exceeds " + std::to_string(limits_.max_batch_docs) + " ids");
            }
            std::vector<std::string> list;
            for (const Value& x : ids->as_array()) {
                auto id = document_id_from_json(x);
                if (!id) return from_error(id.error());
                list.push_back(std::move(id).value());
            }
            n = c.remove(list);
        }
        if (!n) return from_error(n.error());
        Value o = Value::object();
        o.set("deleted", Value::number(static_cast<double>(*n)));
        return ok_json(o);
    }
    if (label == "/collections/{name}/documents") {
        if (m != "POST" && m != "PATCH") return error_response(405, "method_not_allowed", "use POST (upsert) or PATCH (partial update)");
        // One document's JSON tree at a time (body_parser.h): no tree of the whole body.
        BodyParseLimits body_limits;
        body_limits.max_documents = limits_.max_batch_docs;
        body_limits.keep_nulls = m == "PATCH";
        bool schema_refused = false;
        auto parsed = parse_upsert_body(schema, req.content_type, req.body, body_limits, &schema_refused);
        if (!parsed) {
            if (parsed.error().code() == ErrorCode::kResourceExhausted) {
                return error_response(413, "payload_too_large", parsed.error().message());
            }
            return schema_refused ? from_document_error(parsed.error()) : from_error(parsed.error());
        }
        std::vector<engine::Document> docs = std::move(parsed).value();
        const std::size_t n = docs.size();
        Value o = Value::object();
        if (m == "PATCH") {
            auto updated = c.patch(std::move(docs));
            if (!updated) return from_document_error(updated.error());
            o.set("updated", Value::number(static_cast<double>(*updated)));
            return ok_json(o);
        }
        auto st = c.upsert(std::move(docs));
        if (!st) return from_document_error(st.error());
        o.set("upserted", Value::number(static_cast<double>(n)));
        return ok_json(o);
    }
    // /collections/{name}/documents/{id}
    const std::string& id = parts[3];
    if (m == "GET") {
        std::optional<std::vector<std::string>> names;
        bool with_vectors = false;
        for (const auto& [k, v] : parse_query(req.query)) {
            if (k == "fields") {
                names.emplace();
                std::size_t i = 0;
                while (i <= v.size()) {
                    const std::size_t j = std::min(v.find(',', i), v.size());
                    if (j > i) {
                        const std::string f = v.substr(i, j - i);
                        if (schema.find(f) == nullptr) return bad_request("\"fields\": unknown field '" + f + "'");
                        names->push_back(f);
                    }
                    i = j + 1;
                }
            } else if (k == "with_vectors") {
                if (v != "true" && v != "false") return bad_request("\"with_vectors\" must be true or false");
                with_vectors = v == "true";
            } else {
                return bad_request("unknown query parameter '" + k + "' (allowed: fields, with_vectors)");
            }
        }
        auto d = c.get(id);
        if (!d) return from_error(d.error());
        const auto keep = resolve_return_fields(schema, std::move(names), with_vectors);
        if (keep) {
            engine::Document projected;
            projected.id = d->id;
            for (const auto& f : *keep) {
                auto it = d->fields.find(f);
                if (it != d->fields.end()) projected.fields.emplace(f, std::move(it->second));
            }
            return ok_json(document_to_json(schema, projected));
        }
        return ok_json(document_to_json(schema, *d));
    }
    if (m == "PATCH") {
        auto body = parse_body(req.body);
        if (!body) return from_error(body.error());
        if (const Value* given = body->find("id")) {
            auto gid = document_id_from_json(*given);
            if (!gid || *gid != id) return bad_request("the body's \"id\" differs from the path's");
        } else {
            body->as_object().insert(body->as_object().begin(), {"id", Value::string(id)});
        }
        auto d = document_from_json(schema, *body, true);
        if (!d) return from_document_error(d.error());
        std::vector<engine::Document> docs;
        docs.push_back(std::move(d).value());
        auto updated = c.patch(std::move(docs));
        if (!updated) return from_document_error(updated.error());
        Value o = Value::object();
        o.set("updated", Value::number(static_cast<double>(*updated)));
        return ok_json(o);
    }
    if (m == "DELETE") {
        auto n = c.remove({id});
        if (!n) return from_error(n.error());
        if (*n == 0) return error_response(404, "not_found", "document '" + id + "' not found");
        Value o = Value::object();
        o.set("deleted", Value::number(1));
        return ok_json(o);
    }
    return error_response(405, "method_not_allowed", "use GET, PATCH or DELETE on a document");
}

}  // namespace quiver::server
