// quiver info: what an index file holds.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/index/code_index.h"
#include "quiver/index/vector_index.h"

namespace quiver::cli {
namespace {

void add_info_command(CLI::App& app) {
    auto path = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    auto verify = std::make_shared<bool>(false);
    auto on_disk = std::make_shared<bool>(false);
    auto* sub = app.add_subcommand("info", "Describe a dense index file (kind, size, dimension, metric, resident bytes)");
    sub->add_option("index,--index-file", *path, "Index file (positional, or --index-file)")->required();
    sub->add_flag("--json", *as_json, "JSON output");
    sub->add_flag("--verify", *verify,
                  "Check every section's checksum and structure (opening checks only the header and small sections)");
    sub->add_flag("--vectors-on-disk", *on_disk,
                  "Report the resident bytes as `quiver search --vectors-on-disk` holds them (indexes on codes)");
    set_action(sub, [path, as_json, verify, on_disk] {
        const auto t0 = std::chrono::steady_clock::now();
        auto idx = index::open_index(*path, {.vectors_on_disk = *on_disk, .verify = *verify});
        const double open_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!idx) return report("info", idx.error());
        const auto info = (*idx)->info();
        const std::size_t resident = (*idx)->memory_bytes();
        std::error_code ec;
        const auto bytes = std::filesystem::file_size(*path, ec);
        if (*as_json) {
            json::Value v = json::Value::object();
            v.set("kind", json::Value::string(info.kind));
            v.set("dim", json::Value::number(static_cast<double>(info.dim)));
            v.set("metric", json::Value::string(std::string(simd::to_string(info.metric))));
            v.set("vectors", json::Value::number(static_cast<double>(info.size)));
            v.set("file_bytes", json::Value::number(static_cast<double>(bytes)));
            v.set("has_external_ids", json::Value::boolean(!(*idx)->external_ids().empty()));
            v.set("resident_bytes", json::Value::number(static_cast<double>(resident)));
            v.set("vectors_on_disk", json::Value::boolean(*on_disk));
            v.set("verified", json::Value::boolean(*verify));
            v.set("open_seconds", json::Value::number(open_seconds));
            if (const auto* c = dynamic_cast<const index::CodeIndex*>(idx->get())) {
                const auto f = c->footprint();
                v.set("codec", json::Value::string(c->params().codec.to_string()));
                v.set("nlist", json::Value::number(static_cast<double>(c->nlist())));
                v.set("resident_bytes_per_vector", json::Value::number(f.resident_per_vector()));
                v.set("float_bytes_per_vector_on_disk",
                      json::Value::number(f.vectors > 0 ? double(f.float_bytes) / double(f.vectors) : 0.0));
            }
            std::printf("%s\n", json::dump(v, true).c_str());
        } else {
            std::printf("%s: %s index, %zu vectors x %zu dims, metric %s, %.1f MiB on disk%s\n", path->c_str(),
                        info.kind.c_str(), info.size, info.dim, std::string(simd::to_string(info.metric)).c_str(),
                        static_cast<double>(bytes) / 1048576.0,
                        (*idx)->external_ids().empty() ? "" : ", with string ids");
            std::printf("  resident %.1f MiB (%.1f bytes per vector%s); opened in %.3fs%s\n",
                        static_cast<double>(resident) / 1048576.0,
                        info.size > 0 ? static_cast<double>(resident) / static_cast<double>(info.size) : 0.0,
                        *on_disk ? ", float32 vectors on disk" : "", open_seconds,
                        *verify ? ", every section verified" : ", large sections are verified on first use");
            if (const auto* c = dynamic_cast<const index::CodeIndex*>(idx->get())) {
                const auto f = c->footprint();
                const double n = f.vectors > 0 ? double(f.vectors) : 1.0;
                std::printf("  codec %s%s: %.1f bytes per vector resident (codes %.1f, ids %.1f, parameters %.1f); "
                            "float32 vectors %s: %.1f bytes per vector, read by the rescore\n",
                            c->params().codec.to_string().c_str(),
                            c->nlist() > 0 ? fmt::format(", {} lists", c->nlist()).c_str() : "",
                            f.resident_per_vector(), double(f.code_bytes) / n, double(f.id_bytes) / n,
                            double(f.parameter_bytes) / n, f.float_bytes > 0 ? "mapped from the file" : "not kept",
                            double(f.float_bytes) / n);
            }
        }
        return 0;
    });
}

const CommandRegistrar kRegister{35, &add_info_command};

}  // namespace
}  // namespace quiver::cli
