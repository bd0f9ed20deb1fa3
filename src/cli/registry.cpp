#include "cli/registry.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace quiver::cli {
namespace {
std::vector<std::pair<int, AddCommandFn>>& registry() {
    static std::vector<std::pair<int, AddCommandFn>> r;
    return r;
}
}  // namespace

CommandRegistrar::CommandRegistrar(int order, AddCommandFn add) { registry().emplace_back(order, add); }

void add_registered_commands(CLI::App& app) {
    auto r = registry();
    std::stable_sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [order, add] : r) add(app);
}

}  // namespace quiver::cli
