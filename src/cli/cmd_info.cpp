// quiver info: what an index file holds.
#include <fmt/format.h>

#include <filesystem>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/index/vector_index.h"

namespace quiver::cli {
namespace {

void add_info_command(CLI::App& app) {
    auto path = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    auto* sub = app.add_subcommand("info", "Describe a dense index file (kind, size, dimension, metric)");
    sub->add_option("index,--index-file", *path, "Index file (positional, or --index-file)")->required();
    sub->add_flag("--json", *as_json, "JSON output");
    set_action(sub, [path, as_json] {
        auto idx = index::open_index(*path);
        if (!idx) return report("info", idx.error());
        const auto info = (*idx)->info();
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
            std::printf("%s\n", json::dump(v, true).c_str());
        } else {
            std::printf("%s: %s index, %zu vectors x %zu dims, metric %s, %.1f MiB on disk%s\n", path->c_str(),
                        info.kind.c_str(), info.size, info.dim, std::string(simd::to_string(info.metric)).c_str(),
                        static_cast<double>(bytes) / 1048576.0,
                        (*idx)->external_ids().empty() ? "" : ", with string ids");
        }
        return 0;
    });
}

const CommandRegistrar kRegister{35, &add_info_command};

}  // namespace
}  // namespace quiver::cli
