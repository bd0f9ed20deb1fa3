// quiver serve: the HTTP API over a data directory of collections.
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/engine/owner.h"
#include "quiver/engine/store.h"
#include "quiver/server/server.h"

namespace quiver::cli {
namespace {

struct ServeOptions {
    std::string data;
    std::string models;
    server::ServerOptions server;
    std::string api_key_file;
    std::string read_only_api_key_file;
    std::string allowed_hosts;
    std::size_t max_body_mb = 64;
    std::size_t max_header_kb = 32;
    std::uint32_t commit_delay_us = 200;
    std::uint64_t filter_budget = engine::CollectionOptions{}.filter_budget;
};

// A key from a file (first line, surrounding whitespace dropped); the file must not be empty.
Result<std::string> read_key_file(const std::string& path, std::string_view flag) {
    std::ifstream in(path);
    if (!in) return io_error(std::string(flag) + ": cannot read '" + path + "'");
    std::string key;
    std::getline(in, key);
    while (!key.empty() && (key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) key.pop_back();
    while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.erase(key.begin());
    if (key.empty()) return invalid_argument(std::string(flag) + ": '" + path + "' holds no key");
    return key;
}

// Precedence: the file, then the flag, then the environment variable.
Result<std::string> resolve_key(const std::string& flag_value, const std::string& file, const char* env,
                                std::string_view file_flag) {
    if (!file.empty()) return read_key_file(file, file_flag);
    if (!flag_value.empty()) return flag_value;
    const char* e = std::getenv(env);
    return std::string(e == nullptr ? "" : e);
}

// Enough descriptors for the connection cap (the soft limit is often 1024).
void raise_fd_limit(std::size_t connections) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    const rlim_t want = static_cast<rlim_t>(connections + 256);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want) ? want : rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int run_serve(ServeOptions o) {
    // Block the stop signals in every thread; this one waits for them with sigwait.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);  // a client closing early must not end the server
    // An exceeded file-size limit (ulimit -f) fails the write with EFBIG (HTTP 507), not the process.
    ::signal(SIGXFSZ, SIG_IGN);
    // One process owns a data directory; the CLI finds this server's address in <data>/OWNER.
    auto owner = engine::DirectoryOwner::acquire(o.data, "");
    if (!owner) return report("serve", owner.error());
    server::ServerOptions so = o.server;
    auto key = resolve_key(so.api_key, o.api_key_file, "QUIVER_API_KEY", "--api-key-file");
    if (!key) return report("serve", key.error());
    so.api_key = *key;
    auto ro_key = resolve_key(so.read_only_api_key, o.read_only_api_key_file, "QUIVER_READ_ONLY_API_KEY",
                              "--read-only-api-key-file");
    if (!ro_key) return report("serve", ro_key.error());
    so.read_only_api_key = *ro_key;
    if (!so.read_only_api_key.empty() && so.read_only_api_key == so.api_key) {
        return report("serve", invalid_argument("the read-only API key must differ from the API key"));
    }
    if (!so.read_only_api_key.empty() && so.api_key.empty()) {
        return report("serve", invalid_argument("a read-only API key needs an API key for writes "
                                                "(--api-key-file or QUIVER_API_KEY)"));
    }
    std::stringstream hosts(o.allowed_hosts);
    for (std::string h; std::getline(hosts, h, ',');) {
        if (!h.empty()) so.allowed_hosts.push_back(h);
    }
    so.limits.max_body_bytes = o.max_body_mb << 20;
    so.max_header_bytes = o.max_header_kb << 10;
    raise_fd_limit(so.max_connections);
    engine::CollectionOptions copts;
    copts.models_dir = o.models;  // set even when empty: a server resolves encoder names, never paths
    copts.commit_delay_us = o.commit_delay_us;
    copts.filter_budget = o.filter_budget;
    auto store = engine::Store::open(o.data, copts);
    if (!store) return report("serve", store.error());
    auto srv = server::Server::bind(**store, so);
    if (!srv) return report("serve", srv.error());
    const std::string shown = so.host.find(':') != std::string::npos ? "[" + so.host + "]" : so.host;
    {
        const bool any = so.host == "0.0.0.0" || so.host == "::" || so.host.empty();
        const std::string host = any ? "127.0.0.1" : shown;
        auto st = owner->set_address("http://" + host + ":" + std::to_string((*srv)->port()));
        if (!st) return report("serve", st.error());
    }
    std::fprintf(stderr, "quiver serve: %s on http://%s:%d (%zu collections)%s%s\n", o.data.c_str(),
                 shown.c_str(), (*srv)->port(), (*store)->list().size(),
                 so.api_key.empty() ? "" : ", API key required",
                 so.read_only_api_key.empty() ? "" : " (read-only key accepted for reads)");
    if (so.allowed_hosts.empty() && so.host != "127.0.0.1" && so.host != "::1" && so.host != "localhost") {
        std::fprintf(stderr, "quiver serve: requests must name this server by IP address or '%s' in Host; "
                             "add other names with --allowed-hosts\n", so.host.c_str());
    }
    for (const auto& u : (*store)->unavailable()) {
        std::fprintf(stderr, "quiver serve: collection '%s' is unavailable (see `quiver repair`): %s\n",
                     u.name.c_str(), u.error.to_string().c_str());
    }
    Status served;
    std::thread worker([&] { served = (*srv)->run(); });
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr, "quiver serve: signal %d, stopping\n", sig);
    (*srv)->stop();
    worker.join();
    srv->reset();
    store->reset();  // closes collections: merges stop, logs close
    if (!served) return report("serve", served.error());
    return 0;
}

void add_serve_command(CLI::App& app) {
    auto o = std::make_shared<ServeOptions>();
    auto* sub = app.add_subcommand("serve", "Serve collections over HTTP (JSON API, docs/openapi.yaml, docs/server.md)");
    sub->add_option("--data", o->data, "Data directory (created if missing)")->required();
    sub->add_option("--host", o->server.host, "Address to bind (loopback by default)")->capture_default_str();
    sub->add_option("--port", o->server.port, "Port (0 = any free port); a port in use is an error")
        ->capture_default_str();
    sub->add_option("--models", o->models,
                    "Directory of encoder models: a schema's \"encoder\" names a model folder in it "
                    "(or \"hashing\"); paths are refused");
    sub->add_option("--api-key", o->server.api_key,
                    "Require this key (Authorization: Bearer KEY or X-API-Key) on every route but /healthz. "
                    "Visible in ps: prefer --api-key-file or QUIVER_API_KEY");
    sub->add_option("--api-key-file", o->api_key_file, "Read the API key from this file (first line)");
    sub->add_option("--read-only-api-key", o->server.read_only_api_key,
                    "A second key that may GET and search but not write (403); also QUIVER_READ_ONLY_API_KEY");
    sub->add_option("--read-only-api-key-file", o->read_only_api_key_file, "Read the read-only key from this file");
    sub->add_option("--allowed-hosts", o->allowed_hosts,
                    "Comma-separated Host names accepted besides IP addresses, localhost and --host "
                    "(\"*\" = any; guards against DNS rebinding)");
    sub->add_option("--cors-origin", o->server.cors_origin,
                    "The one browser origin allowed cross-origin access, e.g. https://app.example.com "
                    "(default: none)");
    sub->add_option("--threads", o->server.threads, "Request worker threads (socket I/O runs on 2 event loops)")
        ->capture_default_str();
    sub->add_option("--max-connections", o->server.max_connections, "Open connections at most")
        ->capture_default_str();
    sub->add_option("--max-connections-per-client", o->server.max_connections_per_client,
                    "Open connections from one IP address at most")
        ->capture_default_str();
    sub->add_option("--max-queue", o->server.max_queued_requests,
                    "Requests waiting for a worker at most; more are refused with 429 and Retry-After "
                    "(0 = no bound)")
        ->capture_default_str();
    sub->add_option("--commit-delay-us", o->commit_delay_us,
                    "Under concurrent writes, how long a group-commit leader may wait for the other writers "
                    "before its fsync (microseconds; a lone writer never waits; 0 = never)")
        ->capture_default_str();
    sub->add_option("--filter-budget", o->filter_budget,
                    "Work units one request's filter evaluation may take (about one attribute test of one "
                    "document each; docs/filtering.md); a filter over it gets 422 filter_budget_exceeded")
        ->capture_default_str();
    sub->add_option("--header-timeout", o->server.header_timeout_s,
                    "Seconds a new connection has to send its request headers")
        ->capture_default_str();
    sub->add_option("--idle-timeout", o->server.idle_timeout_s, "Seconds of silence before a connection is closed")
        ->capture_default_str();
    sub->add_option("--max-header-kb", o->max_header_kb,
                    "Request line + headers in KiB at most (431 and the connection closed beyond)")
        ->capture_default_str();
    sub->add_option("--max-body-mb", o->max_body_mb, "Largest request body in MiB (413 beyond)")->capture_default_str();
    sub->add_option("--max-batch", o->server.limits.max_batch_docs, "Most documents or ids per write request")
        ->capture_default_str();
    sub->add_flag("--access-log", o->server.access_log, "Log one line per request to stderr (X-Request-Id, method, "
                                                         "path, status, milliseconds)");
    set_action(sub, [o] { return run_serve(*o); });
}

const CommandRegistrar kRegister{60, &add_serve_command};

}  // namespace
}  // namespace quiver::cli
