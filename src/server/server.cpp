// The socket side of `quiver serve`: cpp-httplib forwards every request to Api::handle.
#include "quiver/server/server.h"

#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

namespace quiver::server {

struct Server::Impl {
    Impl(engine::Store& store, const ServerOptions& o) : options(o), api(store, o.api_key, o.limits) {}
    ServerOptions options;
    Api api;
    httplib::Server http;
    int port = 0;
};

namespace {

void reply(httplib::Response& res, const ApiResponse& r) {
    res.status = r.status;
    if (!r.request_id.empty()) res.set_header("X-Request-Id", r.request_id);
    res.set_content(r.body, r.content_type.c_str());
}

}  // namespace

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { stop(); }

Result<std::unique_ptr<Server>> Server::bind(engine::Store& store, const ServerOptions& options) {
    auto impl = std::make_unique<Impl>(store, options);
    Impl* s = impl.get();
    const std::size_t threads = options.threads == 0 ? 1 : options.threads;
    s->http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    s->http.set_payload_max_length(options.limits.max_body_bytes);
    s->http.set_tcp_nodelay(true);  // small JSON replies must not wait for delayed ACKs (40 ms stalls)
    if (options.access_log) {
        s->api.set_access_log([](const std::string& line) { std::fprintf(stderr, "quiver serve: %s\n", line.c_str()); });
    }
    s->http.set_read_timeout(30, 0);
    s->http.set_write_timeout(30, 0);
    auto forward = [s](const httplib::Request& req, httplib::Response& res, std::string body) {
        ApiRequest r;
        r.method = req.method;
        // The raw target, not httplib's decoded path: segments are decoded after splitting on '/'.
        const std::size_t q = req.target.find('?');
        r.path = req.target.substr(0, q);
        if (q != std::string::npos) r.query = req.target.substr(q + 1);
        r.request_id = req.get_header_value("X-Request-Id");
        r.body = std::move(body);
        r.content_type = req.get_header_value("Content-Type");
        r.authorization = req.get_header_value("Authorization");
        r.api_key = req.get_header_value("X-API-Key");
        reply(res, s->api.handle(r));
    };
    auto handler = [forward](const httplib::Request& req, httplib::Response& res) { forward(req, res, req.body); };
    // Bodies are read through a content reader: httplib then neither parses form bodies itself (it
    // answered 413 to a form-encoded body over 8 KB) nor leaves a body unread; the Api answers 415 to
    // a body that is not JSON. Reading stops at the body limit (413 from httplib).
    auto with_body = [s, forward](const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& read) {
        std::string body;
        bool complete = true;
        if (req.is_multipart_form_data()) {  // a browser form: drained by httplib's part parser, then 415
            complete = read([](const httplib::MultipartFormData&) { return true; },
                            [](const char*, std::size_t) { return true; });
            body = "(multipart form data)";
        } else {
            const std::size_t declared = std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10);
            body.reserve(std::min(declared, s->options.limits.max_body_bytes));
            complete = read([&](const char* data, std::size_t n) {
                body.append(data, n);
                return true;
            });
        }
        if (!complete) {  // over the body limit (httplib set 413) or a truncated body
            ApiRequest r;
            r.method = req.method;
            r.path = req.target.substr(0, req.target.find('?'));
            r.request_id = req.get_header_value("X-Request-Id");
            const bool too_large = res.status == 413;
            res.set_header("Connection", "close");
            reply(res, s->api.reject(r, too_large ? 413 : 400, too_large ? "payload_too_large" : "invalid_argument",
                                     too_large ? "request body too large" : "the request body could not be read"));
            return;
        }
        forward(req, res, std::move(body));
    };
    // Before any body is read: a POST/PUT/PATCH without Content-Length or chunked encoding has no body
    // (curl -X POST URL; httplib would wait for one until the connection closes).
    s->http.set_pre_routing_handler([handler](const httplib::Request& req, httplib::Response& res) {
        const bool may_have_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
        if (!may_have_body || req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
            return httplib::Server::HandlerResponse::Unhandled;
        }
        handler(req, res);
        return httplib::Server::HandlerResponse::Handled;
    });
    s->http.Get(".*", handler);
    s->http.Post(".*", with_body);
    s->http.Put(".*", with_body);
    s->http.Delete(".*", handler);
    s->http.Patch(".*", with_body);
    s->http.Options(".*", handler);
    // Errors httplib detects itself (oversized body, bad request line) still get a JSON body.
    s->http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return;
        const int status = res.status;
        const char* code = status == 413 ? "payload_too_large" : status >= 500 ? "internal" : "invalid_argument";
        const char* message = status == 413 ? "request body too large" : "malformed HTTP request";
        reply(res, Api::error_response(status, code, message));
    });
    s->http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        reply(res, Api::error_response(500, "internal", "internal error"));
    });
    if (options.port == 0) {
        s->port = s->http.bind_to_any_port(options.host.c_str());
        if (s->port <= 0) return io_error("cannot bind " + options.host);
    } else {
        if (!s->http.bind_to_port(options.host.c_str(), options.port)) {
            return io_error("cannot bind " + options.host + ":" + std::to_string(options.port));
        }
        s->port = options.port;
    }
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

int Server::port() const noexcept { return impl_->port; }

Status Server::run() {
    if (!impl_->http.listen_after_bind()) return io_error("server stopped with an error");
    return ok_status();
}

void Server::stop() {
    if (impl_) impl_->http.stop();
}

}  // namespace quiver::server
