/// @file body_parser.h
/// @brief Upsert bodies -> engine::Document, one document at a time, with no tree of the whole body.
///
/// Accepted shapes (as before): a JSON array of documents, `{"documents": [...]}`, one document object,
/// or NDJSON (one document per line; chosen by an `ndjson`/`jsonl` content type, or by a body holding
/// several top-level values). A scanner finds each document's extent in the body (strings, escapes and
/// nesting, counting the JSON values inside); only that slice is parsed into a json::Value and handed to
/// `document_from_json` (json_codec.h), so field typing is the codec's, exactly.
///
/// Memory bound of one call: the body (the caller's) + the documents it returns + one document's tree,
/// which is at most `max_values_per_document` values (about 130 bytes each) plus that document's text.
/// A document over the value cap, or a batch over `max_documents`, is kResourceExhausted (HTTP 413);
/// malformed JSON and bad fields are kInvalidArgument naming the byte offset or line and the field;
/// `*schema_refused` (when given) tells the second kind (well-formed JSON the schema refuses: HTTP 422).
///
/// Thread-safety: pure function.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/engine/collection.h"

namespace quiver::server {

struct BodyParseLimits {
    std::size_t max_documents = 10000;
    /// Four vectors of the largest dimension (65,536) fit; the tree of one document stays ~32 MiB.
    std::size_t max_values_per_document = std::size_t{1} << 18;
    /// Keep explicit nulls as "remove this field" markers (PATCH bodies); see document_from_json.
    bool keep_nulls = false;
};

[[nodiscard]] Result<std::vector<engine::Document>> parse_upsert_body(const engine::Schema& schema,
                                                                       std::string_view content_type,
                                                                       std::string_view body,
                                                                       const BodyParseLimits& limits = {},
                                                                       bool* schema_refused = nullptr);

}  // namespace quiver::server
