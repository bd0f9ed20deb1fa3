#include "cli/eval_retrievers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

namespace quiver::cli {
namespace {
std::map<std::string, EvalRetrieverFactory, std::less<>>& registry() {
    static std::map<std::string, EvalRetrieverFactory, std::less<>> r;
    return r;
}
}  // namespace

EvalRetrieverRegistrar::EvalRetrieverRegistrar(const char* name, EvalRetrieverFactory factory) {
    registry()[name] = factory;
}

Result<std::unique_ptr<EvalRetriever>> make_eval_retriever(std::string_view name,
                                                           const EvalRetrieverConfig& config) {
    auto it = registry().find(name);
    if (it == registry().end()) {
        return invalid_argument(fmt::format("unknown retriever '{}' (known: {})", name,
                                            fmt::join(eval_retriever_names(), ", ")));
    }
    return it->second(config);
}

std::vector<std::string> eval_retriever_names() {
    std::vector<std::string> names;
    for (const auto& [name, f] : registry()) names.push_back(name);
    return names;
}

}  // namespace quiver::cli
