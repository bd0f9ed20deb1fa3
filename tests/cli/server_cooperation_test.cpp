// `quiver ingest` and `quiver query` beside a running `quiver serve` on the same data directory: they
// find the server through <data>/OWNER and go through HTTP, or open read-only; a second server is
// refused. Real processes, real files.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "testing/testing.h"

extern char** environ;

namespace quiver {
namespace {

using Run = testing::CommandResult;  // out: stdout and stderr together

Run run(const std::string& args) { return testing::run_command(std::string(QUIVER_CLI_PATH) + " " + args + " 2>&1"); }

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// `quiver serve --data DIR --port 0`, stopped with SIGTERM on destruction.
class Server {
public:
    explicit Server(const std::string& data) : data_(data) {
        const std::string log = data + ".serve.log";
        std::vector<std::string> args = {QUIVER_CLI_PATH, "serve", "--data", data, "--port", "0"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&actions);
        // Ready once the OWNER file records the bound address.
        for (int i = 0; i < 600 && pid_ > 0; ++i) {
            if (slurp(data + "/OWNER").find("address http://") != std::string::npos) {
                ready_ = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    ~Server() { stop(); }
    int stop() {
        if (pid_ <= 0) return -1;
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    bool ready() const { return ready_; }
    pid_t pid() const { return pid_; }

private:
    std::string data_;
    pid_t pid_ = -1;
    bool ready_ = false;
};

std::map<std::string, std::uintmax_t> listing(const std::string& dir) {
    std::map<std::string, std::uintmax_t> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
        out[e.path().string()] = e.is_regular_file() ? e.file_size() : 0;
    }
    return out;
}

class ServerCooperation : public ::testing::Test {
protected:
    void SetUp() override {
        std::ofstream(dir_.file("schema.json")) << R"({"fields": [{"name": "body", "type": "text"}]})";
        std::ofstream docs(dir_.file("docs.jsonl"));
        for (int i = 0; i < 30; ++i) docs << R"({"id": "doc)" << i << R"(", "body": "shared words number)" << i << "\"}\n";
        std::ofstream(dir_.file("more.jsonl")) << R"({"id": "late", "body": "zebra appears late"})" << "\n";
    }
    std::string f(const std::string& name) const { return dir_.file(name); }
    testing::TempDir dir_;
};

TEST_F(ServerCooperation, IngestAndQueryGoThroughTheServingProcess) {
    const std::string data = f("data");
    Server server(data);
    ASSERT_TRUE(server.ready()) << slurp(data + ".serve.log");
    // A collection created by ingest while the server runs is the server's.
    auto ingest = run("ingest --data " + data + " --collection c --input " + f("docs.jsonl") + " --schema " +
                      f("schema.json") + " --batch 7");
    ASSERT_EQ(ingest.code, 0) << ingest.out;
    EXPECT_NE(ingest.out.find("sending the documents there"), std::string::npos) << ingest.out;
    EXPECT_NE(ingest.out.find("c: 30 documents"), std::string::npos) << ingest.out;
    auto q = run("query --data " + data + " --collection c --text number17 --json");
    ASSERT_EQ(q.code, 0) << q.out;
    EXPECT_NE(q.out.find("\"id\": \"doc17\""), std::string::npos) << q.out;
    // A second ingest into the existing collection, left in the log (no optimize).
    auto more = run("ingest --data " + data + " --collection c --input " + f("more.jsonl") + " --no-optimize");
    ASSERT_EQ(more.code, 0) << more.out;
    EXPECT_NE(more.out.find("c: 31 documents"), std::string::npos) << more.out;
    // Read-only beside the server: no lock taken, the log replayed in memory.
    auto ro = run("query --data " + data + " --collection c --text zebra --read-only");
    ASSERT_EQ(ro.code, 0) << ro.out;
    EXPECT_NE(ro.out.find("late"), std::string::npos) << ro.out;
    // Errors from the server come back with its message and a non-zero exit.
    auto missing = run("query --data " + data + " --collection nope --text x");
    EXPECT_NE(missing.code, 0);
    EXPECT_NE(missing.out.find("404"), std::string::npos) << missing.out;
    // One owner per directory: a second server is refused and names the first.
    auto second = run("serve --data " + data + " --port 0");
    EXPECT_NE(second.code, 0);
    EXPECT_NE(second.out.find("in use by pid " + std::to_string(server.pid())), std::string::npos) << second.out;
    EXPECT_EQ(server.stop(), 0);
    // With the server gone, the embedded path sees everything it acknowledged.
    auto after = run("query --data " + data + " --collection c --text zebra");
    ASSERT_EQ(after.code, 0) << after.out;
    EXPECT_NE(after.out.find("late"), std::string::npos) << after.out;
}

TEST_F(ServerCooperation, ReadOnlyQueryWritesNothing) {
    const std::string data = f("data");
    auto ingest = run("ingest --data " + data + " --collection c --input " + f("docs.jsonl") + " --schema " +
                      f("schema.json") + " --no-optimize");
    ASSERT_EQ(ingest.code, 0) << ingest.out;
    auto more = run("ingest --data " + data + " --collection c --input " + f("more.jsonl") + " --no-optimize");
    ASSERT_EQ(more.code, 0) << more.out;
    const auto before = listing(data);
    auto ro = run("query --data " + data + " --collection c --text zebra --read-only --json");
    ASSERT_EQ(ro.code, 0) << ro.out;
    EXPECT_NE(ro.out.find("\"id\": \"late\""), std::string::npos) << ro.out;
    EXPECT_EQ(listing(data), before);
    auto bad = run("query --data " + data + " --collection ../x --text zebra --read-only");
    EXPECT_NE(bad.code, 0);
}

// Another embedded command owns the directory (this test process holds OWNER's flock, as `quiver
// ingest` would): ingest and query refuse with a message saying what to do; --read-only still works.
TEST_F(ServerCooperation, AnEmbeddedOwnerIsReportedWithWhatToDo) {
    const std::string data = f("data");
    auto ingest = run("ingest --data " + data + " --collection c --input " + f("docs.jsonl") + " --schema " +
                      f("schema.json"));
    ASSERT_EQ(ingest.code, 0) << ingest.out;
    const int fd = ::open((data + "/OWNER").c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    const std::string text = "pid 4242\naddress \n";
    ASSERT_EQ(::ftruncate(fd, 0), 0);
    ASSERT_EQ(::pwrite(fd, text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
    auto q = run("query --data " + data + " --collection c --text number3");
    EXPECT_NE(q.code, 0);
    EXPECT_NE(q.out.find("in use by another quiver command (pid 4242)"), std::string::npos) << q.out;
    EXPECT_NE(q.out.find("--read-only"), std::string::npos) << q.out;
    auto more = run("ingest --data " + data + " --collection c --input " + f("more.jsonl"));
    EXPECT_NE(more.code, 0);
    EXPECT_NE(more.out.find("wait for it to finish"), std::string::npos) << more.out;
    auto serve = run("serve --data " + data + " --port 0");
    EXPECT_NE(serve.code, 0);
    EXPECT_NE(serve.out.find("pid 4242 (an embedded quiver command)"), std::string::npos) << serve.out;
    auto ro = run("query --data " + data + " --collection c --text number3 --read-only");
    EXPECT_EQ(ro.code, 0) << ro.out;
    EXPECT_NE(ro.out.find("doc3"), std::string::npos) << ro.out;
    ::close(fd);
    // Released: the embedded path works again.
    auto after = run("ingest --data " + data + " --collection c --input " + f("more.jsonl"));
    EXPECT_EQ(after.code, 0) << after.out;
    EXPECT_NE(after.out.find("c: 31 documents"), std::string::npos) << after.out;
}

}  // namespace
}  // namespace quiver
