// `quiver bench <what> ...` runs the benchmark driver `quiver-bench`, built in bench/ beside this
// binary. Peers (hnswlib, FAISS, Xapian, PyTorch) are linked into that driver only, never into quiver.
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "cli/common.h"

namespace quiver::cli {

void add_bench_command(CLI::App& app, const std::string& argv0) {
    auto* sub = app.add_subcommand(
        "bench", "Benchmark quiver against peer engines on the same data (runs quiver-bench; "
                 "see `quiver bench ann --help`)");
    sub->prefix_command();
    sub->set_help_flag();  // `quiver bench --help` is answered by quiver-bench itself
    sub->allow_extras();
    set_action(sub, [sub, argv0]() -> int {
        std::vector<std::string> args = sub->remaining();
        std::error_code ec;
        std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
        if (ec) self = argv0;
        std::vector<std::filesystem::path> candidates = {
            self.parent_path() / "quiver-bench", self.parent_path().parent_path() / "bench" / "quiver-bench"};
        for (const auto& c : candidates) {
            if (!std::filesystem::exists(c, ec)) continue;
            std::vector<char*> cargv;
            std::string prog = c.string();
            cargv.push_back(prog.data());
            for (auto& a : args) cargv.push_back(a.data());
            cargv.push_back(nullptr);
            ::execv(prog.c_str(), cargv.data());
            return report("bench", errno_error("running", prog));
        }
        return report("bench", not_found("the benchmark driver quiver-bench was not built (configure "
                                         "with -DQUIVER_BUILD_BENCH=ON, the default; `make bench`)"));
    });
}

}  // namespace quiver::cli
