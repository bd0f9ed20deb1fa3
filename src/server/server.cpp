// The socket side of `quiver serve`: libmicrohttpd event loops, the head checks of http_guard.h, then
// Api::handle. See server.h for the transport model and its bounds.
#include "quiver/server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace quiver::server {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kFirstReserve = 4u << 20;

// One per request (MHD's req_cls): the raw target, then the body as it arrives.
struct RequestState {
    std::string target;  // as sent, percent-encoded, with the query string
    bool head_checked = false;
    bool body_too_large = false;
    std::size_t drained = 0;  // bytes dropped after the body went over the limit
    std::uint64_t declared = 0;  // Content-Length (0 when chunked)
    HeaderList cors;
    ApiRequest request;
    bool dispatched = false;  // handed to a worker; the connection is suspended until it is done
    ApiResponse response;
    // A refusal decided from the head of a request with a body (401, 403, 415): the body is read and
    // dropped (never stored), then this is sent, so a client that sends its body without waiting gets
    // the answer instead of a reset connection.
    std::optional<GuardReply> refusal;
};

// Requests run here, not on the event loops: a slow request (an optimize, a big upsert) holds a worker,
// never the I/O of other connections. Each client (IP address) has its own queue and the workers take
// the clients in turn, so a client with many requests in flight delays another client's request by at
// most one request per worker, not by its whole backlog. At most `max_queued` jobs wait for a worker
// (0 = no bound): beyond that a request is refused at once (429) instead of waiting behind the backlog,
// which bounds the time a request can spend queued. Jobs are only queued while accepting; drain()
// finishes them.
class Workers {
public:
    using Job = std::function<void()>;
    enum class Admit { kQueued, kFull, kStopping };
    Workers(std::size_t n, std::size_t max_queued) : max_queued_(max_queued) {
        for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
    }
    ~Workers() { drain(); }
    // Runs `suspend` and queues `job` under the queue lock; nothing is done when the queue is full or
    // the workers are draining.
    Admit submit(const std::string& client, const std::function<void()>& suspend, Job job) {
        {
            std::lock_guard lock(mu_);
            if (!accepting_) return Admit::kStopping;
            if (max_queued_ != 0 && queued_ >= max_queued_) return Admit::kFull;
            suspend();
            auto& q = queues_[client];
            if (q.empty()) turns_.push_back(client);
            q.push_back(std::move(job));
            ++queued_;
        }
        // After the unlock: a worker woken under the lock would block on it again at once (a second
        // wake-up). Workers wait with a predicate and outlive every submit (drain() joins them only).
        cv_.notify_one();
        return Admit::kQueued;
    }
    // Refuses new jobs, finishes the queued ones, joins the threads.
    void drain() {
        {
            std::lock_guard lock(mu_);
            accepting_ = false;
        }
        cv_.notify_all();
        for (auto& t : threads_) {
            if (t.joinable()) t.join();
        }
    }

private:
    void loop() {
        for (;;) {
            Job job;
            {
                std::unique_lock lock(mu_);
                cv_.wait(lock, [this] { return !turns_.empty() || !accepting_; });
                if (turns_.empty()) return;
                std::string client = std::move(turns_.front());
                turns_.pop_front();
                auto it = queues_.find(client);
                job = std::move(it->second.front());
                it->second.pop_front();
                --queued_;
                if (it->second.empty()) {
                    queues_.erase(it);
                } else {
                    turns_.push_back(std::move(client));  // its next request waits for the others' turns
                }
            }
            job();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::unordered_map<std::string, std::deque<Job>> queues_;  // per client, FIFO
    std::deque<std::string> turns_;                            // clients with queued jobs, in turn order
    bool accepting_ = true;
    const std::size_t max_queued_;
    std::size_t queued_ = 0;  // jobs waiting for a worker
    std::vector<std::thread> threads_;
};

// One per connection (MHD's socket_context), for the header deadline.
struct ConnectionTrack {
    int fd = -1;
    Clock::time_point deadline;  // max() = no deadline (a request is being handled)
    bool shut = false;
};

std::string header(MHD_Connection* c, const char* name) {
    const char* v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

struct Server::Impl {
    Impl(engine::Store& store, const ServerOptions& o)
        : options(o),
          // Authentication is the guard's (before the body is read), so the Api gets no key.
          api(store, std::string(), o.limits) {
        access.bound_host = o.host;
        access.allowed_hosts = o.allowed_hosts;
        access.cors_origin = o.cors_origin;
        access.api_key = o.api_key;
        access.read_only_api_key = o.read_only_api_key;
        if (o.access_log) {
            api.set_access_log([](const std::string& line) { std::fprintf(stderr, "quiver serve: %s\n", line.c_str()); });
        }
    }
    ~Impl() {
        if (listen_fd >= 0) ::close(listen_fd);
    }

    ServerOptions options;
    AccessOptions access;
    Api api;
    std::unique_ptr<Workers> workers;  // created by run()
    int listen_fd = -1;  // owned until MHD takes it in run()
    int port = 0;

    std::mutex mu;  // guards stopping, and the connection table
    std::condition_variable cv;
    bool stopping = false;
    std::unordered_map<ConnectionTrack*, std::unique_ptr<ConnectionTrack>> connections;

    void shut_overdue() {
        const auto now = Clock::now();
        for (auto& [key, t] : connections) {
            if (!t->shut && t->deadline < now) {
                ::shutdown(t->fd, SHUT_RDWR);  // MHD sees the end of the stream and closes the connection
                t->shut = true;
            }
        }
    }
};

namespace {

MHD_Result send(MHD_Connection* c, const ApiResponse& r, const HeaderList& headers) {
    MHD_Response* resp =
        MHD_create_response_from_buffer(r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
    if (resp == nullptr) return MHD_NO;
    if (!r.content_type.empty() && !r.body.empty()) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
    }
    if (!r.request_id.empty()) MHD_add_response_header(resp, "X-Request-Id", r.request_id.c_str());
    for (const auto& [k, v] : headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
    const MHD_Result ret = MHD_queue_response(c, static_cast<unsigned>(r.status), resp);
    MHD_destroy_response(resp);
    return ret;
}

// The client's IP address (the unit of fairness between clients), "" when unknown.
std::string client_of(MHD_Connection* c) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info == nullptr || info->client_addr == nullptr) return {};
    char text[INET6_ADDRSTRLEN] = {};
    const sockaddr* a = info->client_addr;
    if (a->sa_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a)->sin_addr, text, sizeof text);
    } else if (a->sa_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr, text, sizeof text);
    }
    return text;
}

ConnectionTrack* track_of(MHD_Connection* c) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info == nullptr ? nullptr : static_cast<ConnectionTrack*>(info->socket_context);
}

MHD_Result on_request(void* cls, MHD_Connection* c, const char* /*url*/, const char* method,
                      const char* /*version*/, const char* upload_data, size_t* upload_size, void** req_cls) {
    auto* s = static_cast<Server::Impl*>(cls);
    auto* st = static_cast<RequestState*>(*req_cls);
    if (st == nullptr) return MHD_NO;  // the URI callback always sets it
    if (!st->head_checked) {
        st->head_checked = true;
        if (ConnectionTrack* t = track_of(c)) {
            std::lock_guard lock(s->mu);
            t->deadline = Clock::time_point::max();  // headers are in
        }
        RequestHead head;
        head.method = method;
        head.path = st->target.substr(0, st->target.find('?'));
        head.host = header(c, MHD_HTTP_HEADER_HOST);
        head.origin = header(c, "Origin");
        head.content_type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
        head.authorization = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
        head.api_key = header(c, "X-API-Key");
        const std::string length = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!length.empty()) {
            char* end = nullptr;
            errno = 0;
            const unsigned long long n = std::strtoull(length.c_str(), &end, 10);
            // MHD rejects a malformed Content-Length itself; an overflow reads as "too large".
            head.content_length = (errno == ERANGE) ? UINT64_MAX : n;
            head.has_body = n > 0 || errno == ERANGE;
        } else {
            head.has_body = header(c, MHD_HTTP_HEADER_TRANSFER_ENCODING).find("chunked") != std::string::npos;
        }
        if (auto early = check_head(s->access, head, s->api.limits().max_body_bytes)) {
            early->response.request_id = Api::request_id_for(header(c, "X-Request-Id"));
            // Drop the body first only when the client is sending it anyway: not after
            // "Expect: 100-continue" (it waits for our answer) and not past the body limit.
            const bool will_send = header(c, "Expect").empty();
            if (head.has_body && will_send && early->response.status != 413 &&
                head.content_length.value_or(0) <= s->api.limits().max_body_bytes) {
                st->refusal = std::move(early);
                return MHD_YES;
            }
            return send(c, early->response, early->headers);  // before any body byte is accepted
        }
        st->cors = cors_headers(s->access, head.origin);
        ApiRequest& r = st->request;
        r.method = std::move(head.method);
        r.path = std::move(head.path);
        r.content_type = std::move(head.content_type);
        r.authorization = std::move(head.authorization);
        r.api_key = std::move(head.api_key);
        if (const std::size_t q = st->target.find('?'); q != std::string::npos) r.query = st->target.substr(q + 1);
        r.request_id = header(c, "X-Request-Id");
        st->declared = head.content_length.value_or(0);
        // A client that declares a large body but sends it slowly holds at most 4 MiB until it sends more.
        r.body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(st->declared, kFirstReserve)));
        return MHD_YES;  // MHD answers "Expect: 100-continue" now
    }
    if (st->refusal) {
        if (*upload_size > 0) {  // dropped; a client streaming past the body limit is cut off
            st->drained += *upload_size;
            *upload_size = 0;
            return st->drained > s->api.limits().max_body_bytes ? MHD_NO : MHD_YES;
        }
        return send(c, st->refusal->response, st->refusal->headers);
    }
    if (*upload_size > 0) {
        const std::size_t max = s->api.limits().max_body_bytes;
        if (!st->body_too_large && st->request.body.size() + *upload_size <= max) {
            std::string& body = st->request.body;
            if (body.size() + *upload_size > body.capacity() && st->declared > 0 && st->declared <= max) {
                body.reserve(std::max<std::size_t>(static_cast<std::size_t>(st->declared), body.size() + *upload_size));
            }
            body.append(upload_data, *upload_size);
        } else {
            // A chunked body over the limit: drain a little more to answer 413 at its end; a client that
            // goes on streaming past twice the limit is cut off.
            st->body_too_large = true;
            std::string().swap(st->request.body);
            st->drained += *upload_size;
            if (st->drained > max) return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (st->body_too_large) {
        ApiResponse resp = Api::error_response(
            413, "payload_too_large", "request body exceeds " + std::to_string(s->api.limits().max_body_bytes) + " bytes");
        resp.request_id = Api::request_id_for(st->request.request_id);
        return send(c, resp, st->cors);
    }
    if (st->dispatched) return send(c, st->response, st->cors);  // resumed: the worker is done
    if (st->request.method == "GET" && (st->request.path == "/healthz" || st->request.path == "/v1/healthz")) {
        // Answered on the event loop: a constant reply that neither waits behind nor is refused by a full queue.
        return send(c, s->api.handle(st->request), st->cors);
    }
    const auto admitted = s->workers->submit(client_of(c), [c] { MHD_suspend_connection(c); }, [s, st, c] {
        st->response = s->api.handle(st->request);
        std::string().swap(st->request.body);
        MHD_resume_connection(c);  // MHD calls on_request again, which sends the response
    });
    st->dispatched = admitted == Workers::Admit::kQueued;
    if (st->dispatched) return MHD_YES;
    if (admitted == Workers::Admit::kFull) {
        ApiResponse resp = s->api.reject(st->request, 429, "rate_limited",
                                         "the server is overloaded (" + std::to_string(s->options.max_queued_requests) +
                                             " requests wait for a worker); retry after a second");
        HeaderList headers = st->cors;
        headers.emplace_back("Retry-After", "1");
        return send(c, resp, headers);
    }
    const ApiResponse resp = s->api.handle(st->request);  // stopping: no workers left, answer inline
    return send(c, resp, st->cors);
}

// Called with the raw request target before anything else; its result becomes the request's req_cls.
void* on_uri(void* /*cls*/, const char* uri, MHD_Connection* /*c*/) {
    auto* st = new RequestState;
    st->target = uri == nullptr ? std::string() : std::string(uri);
    return st;
}

void on_completed(void* cls, MHD_Connection* c, void** req_cls, MHD_RequestTerminationCode /*toe*/) {
    delete static_cast<RequestState*>(*req_cls);
    *req_cls = nullptr;
    auto* s = static_cast<Server::Impl*>(cls);
    if (ConnectionTrack* t = track_of(c)) {
        // Idle keep-alive, then the next request's headers: both bounded.
        std::lock_guard lock(s->mu);
        t->deadline = Clock::now() + std::chrono::seconds(s->options.idle_timeout_s + s->options.header_timeout_s);
    }
}

void on_connection(void* cls, MHD_Connection* c, void** socket_context, MHD_ConnectionNotificationCode code) {
    auto* s = static_cast<Server::Impl*>(cls);
    std::lock_guard lock(s->mu);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        auto t = std::make_unique<ConnectionTrack>();
        const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        t->fd = info == nullptr ? -1 : info->connect_fd;
        t->deadline = Clock::now() + std::chrono::seconds(s->options.header_timeout_s);
        t->shut = t->fd < 0;
        *socket_context = t.get();
        s->connections.emplace(t.get(), std::move(t));
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        // MHD closes the socket only after this returns, so the reaper never shuts a reused descriptor.
        s->connections.erase(static_cast<ConnectionTrack*>(*socket_context));
        *socket_context = nullptr;
    }
}

// Paths stay as sent: Api splits on '/' before percent-decoding (ids may contain "%2F").
size_t keep_escaped(void* /*cls*/, MHD_Connection* /*c*/, char* s) { return std::strlen(s); }

std::string describe(const std::string& host, int port) {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { stop(); }

Result<std::unique_ptr<Server>> Server::bind(engine::Store& store, const ServerOptions& options) {
    if (options.port < 0 || options.port > 65535) return invalid_argument("port must be in 0..65535");
    auto impl = std::make_unique<Impl>(store, options);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port_text = std::to_string(options.port);
    if (const int rc = ::getaddrinfo(options.host.c_str(), port_text.c_str(), &hints, &res); rc != 0) {
        return invalid_argument("cannot resolve --host '" + options.host + "': " + gai_strerror(rc));
    }
    std::string failure = "no address";
    int fd = -1;
    for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            failure = std::strerror(errno);
            continue;
        }
        // SO_REUSEADDR only skips TIME_WAIT after a restart; without SO_REUSEPORT a port that another
        // process listens on stays refused.
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
            const int err = errno;
            failure = err == EADDRINUSE ? "already in use (is another quiver serve running?)"
                      : err == EACCES   ? "permission denied (ports below 1024 need privileges)"
                                        : std::strerror(err);
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(res);
    if (fd < 0) return io_error("cannot listen on " + describe(options.host, options.port) + ": " + failure);
    impl->listen_fd = fd;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        impl->port = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                                : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    }
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

int Server::port() const noexcept { return impl_->port; }

Status Server::run() {
    Impl* s = impl_.get();
    {
        std::lock_guard lock(s->mu);
        if (s->stopping) return ok_status();
    }
    if (s->listen_fd < 0) return failed_precondition("the server has already run");
    const ServerOptions& o = s->options;
    const int fd = s->listen_fd;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    s->workers = std::make_unique<Workers>(o.threads == 0 ? 1 : o.threads, o.max_queued_requests);
    const unsigned loops = o.event_loops == 0 ? 1u : static_cast<unsigned>(o.event_loops);
    MHD_Daemon* d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, nullptr, nullptr,
        &on_request, s,
        MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(fd),
        MHD_OPTION_THREAD_POOL_SIZE, loops,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(o.max_header_bytes),
        MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned>(o.max_connections),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, static_cast<unsigned>(o.max_connections_per_client),
        MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(o.idle_timeout_s),
        MHD_OPTION_URI_LOG_CALLBACK, &on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, &on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, &on_connection, s,
        MHD_OPTION_UNESCAPE_CALLBACK, &keep_escaped, s,
        MHD_OPTION_END);
    if (d == nullptr) {
        s->workers->drain();
        return io_error("cannot start the HTTP server on " + describe(o.host, s->port));
    }
    s->listen_fd = -1;  // MHD owns and closes it now
    {
        std::unique_lock lock(s->mu);
        while (!s->stopping) {
            s->cv.wait_for(lock, std::chrono::milliseconds(250));
            s->shut_overdue();
        }
    }
    // Every suspended connection is resumed by its job before MHD stops (an MHD requirement).
    s->workers->drain();
    MHD_stop_daemon(d);
    return ok_status();
}

void Server::stop() {
    if (!impl_) return;
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
}

}  // namespace quiver::server
