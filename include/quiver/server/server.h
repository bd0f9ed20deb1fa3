/// @file server.h
/// @brief `quiver serve`: the Api (api.h) behind cpp-httplib, bound to loopback by default.
///
/// Thread-safety: `run` blocks the calling thread serving requests on a pool of `threads` workers;
/// `stop` may be called from any thread and makes `run` return.
#pragma once

#include <memory>
#include <string>

#include "quiver/core/result.h"
#include "quiver/server/api.h"

namespace quiver::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 6333;           ///< 0 = pick a free port (see Server::port)
    std::string api_key;       ///< empty = no authentication
    std::size_t threads = 8;
    ApiLimits limits{};
    bool access_log = false;   ///< one line per request on stderr (request id, method, path, status, time)
};

class Server {
public:
    /// Binds the socket (kIoError when the address is taken or invalid).
    [[nodiscard]] static Result<std::unique_ptr<Server>> bind(engine::Store& store, const ServerOptions& options);
    ~Server();

    int port() const noexcept;
    /// Serves until stop().
    [[nodiscard]] Status run();
    void stop();

    struct Impl;

private:
    explicit Server(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::server
