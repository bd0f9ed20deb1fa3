// Upsert bodies -> documents, one document's tree at a time. See body_parser.h.
#include "quiver/server/body_parser.h"

#include <limits>
#include <string>

#include "quiver/core/json.h"
#include "quiver/server/json_codec.h"

namespace quiver::server {
namespace {

constexpr std::size_t kNoCap = std::numeric_limits<std::size_t>::max();

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::size_t skip_ws(std::string_view s, std::size_t i) {
    while (i < s.size() && is_ws(s[i])) ++i;
    return i;
}

Error malformed(std::string_view what, std::size_t at) {
    return invalid_argument("malformed JSON: " + std::string(what) + " at byte " + std::to_string(at));
}

struct Extent {
    std::size_t end = 0;  // one past the value
};

// The end of the string starting at s[i] == '"'.
Result<std::size_t> string_end(std::string_view s, std::size_t i) {
    for (std::size_t j = i + 1; j < s.size(); ++j) {
        if (s[j] == '\\') {
            ++j;
        } else if (s[j] == '"') {
            return j + 1;
        }
    }
    return malformed("unterminated string", i);
}

// The extent of the JSON value starting at s[i] (not whitespace). Only finds where it ends and bounds how
// many values it holds (opening brackets count twice, each ',' and ':' once: an upper bound on the tree's
// nodes); json::parse of the slice validates it fully. More than `cap` values is kResourceExhausted.
Result<Extent> scan_value(std::string_view s, std::size_t i, std::size_t cap) {
    if (i >= s.size()) return malformed("expected a value", i);
    const char c0 = s[i];
    if (c0 == '"') {
        QUIVER_ASSIGN_OR_RETURN(const std::size_t end, string_end(s, i));
        return Extent{end};
    }
    if (c0 != '[' && c0 != '{') {
        std::size_t j = i;
        while (j < s.size() && !is_ws(s[j]) && s[j] != ',' && s[j] != ']' && s[j] != '}' && s[j] != ':') ++j;
        if (j == i) return malformed("expected a value", i);
        return Extent{j};
    }
    std::size_t depth = 0;
    std::size_t values = 0;
    for (std::size_t j = i; j < s.size(); ++j) {
        const char c = s[j];
        if (c == '"') {
            QUIVER_ASSIGN_OR_RETURN(const std::size_t end, string_end(s, j));
            j = end - 1;
            continue;
        }
        if (c == '[' || c == '{') {
            ++depth;
            values += 2;
        } else if (c == ']' || c == '}') {
            if (--depth == 0) return Extent{j + 1};
        } else if (c == ',' || c == ':') {
            ++values;
        } else {
            continue;
        }
        if (values > cap) {
            return resource_exhausted("a document at byte " + std::to_string(i) + " holds more than " +
                                      std::to_string(cap) + " JSON values");
        }
    }
    return malformed("unexpected end of the body", s.size());
}

class Collector {
public:
    Collector(const engine::Schema& schema, const BodyParseLimits& limits) : schema_(schema), limits_(limits) {}

    // Parses one document's slice (already bounded by scan_value) and converts it with the codec.
    Status add(std::string_view slice, std::size_t offset, std::string_view where) {
        if (docs_.size() >= limits_.max_documents) {
            return resource_exhausted("batch exceeds " + std::to_string(limits_.max_documents) + " documents");
        }
        auto v = json::parse(slice);
        if (!v) {
            return invalid_argument("malformed JSON " + std::string(where) + std::to_string(offset) + ": " +
                                    v.error().message());
        }
        return convert(*v);
    }

    // The elements of the array starting at s[i] == '['; returns one past its ']'.
    Result<std::size_t> add_array(std::string_view s, std::size_t i) {
        i = skip_ws(s, i + 1);
        if (i < s.size() && s[i] == ']') return i + 1;
        for (;;) {
            i = skip_ws(s, i);
            QUIVER_ASSIGN_OR_RETURN(const Extent e, scan_value(s, i, limits_.max_values_per_document));
            QUIVER_TRY(add(s.substr(i, e.end - i), i, "in the document at byte "));
            i = skip_ws(s, e.end);
            if (i >= s.size()) return malformed("unexpected end of the body", i);
            if (s[i] == ']') return i + 1;
            if (s[i] != ',') return malformed("expected ',' or ']'", i);
            ++i;
        }
    }

    Status add_ndjson(std::string_view s) {
        std::size_t pos = 0;
        std::size_t line_no = 0;
        while (pos <= s.size()) {
            std::size_t end = s.find('\n', pos);
            if (end == std::string_view::npos) end = s.size();
            ++line_no;
            std::string_view line = s.substr(pos, end - pos);
            while (!line.empty() && is_ws(line.back())) line.remove_suffix(1);
            while (!line.empty() && is_ws(line.front())) line.remove_prefix(1);
            if (!line.empty()) {
                auto e = scan_value(line, 0, limits_.max_values_per_document);
                if (!e && e.error().code() == ErrorCode::kResourceExhausted) {
                    return resource_exhausted("line " + std::to_string(line_no) + " holds more than " +
                                              std::to_string(limits_.max_values_per_document) + " JSON values");
                }
                if (docs_.size() >= limits_.max_documents) {
                    return resource_exhausted("batch exceeds " + std::to_string(limits_.max_documents) + " documents");
                }
                auto v = json::parse(line);
                if (!v) {
                    return invalid_argument("malformed JSON on line " + std::to_string(line_no) + ": " +
                                            v.error().message());
                }
                QUIVER_TRY(convert(*v));
            }
            pos = end + 1;
        }
        return ok_status();
    }

    std::vector<engine::Document> take() { return std::move(docs_); }
    bool schema_refused() const noexcept { return schema_refused_; }

private:
    const engine::Schema& schema_;
    const BodyParseLimits& limits_;
    std::vector<engine::Document> docs_;
    bool schema_refused_ = false;

    // The codec's conversion; its refusals are the schema's (well-formed JSON, wrong fields).
    Status convert(const json::Value& v) {
        auto doc = document_from_json(schema_, v, limits_.keep_nulls);
        if (!doc) {
            schema_refused_ = true;
            return std::move(doc).error();
        }
        docs_.push_back(std::move(doc).value());
        return ok_status();
    }
};

// The top-level object at s[i] is either {"documents": [...]} or one document. Finds the "documents"
// member without building anything: returns the offset of its value, or npos.
Result<std::size_t> documents_member(std::string_view s, std::size_t i) {
    std::size_t found = std::string_view::npos;
    std::string other;
    i = skip_ws(s, i + 1);
    if (i < s.size() && s[i] == '}') return found;
    for (;;) {
        i = skip_ws(s, i);
        if (i >= s.size() || s[i] != '"') return malformed("expected a member name", i);
        QUIVER_ASSIGN_OR_RETURN(const std::size_t key_end, string_end(s, i));
        auto key = json::parse(s.substr(i, key_end - i));
        if (!key || !key->is_string()) return malformed("bad member name", i);
        i = skip_ws(s, key_end);
        if (i >= s.size() || s[i] != ':') return malformed("expected ':'", i);
        i = skip_ws(s, i + 1);
        if (key->as_string() == "documents") {
            found = i;
        } else if (other.empty()) {
            other = key->as_string();
        }
        QUIVER_ASSIGN_OR_RETURN(const Extent e, scan_value(s, i, kNoCap));
        i = skip_ws(s, e.end);
        if (i >= s.size()) return malformed("unexpected end of the body", i);
        if (s[i] == '}') break;
        if (s[i] != ',') return malformed("expected ',' or '}'", i);
        ++i;
    }
    if (found != std::string_view::npos && !other.empty()) {
        return invalid_argument("unknown key '" + other + "' beside \"documents\"");
    }
    return found;
}

}  // namespace

namespace {

Result<std::vector<engine::Document>> parse_into(Collector& out, std::string_view content_type, std::string_view body,
                                                 const BodyParseLimits& limits) {
    const std::size_t first = skip_ws(body, 0);
    if (first == body.size()) return invalid_argument("request body is empty; expected documents");
    const bool ndjson = content_type.find("ndjson") != std::string_view::npos ||
                        content_type.find("jsonl") != std::string_view::npos;
    if (!ndjson && body[first] == '[') {
        QUIVER_ASSIGN_OR_RETURN(const std::size_t end, out.add_array(body, first));
        if (skip_ws(body, end) != body.size()) return malformed("unexpected data after the array", skip_ws(body, end));
        return out.take();
    }
    if (!ndjson && body[first] == '{') {
        auto e = scan_value(body, first, kNoCap);
        // One top-level object; several are NDJSON sent as application/json.
        if (e && skip_ws(body, e->end) == body.size()) {
            QUIVER_ASSIGN_OR_RETURN(const std::size_t docs_at, documents_member(body, first));
            if (docs_at == std::string_view::npos) {
                QUIVER_ASSIGN_OR_RETURN(const Extent one, scan_value(body, first, limits.max_values_per_document));
                QUIVER_TRY(out.add(body.substr(first, one.end - first), first, "at byte "));
                return out.take();
            }
            if (body[docs_at] != '[') return invalid_argument("\"documents\" must be an array");
            QUIVER_TRY(out.add_array(body, docs_at));
            return out.take();
        }
    }
    QUIVER_TRY(out.add_ndjson(body));
    return out.take();
}

}  // namespace

Result<std::vector<engine::Document>> parse_upsert_body(const engine::Schema& schema, std::string_view content_type,
                                                        std::string_view body, const BodyParseLimits& limits,
                                                        bool* schema_refused) {
    Collector out(schema, limits);
    auto docs = parse_into(out, content_type, body, limits);
    if (schema_refused != nullptr) *schema_refused = !docs && out.schema_refused();
    return docs;
}

}  // namespace quiver::server
