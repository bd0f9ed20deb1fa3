/// @file server.h
/// @brief `quiver serve`: the Api (api.h) behind an event-driven HTTP/1.1 layer (GNU libmicrohttpd),
/// bound to loopback by default.
///
/// Transport model: `event_loops` threads (epoll) share the listening socket and do all socket I/O, so a
/// connection costs a socket and a small memory pool, never a thread: slow, idle or many clients cannot
/// starve the others. A request whose body is in is handed to one of `threads` workers (its connection is
/// suspended meanwhile), so a slow request holds a worker, never an event loop; clients (IP addresses)
/// have their own queues and take turns on the workers. Bounds, all enforced
/// before a request is routed:
///   - request line + headers: at most `max_header_bytes` in total (more is refused with 431 and the
///     connection closed; checked while reading, before the API key);
///   - headers of a new connection must arrive within `header_timeout_s`; a connection with no traffic
///     for `idle_timeout_s` is closed;
///   - at most `max_connections` connections, `max_connections_per_client` from one IP address;
///   - at most `max_queued_requests` requests waiting for a worker: more are answered at once with 429
///     `rate_limited` and `Retry-After: 1` (the server is overloaded), so queueing delay stays bounded;
///   - then the head checks of http_guard.h (Host, Origin/CORS, API key, declared body size, content
///     type), and only then is the body read (at most `limits.max_body_bytes`).
///
/// Thread-safety: `run` blocks the calling thread until `stop`; `stop` may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/server/api.h"
#include "quiver/server/http_guard.h"

namespace quiver::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 6333;                    ///< 0 = pick a free port (see Server::port)
    std::string api_key;                ///< empty = no authentication
    std::string read_only_api_key;      ///< empty = none
    std::vector<std::string> allowed_hosts;  ///< Host names accepted besides IP literals, localhost, `host`
    std::string cors_origin;            ///< empty = no cross-origin access
    std::size_t threads = 8;            ///< request workers (routing, search, writes)
    std::size_t event_loops = 2;        ///< threads doing the socket I/O (epoll)
    std::size_t max_header_bytes = 32u << 10;
    unsigned header_timeout_s = 10;
    unsigned idle_timeout_s = 60;
    std::size_t max_connections = 1024;
    std::size_t max_connections_per_client = 512;
    std::size_t max_queued_requests = 512;  ///< requests waiting for a worker at most (429 beyond; 0 = no bound)
    ApiLimits limits{};
    bool access_log = false;   ///< one line per request on stderr (request id, method, path, status, time)
};

class Server {
public:
    /// Binds and listens (kIoError naming the address, e.g. "127.0.0.1:6333 is already in use"; no
    /// SO_REUSEPORT, so a second server on a used port fails here).
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
