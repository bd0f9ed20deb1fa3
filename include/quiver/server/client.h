/// @file client.h
/// @brief A minimal blocking HTTP client for the CLI to talk to a running `quiver serve`.
///
/// HTTP stays in the server module: the CLI sends JSON bodies through this and never includes httplib.
/// Thread-safety: one HttpClient per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "quiver/core/result.h"

namespace quiver::server {

struct HttpResponse {
    int status = 0;
    std::string body;
};

class HttpClient {
public:
    /// `address` is "http://host:port" (as recorded in the data directory's OWNER file).
    [[nodiscard]] static Result<HttpClient> connect(std::string_view address, std::string api_key);
    HttpClient(HttpClient&&) noexcept;
    HttpClient& operator=(HttpClient&&) noexcept;
    ~HttpClient();

    /// Sends `method path` with a JSON body (empty = none). kUnavailable when the server cannot be
    /// reached; any HTTP status is returned as a response.
    [[nodiscard]] Result<HttpResponse> request(std::string_view method, const std::string& path,
                                               const std::string& json_body = {});
    const std::string& address() const noexcept { return address_; }

private:
    struct Impl;
    HttpClient(std::unique_ptr<Impl> impl, std::string address);
    std::unique_ptr<Impl> impl_;
    std::string address_;
};

}  // namespace quiver::server
