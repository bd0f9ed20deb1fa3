// Routing, authentication, limits and error mapping for the HTTP API. See api.h.
#include "quiver/server/api.h"

#include <chrono>
#include <cstdio>
#include <exception>
#include <vector>

#include "quiver/core/json.h"
#include "quiver/server/json_codec.h"

namespace quiver::server {
namespace {

using json::Value;

constexpr double kBucketBounds[11] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0};

int http_status(ErrorCode code) {
    switch (code) {
        case ErrorCode::kInvalidArgument:
        case ErrorCode::kOutOfRange: return 400;
        case ErrorCode::kNotFound: return 404;
        case ErrorCode::kAlreadyExists: return 409;
        case ErrorCode::kFailedPrecondition: return 409;
        case ErrorCode::kResourceExhausted: return 507;
        case ErrorCode::kUnavailable: return 503;
        default: return 500;
    }
}

ApiResponse from_error(const Error& e) {
    return Api::error_response(http_status(e.code()), to_string(e.code()), e.message());
}

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
    if (body.empty()) return invalid_argument("request body is empty; expected JSON");
    auto v = json::parse(body);
    if (!v) return invalid_argument("malformed JSON: " + v.error().message());
    return v;
}

// Documents from a JSON array, {"documents": [...]}, or NDJSON (one object per line).
Result<std::vector<Value>> parse_documents(const ApiRequest& req) {
    std::size_t first = req.body.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return invalid_argument("request body is empty; expected documents");
    const bool ndjson = req.content_type.find("ndjson") != std::string::npos ||
                        req.content_type.find("jsonl") != std::string::npos;
    if (!ndjson && (req.body[first] == '[' || req.body[first] == '{')) {
        auto v = json::parse(req.body);
        if (v) {
            if (v->is_array()) return std::move(v->as_array());
            if (const Value* docs = v->find("documents"); docs != nullptr && docs->is_array()) return docs->as_array();
            if (v->is_object() && v->find("documents") == nullptr) return std::vector<Value>{std::move(*v)};
            return invalid_argument("\"documents\" must be an array");
        }
        if (req.body[first] == '[') return invalid_argument("malformed JSON: " + v.error().message());
    }
    std::vector<Value> out;
    std::size_t line_no = 0;
    std::size_t pos = 0;
    while (pos <= req.body.size()) {
        std::size_t end = req.body.find('\n', pos);
        if (end == std::string::npos) end = req.body.size();
        ++line_no;
        std::string_view line(req.body.data() + pos, end - pos);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
        if (!line.empty()) {
            auto v = json::parse(line);
            if (!v) return invalid_argument("malformed JSON on line " + std::to_string(line_no) + ": " + v.error().message());
            out.push_back(std::move(v).value());
        }
        pos = end + 1;
    }
    return out;
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
    record(label, resp.status, secs);
    return resp;
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
    }
    std::string unavailable =
        "# HELP quiver_collection_unavailable 1 for a collection that failed to open (damaged files).\n"
        "# TYPE quiver_collection_unavailable gauge\n";
    for (const auto& u : store_.unavailable()) {
        std::snprintf(buf, sizeof buf, "quiver_collection_unavailable{collection=\"%s\"} 1\n", u.name.c_str());
        unavailable += buf;
    }
    return out + segs + durability + recovered + recovered_records + wal_failed + unavailable;
}

ApiResponse Api::route(const ApiRequest& req, std::string& label) {
    const std::vector<std::string> parts = split_path(req.path);
    const std::string& m = req.method;
    if (parts.size() == 1 && parts[0] == "healthz") {
        label = "/healthz";
        Value o = Value::object();
        o.set("status", Value::string("ok"));
        return ok_json(o);
    }
    if (!api_key_.empty()) {
        std::string given = req.api_key;
        if (given.empty() && req.authorization.rfind("Bearer ", 0) == 0) given = req.authorization.substr(7);
        if (!constant_time_equal(given, api_key_)) {
            label = "unauthorized";
            return error_response(401, "unauthenticated", given.empty() ? "missing API key" : "wrong API key");
        }
    }
    if (req.body.size() > limits_.max_body_bytes) {
        return error_response(413, "resource_exhausted",
                              "request body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes");
    }
    if (parts.size() == 1 && parts[0] == "metrics" && m == "GET") {
        label = "/metrics";
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
        return error_response(400, "invalid_argument",
                              "invalid collection name (1-64 of [A-Za-z0-9_-], not starting with '-')");
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
    auto coll = store_.get(name);
    if (!coll) {
        label = "/collections/{name}/...";
        return from_error(coll.error());
    }
    engine::Collection& c = **coll;
    const std::string& verb = parts[2];
    if (parts.size() == 3 && (verb == "search" || verb == "flush" || verb == "optimize")) {
        label = "/collections/{name}/" + verb;
        if (m != "POST") return error_response(405, "method_not_allowed", "use POST");
        if (verb != "search") {
            auto st = verb == "flush" ? c.flush() : c.optimize();
            if (!st) return from_error(st.error());
            Value o = Value::object();
            o.set("documents", Value::number(static_cast<double>(c.stats().documents)));
            return ok_json(o);
        }
        auto body = parse_body(req.body);
        if (!body) return from_error(body.error());
        auto sr = search_from_json(*body, limits_.max_k);
        if (!sr) return from_error(sr.error());
        auto hits = c.search(*sr);
        if (!hits) return from_error(hits.error());
        Value arr = Value::array();
        for (const auto& h : *hits) {
            Value o = Value::object();
            o.set("id", Value::string(h.id));
            o.set("score", Value::number(h.score));
            Value doc = document_to_json(c.schema(), h.document);
            auto& fields = doc.as_object();
            if (!fields.empty()) fields.erase(fields.begin());  // the id is already there
            o.set("fields", std::move(doc));
            arr.as_array().push_back(std::move(o));
        }
        Value o = Value::object();
        o.set("hits", std::move(arr));
        return ok_json(o);
    }
    if (verb != "documents") return error_response(404, "not_found", "no such route");
    if (parts.size() == 3 || (parts.size() == 4 && parts[3] == "delete" && m == "POST")) {
        const bool deleting = parts.size() == 4;
        label = deleting ? "/collections/{name}/documents/delete" : "/collections/{name}/documents";
        if (m != "POST") return error_response(405, "method_not_allowed", "use POST to write documents");
        if (deleting) {
            auto body = parse_body(req.body);
            if (!body) return from_error(body.error());
            const Value* ids = body->find("ids");
            if (ids == nullptr || !ids->is_array()) return error_response(400, "invalid_argument", "expected {\"ids\": [...]}");
            if (ids->as_array().size() > limits_.max_batch_docs) {
                return error_response(413, "resource_exhausted",
                                      "batch exceeds " + std::to_string(limits_.max_batch_docs) + " ids");
            }
            std::vector<std::string> list;
            for (const Value& x : ids->as_array()) {
                if (!x.is_string()) return error_response(400, "invalid_argument", "ids must be strings");
                list.push_back(x.as_string());
            }
            auto n = c.remove(list);
            if (!n) return from_error(n.error());
            Value o = Value::object();
            o.set("deleted", Value::number(static_cast<double>(*n)));
            return ok_json(o);
        }
        auto values = parse_documents(req);
        if (!values) return from_error(values.error());
        if (values->size() > limits_.max_batch_docs) {
            return error_response(413, "resource_exhausted",
                                  "batch exceeds " + std::to_string(limits_.max_batch_docs) + " documents");
        }
        std::vector<engine::Document> docs;
        docs.reserve(values->size());
        for (const Value& v : *values) {
            auto d = document_from_json(c.schema(), v);
            if (!d) return from_error(d.error());
            docs.push_back(std::move(d).value());
        }
        const std::size_t n = docs.size();
        auto st = c.upsert(std::move(docs));
        if (!st) return from_error(st.error());
        Value o = Value::object();
        o.set("upserted", Value::number(static_cast<double>(n)));
        return ok_json(o);
    }
    if (parts.size() == 4) {
        label = "/collections/{name}/documents/{id}";
        const std::string& id = parts[3];
        if (m == "GET") {
            auto d = c.get(id);
            if (!d) return from_error(d.error());
            return ok_json(document_to_json(c.schema(), *d));
        }
        if (m == "DELETE") {
            auto n = c.remove({id});
            if (!n) return from_error(n.error());
            if (*n == 0) return error_response(404, "not_found", "document not found");
            Value o = Value::object();
            o.set("deleted", Value::number(1));
            return ok_json(o);
        }
        return error_response(405, "method_not_allowed", "use GET or DELETE on a document");
    }
    return error_response(404, "not_found", "no such route");
}

}  // namespace quiver::server
