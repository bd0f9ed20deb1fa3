#include "testing/testing.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>

namespace quiver::testing {

std::optional<std::string> data_dir(const std::string& name) {
    std::string root;
    if (const char* env = std::getenv("QUIVER_DATA_DIR"); env && *env) root = env;
    else root = QUIVER_DEFAULT_DATA_DIR;
    const std::filesystem::path p = std::filesystem::path(root) / name;
    std::error_code ec;
    if (!std::filesystem::is_directory(p, ec)) return std::nullopt;
    return p.string();
}

Matrix<float> random_matrix(std::size_t rows, std::size_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    Matrix<float> m(rows, dim);
    for (auto& v : m.values) v = nd(rng);
    return m;
}

Matrix<float> clustered_matrix(std::size_t rows, std::size_t dim, std::size_t clusters, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    Matrix<float> centers(clusters, dim);
    for (auto& v : centers.values) v = nd(rng) * 3.0f;
    Matrix<float> m(rows, dim);
    std::uniform_int_distribution<std::size_t> pick(0, clusters - 1);
    for (std::size_t r = 0; r < rows; ++r) {
        const float* c = centers.row_ptr(pick(rng));
        for (std::size_t j = 0; j < dim; ++j) m.row_ptr(r)[j] = c[j] + nd(rng);
    }
    return m;
}

TempDir::TempDir() {
    // mkdtemp, not pid + counter: ctest runs each test in its own process, pids wrap (pid_max is 32768
    // on these machines), and a directory a killed test left behind under a reused pid made a later
    // test's Collection::create find its "c" already there (a CI failure, session 11).
    std::string pattern = (std::filesystem::temp_directory_path() / "quiver_test_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        std::perror("quiver::testing::TempDir: mkdtemp");
        std::abort();
    }
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

double recall_at_k(const std::vector<std::vector<std::uint64_t>>& got,
                   const std::vector<std::vector<std::uint64_t>>& truth, std::size_t k) {
    if (got.empty()) return 0.0;
    double total = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        std::unordered_set<std::uint64_t> t(truth[i].begin(),
                                            truth[i].begin() + static_cast<long>(std::min(k, truth[i].size())));
        std::size_t hit = 0;
        for (std::size_t j = 0; j < std::min(k, got[i].size()); ++j) hit += t.count(got[i][j]);
        total += static_cast<double>(hit) / static_cast<double>(std::min(k, truth[i].size()));
    }
    return total / static_cast<double>(got.size());
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

CommandResult run_command(const std::string& command_line) {
    CommandResult r;
    std::FILE* p = popen(command_line.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    const int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace quiver::testing
