/// @file json_codec.h
/// @brief JSON <-> engine values (schemas, documents, filters, search requests) for the server and the CLI.
/// All functions are pure; errors are kInvalidArgument naming the offending member.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/json.h"
#include "quiver/core/result.h"
#include "quiver/engine/collection.h"

namespace quiver::server {

Result<engine::Schema> schema_from_json(const json::Value& v);
json::Value schema_to_json(const engine::Schema& s);
/// CollectionStats::vector_budgets as `[{"field", "budget_bytes", "memory_bytes", "segments": [{"id", "codec",
/// "on_disk", "memory_bytes"}]}]`.
json::Value vector_budgets_to_json(const std::vector<engine::VectorBudgetStats>& budgets);
/// kInvalidArgument naming the first member of object `v` not in `allowed` ("unknown key 'x' in <where>").
[[nodiscard]] Status check_keys(const json::Value& v, std::initializer_list<std::string_view> allowed,
                                std::string_view where);
/// A document id: a string, or an integer stored as its decimal string (7 -> "7").
Result<std::string> document_id_from_json(const json::Value& v);
/// `{"id": ..., "<field>": value, ...}`; types follow the schema; the id is a string or an integer
/// (stored as its decimal string). A null value is an absent field, or with `keep_nulls` a
/// std::monostate value (a partial update's "remove this field").
Result<engine::Document> document_from_json(const engine::Schema& schema, const json::Value& v,
                                            bool keep_nulls = false);
json::Value document_to_json(const engine::Schema& schema, const engine::Document& d);
Result<engine::Filter> filter_from_json(const json::Value& v, int depth = 0);
/// A search body (docs/api.md): one clause ("field" + "text"/"vector"/"sparse") or "queries", or
/// none (filter-only); limit (or k) up to `max_k`, offset, search_after, score_threshold, fusion,
/// filter, fields, with_vectors, ef, explain, cutoff and min_relevance (a calibrated cut-off, a
/// pipeline file's "cutoff" object); each clause may carry "prf" (a pipeline file's "prf" object;
/// its method defaults to rocchio on vector fields, rm3 elsewhere). Unknown keys are errors.
Result<engine::SearchRequest> search_from_json(const json::Value& v, std::size_t max_k, const engine::Schema& schema);
/// `{"filter": {"matches", "index_lookups", "documents_scanned"} | null, "plans": [{"field", "source",
/// "strategy", "matches", "size", "selectivity", "reason", "fallback"}]}` (docs/api.md, "explain").
json::Value explain_to_json(const engine::SearchExplain& explain);
/// The attributes of `quiver build --attributes` (and `quiver bench filter`): one JSON object per line,
/// line i for vector i (blank lines are skipped). Member types are inferred over the file: string ->
/// keyword, boolean -> boolean, integer -> integer, other number -> float (integers in a float member
/// are converted), array of strings -> keyword_list; null = no value. Every member becomes a field
/// with a payload index. kInvalidArgument naming file:line for malformed lines, nested objects or a
/// member whose type changes.
struct AttributeTable {
    std::vector<engine::FieldSpec> fields;
    std::vector<engine::Document> rows;
};
Result<AttributeTable> read_attributes_jsonl(const std::string& path, std::size_t max_rows = 0);
/// The stored fields to return for a body's "fields" and "with_vectors" (see resolve_return_fields).
Result<std::optional<std::vector<std::string>>> return_fields_from_json(const json::Value& v,
                                                                        const engine::Schema& schema);
/// `names` (all fields when nullopt) without vector and sparse-vector fields unless named or
/// `with_vectors`; nullopt = every stored field.
std::optional<std::vector<std::string>> resolve_return_fields(const engine::Schema& schema,
                                                              std::optional<std::vector<std::string>> names,
                                                              bool with_vectors);

}  // namespace quiver::server
