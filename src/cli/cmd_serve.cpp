// quiver serve: the HTTP API over a data directory of collections.
#include <signal.h>

#include <cstdio>
#include <thread>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/engine/store.h"
#include "quiver/server/server.h"

namespace quiver::cli {
namespace {

struct ServeOptions {
    std::string data;
    server::ServerOptions server;
    std::size_t max_body_mb = 64;
};

int run_serve(const ServeOptions& o) {
    // Block the stop signals in every thread; this one waits for them with sigwait.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    // An exceeded file-size limit (ulimit -f) fails the write with EFBIG (HTTP 507), not the process.
    ::signal(SIGXFSZ, SIG_IGN);
    auto store = engine::Store::open(o.data);
    if (!store) return report("serve", store.error());
    server::ServerOptions so = o.server;
    so.limits.max_body_bytes = o.max_body_mb << 20;
    auto srv = server::Server::bind(**store, so);
    if (!srv) return report("serve", srv.error());
    std::fprintf(stderr, "quiver serve: %s on http://%s:%d (%zu collections)%s\n", o.data.c_str(),
                 so.host.c_str(), (*srv)->port(), (*store)->list().size(),
                 so.api_key.empty() ? "" : ", API key required");
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
    auto* sub = app.add_subcommand("serve", "Serve collections over HTTP (JSON API, docs/openapi.yaml)");
    sub->add_option("--data", o->data, "Data directory (created if missing)")->required();
    sub->add_option("--host", o->server.host, "Address to bind (loopback by default)");
    sub->add_option("--port", o->server.port, "Port (0 = any free port)");
    sub->add_option("--api-key", o->server.api_key, "Require this key (Authorization: Bearer KEY or X-API-Key) "
                                                     "on every route but /healthz");
    sub->add_option("--threads", o->server.threads, "Request worker threads");
    sub->add_option("--max-body-mb", o->max_body_mb, "Largest request body in MiB");
    sub->add_option("--max-batch", o->server.limits.max_batch_docs, "Most documents or ids per write request");
    set_action(sub, [o] { return run_serve(*o); });
}

const CommandRegistrar kRegister{60, &add_serve_command};

}  // namespace
}  // namespace quiver::cli
