/// @file json_codec.h
/// @brief JSON <-> engine values (schemas, documents, filters, search requests) for the server and the CLI.
/// All functions are pure; errors are kInvalidArgument naming the offending member.
#pragma once

#include <string>
#include <vector>

#include "quiver/core/json.h"
#include "quiver/core/result.h"
#include "quiver/engine/collection.h"

namespace quiver::server {

Result<engine::Schema> schema_from_json(const json::Value& v);
json::Value schema_to_json(const engine::Schema& s);
/// `{"id": ..., "<field>": value, ...}`; types follow the schema.
Result<engine::Document> document_from_json(const engine::Schema& schema, const json::Value& v);
json::Value document_to_json(const engine::Schema& schema, const engine::Document& d);
Result<engine::Filter> filter_from_json(const json::Value& v, int depth = 0);
Result<engine::SearchRequest> search_from_json(const json::Value& v, std::size_t max_k);

}  // namespace quiver::server
