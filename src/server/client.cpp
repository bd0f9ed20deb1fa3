// The CLI's HTTP client (cpp-httplib). See client.h.
#include "quiver/server/client.h"

#include <httplib.h>

#include <optional>

namespace quiver::server {

struct HttpClient::Impl {
    Impl(const std::string& host, int port) : client(host, port) {}
    httplib::Client client;
    std::string api_key;
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl, std::string address)
    : impl_(std::move(impl)), address_(std::move(address)) {}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;
HttpClient::~HttpClient() = default;

Result<HttpClient> HttpClient::connect(std::string_view address, std::string api_key) {
    constexpr std::string_view kScheme = "http://";
    if (address.substr(0, kScheme.size()) != kScheme) {
        return invalid_argument("server address '" + std::string(address) + "' is not http://host:port");
    }
    const std::string_view hostport = address.substr(kScheme.size());
    const auto colon = hostport.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        return invalid_argument("server address '" + std::string(address) + "' has no port");
    }
    int port = 0;
    for (char ch : hostport.substr(colon + 1)) {
        if (ch < '0' || ch > '9' || port > 65535) return invalid_argument("bad port in '" + std::string(address) + "'");
        port = port * 10 + (ch - '0');
    }
    auto impl = std::make_unique<Impl>(std::string(hostport.substr(0, colon)), port);
    impl->api_key = std::move(api_key);
    impl->client.set_connection_timeout(10);
    impl->client.set_read_timeout(600);
    impl->client.set_write_timeout(600);
    return HttpClient(std::move(impl), std::string(address));
}

Result<HttpResponse> HttpClient::request(std::string_view method, const std::string& path,
                                         const std::string& json_body) {
    httplib::Headers headers;
    if (!impl_->api_key.empty()) headers.emplace("Authorization", "Bearer " + impl_->api_key);
    auto send = [&]() -> std::optional<httplib::Result> {
        if (method == "GET") return impl_->client.Get(path, headers);
        if (method == "PUT") return impl_->client.Put(path, headers, json_body, "application/json");
        if (method == "POST") return impl_->client.Post(path, headers, json_body, "application/json");
        if (method == "DELETE") return impl_->client.Delete(path, headers);
        return std::nullopt;
    };
    auto sent = send();
    if (!sent) return invalid_argument("unsupported HTTP method '" + std::string(method) + "'");
    httplib::Result& r = *sent;
    if (!r) {
        return Error(ErrorCode::kUnavailable, "cannot reach the server at " + address_ + " (" + std::string(method) +
                                                  " " + path + "): " + httplib::to_string(r.error()));
    }
    return HttpResponse{r->status, r->body};
}

}  // namespace quiver::server
