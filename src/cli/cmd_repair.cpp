// quiver repair: explicit salvage of a collection that refuses to open with data_loss.
#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/engine/repair.h"
#include "quiver/engine/store.h"

namespace quiver::cli {
namespace {

struct RepairOptions {
    std::string data;
    std::string collection;
    bool json = false;
};

int run_repair(const RepairOptions& o) {
    if (!engine::valid_collection_name(o.collection)) {
        return report("repair", invalid_argument("invalid collection name '" + o.collection + "'"));
    }
    const std::string dir = o.data + "/" + o.collection;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        return report("repair", not_found("collection directory '" + dir + "' not found"));
    }
    auto r = engine::repair_collection(dir);
    if (!r) return report("repair", r.error());
    if (o.json) {
        using json::Value;
        Value v = Value::object();
        auto num = [](std::uint64_t x) { return Value::number(static_cast<double>(x)); };
        v.set("collection", Value::string(o.collection));
        v.set("documents", num(r->documents));
        v.set("segments_kept", num(r->segments_kept));
        v.set("segments_dropped", num(r->segments_dropped));
        v.set("delete_files_damaged", num(r->delete_files_damaged));
        v.set("deletes_lost_documents", num(r->deletes_lost_documents));
        v.set("log_records_replayed", num(r->log_records_replayed));
        v.set("log_records_undecodable", num(r->log_records_undecodable));
        v.set("log_bytes_dropped", num(r->log_bytes_dropped));
        v.set("sequence_gaps", num(r->sequence_gaps));
        v.set("side_dir", Value::string(r->side_dir));
        Value actions = Value::array();
        for (const auto& a : r->actions) actions.as_array().push_back(Value::string(a));
        v.set("actions", std::move(actions));
        std::printf("%s\n", json::dump(v, true).c_str());
        return 0;
    }
    std::printf("repaired '%s': %llu documents\n", dir.c_str(),
                static_cast<unsigned long long>(r->documents));
    std::printf(
        "  segments kept %llu, dropped %llu; damaged delete files %llu (%llu documents kept "
        "without their "
        "deletion state)\n",
        static_cast<unsigned long long>(r->segments_kept),
        static_cast<unsigned long long>(r->segments_dropped),
        static_cast<unsigned long long>(r->delete_files_damaged),
        static_cast<unsigned long long>(r->deletes_lost_documents));
    std::printf(
        "  log records replayed %llu, undecodable %llu; log bytes dropped %llu; sequence gaps "
        "%llu\n",
        static_cast<unsigned long long>(r->log_records_replayed),
        static_cast<unsigned long long>(r->log_records_undecodable),
        static_cast<unsigned long long>(r->log_bytes_dropped),
        static_cast<unsigned long long>(r->sequence_gaps));
    for (const auto& a : r->actions) std::printf("  - %s\n", a.c_str());
    if (!r->side_dir.empty())
        std::printf("  dropped material and the original logs: %s\n", r->side_dir.c_str());
    return 0;
}

void add_repair_command(CLI::App& app) {
    auto o = std::make_shared<RepairOptions>();
    auto* sub = app.add_subcommand(
        "repair",
        "Salvage a damaged collection: keep every intact record, set aside what cannot be kept");
    sub->add_option("--data", o->data, "Data directory")->required();
    sub->add_option("--collection", o->collection, "Collection name")->required();
    sub->add_flag("--json", o->json, "JSON output");
    set_action(sub, [o] { return run_repair(*o); });
}

const CommandRegistrar kRegister{63, &add_repair_command};

}  // namespace
}  // namespace quiver::cli
