// Talking to the server that owns a data directory. See remote.h.
#include "cli/remote.h"

#include <cstdlib>

#include "quiver/engine/owner.h"

namespace quiver::cli {

std::string resolve_api_key(const std::string& flag) {
    if (!flag.empty()) return flag;
    const char* env = std::getenv("QUIVER_API_KEY");
    return env != nullptr ? std::string(env) : std::string();
}

Result<std::optional<server::HttpClient>> connect_to_owner(const std::string& data, const std::string& api_key,
                                                           const std::string& hint) {
    QUIVER_ASSIGN_OR_RETURN(auto owner, engine::find_owner(data));
    if (!owner) return std::optional<server::HttpClient>{};
    if (owner->address.empty()) {
        return failed_precondition("data directory '" + data + "' is in use by another quiver command (pid " +
                                   std::to_string(owner->pid) + "); wait for it to finish" + hint);
    }
    QUIVER_ASSIGN_OR_RETURN(auto client, server::HttpClient::connect(owner->address, api_key));
    return std::optional<server::HttpClient>(std::move(client));
}

Result<json::Value> call(server::HttpClient& client, std::string_view method, const std::string& path,
                         const std::string& body) {
    QUIVER_ASSIGN_OR_RETURN(auto resp, client.request(method, path, body));
    auto parsed = json::parse(resp.body);
    if (resp.status >= 200 && resp.status < 300) {
        if (!parsed) return std::move(parsed).error().with_context("reply of " + client.address() + path);
        return std::move(parsed).value();
    }
    std::string message = resp.body;
    if (parsed) {
        if (const auto* err = parsed->find("error"); err != nullptr) {
            if (const auto* m = err->find("message"); m != nullptr && m->is_string()) message = m->as_string();
        }
    }
    message = "server " + client.address() + " answered " + std::to_string(resp.status) + " to " +
              std::string(method) + " " + path + ": " + message;
    ErrorCode code = ErrorCode::kIoError;
    switch (resp.status) {
        case 400: code = ErrorCode::kInvalidArgument; break;
        case 404: code = ErrorCode::kNotFound; break;
        case 409: code = ErrorCode::kAlreadyExists; break;
        case 401:
        case 403: code = ErrorCode::kFailedPrecondition; break;
        case 413:
        case 429:
        case 507: code = ErrorCode::kResourceExhausted; break;
        case 503: code = ErrorCode::kUnavailable; break;
        default: break;
    }
    return Error(code, std::move(message));
}

}  // namespace quiver::cli
