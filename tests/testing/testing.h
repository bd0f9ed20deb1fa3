// Shared test fixtures. Private to tests/.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "quiver/core/matrix_view.h"

namespace quiver::testing {

/// The real data sets: $QUIVER_DATA_DIR, else ../shared/data beside the source tree.
/// Returns the directory of data set `name`, or nullopt when it is absent (tests then GTEST_SKIP).
std::optional<std::string> data_dir(const std::string& name);

/// Skips the current test, with a message, when data set `name` is absent.
#define QUIVER_REQUIRE_DATA(var, name)                                                     \
    auto var##_opt = ::quiver::testing::data_dir(name);                                    \
    if (!var##_opt) GTEST_SKIP() << "data set '" << name << "' not found (set QUIVER_DATA_DIR)"; \
    const std::string var = *var##_opt

/// Seeded standard-normal matrix.
Matrix<float> random_matrix(std::size_t rows, std::size_t dim, std::uint64_t seed);
/// Clustered data (gaussian blobs), closer to real embeddings than iid noise.
Matrix<float> clustered_matrix(std::size_t rows, std::size_t dim, std::size_t clusters, std::uint64_t seed);

/// A fresh empty directory under the test temp dir, removed by the destructor.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

/// Fraction of truth[i][0..k) found in got[i][0..k), averaged over rows.
double recall_at_k(const std::vector<std::vector<std::uint64_t>>& got,
                   const std::vector<std::vector<std::uint64_t>>& truth, std::size_t k);

/// Writes `bytes` to `path` (overwriting).
void write_bytes(const std::string& path, const std::string& bytes);
std::string read_bytes(const std::string& path);

/// Runs `command_line` through the shell and captures its standard output; `code` is the exit status
/// (-1 when it did not exit normally). Redirect stderr in the command line to capture it too.
struct CommandResult {
    int code = -1;
    std::string out;
};
CommandResult run_command(const std::string& command_line);

}  // namespace quiver::testing
