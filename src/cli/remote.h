// Private to the CLI: talking to the `quiver serve` that owns a data directory (engine/owner.h).
#pragma once

#include <optional>
#include <string>

#include "quiver/core/json.h"
#include "quiver/core/result.h"
#include "quiver/server/client.h"

namespace quiver::cli {

/// The API key for requests to a local server: `--api-key`, else $QUIVER_API_KEY, else none.
std::string resolve_api_key(const std::string& flag);

/// A client for the server owning `data`, or nullopt when no process owns it. When an embedded quiver
/// command owns it (no address), kFailedPrecondition saying so and how to proceed.
[[nodiscard]] Result<std::optional<server::HttpClient>> connect_to_owner(const std::string& data,
                                                                         const std::string& api_key,
                                                                         const std::string& hint);

/// Sends a request and parses the JSON reply. A non-2xx status becomes an error carrying the server's
/// message (400 kInvalidArgument, 404 kNotFound, 409 kAlreadyExists, 507/429/413 kResourceExhausted,
/// 401/403 kFailedPrecondition, 503 kUnavailable, others kIoError).
[[nodiscard]] Result<json::Value> call(server::HttpClient& client, std::string_view method, const std::string& path,
                                       const std::string& body = {});

/// "/collections/<name>": collection names are [A-Za-z0-9_-], nothing to escape.
inline std::string collection_path(const std::string& name) { return "/collections/" + name; }

}  // namespace quiver::cli
