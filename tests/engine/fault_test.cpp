// Fault injection on a collection directory: for every file it holds (logs, MANIFEST, segment
// files, delete files — whatever the current formats write, classified by name), flip bits and
// truncate at many offsets, then reopen. The collection must either open with every acknowledged
// write or refuse with kDataLoss naming the damaged file. The one undetectable case is a cut of the
// newest log, which looks exactly like a crash during a write: it must open with a prefix of the
// log's records and count the dropped bytes. Also: fsync/rename/write failures through the storage
// seam at every call of a flush, and a full disk (tmpfs, RLIMIT_FSIZE).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>

#include "engine_test_util.h"
#include "quiver/engine/repair.h"
#include "quiver/engine/store.h"
#include "quiver/storage/file_format.h"
#include "quiver/storage/fs.h"
#include "quiver/storage/wal.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

namespace fs = std::filesystem;
using testutil::make_doc;
using testutil::small_schema;

constexpr std::uint64_t kIds = 90;

CollectionOptions manual() {
    CollectionOptions o;
    o.background_merge = false;
    o.build_threads = 1;
    o.wal_sync = storage::WalSync::kEveryAppend;
    return o;
}

using State = std::map<std::uint64_t, std::int64_t>;

// "d<id>" (built by append: GCC 12 warns falsely about `"d" + std::to_string(n)` at -O3).
std::string doc_id(std::uint64_t id) {
    std::string s = "d";
    s += std::to_string(id);
    return s;
}  // id -> version; absent = deleted / never written

void apply_upsert(State& s, Collection& c, std::uint64_t from, std::uint64_t to, std::int64_t ver) {
    std::vector<Document> docs;
    for (std::uint64_t i = from; i < to; ++i) {
        docs.push_back(make_doc(i, ver));
        s[i] = ver;
    }
    ASSERT_TRUE(c.upsert(std::move(docs)));
}

void apply_delete(State& s, Collection& c, std::initializer_list<std::uint64_t> ids) {
    std::vector<std::string> v;
    for (auto id : ids) {
        v.push_back(doc_id(id));
        s.erase(id);
    }
    ASSERT_TRUE(c.remove(v));
}

// Returns "" when `c` holds exactly `want`, else what differs.
std::string diff(const Collection& c, const State& want) {
    for (std::uint64_t id = 0; id < kIds; ++id) {
        auto d = c.get(doc_id(id));
        const auto it = want.find(id);
        if (it == want.end()) {
            if (d) return doc_id(id) + " is back after its delete";
            continue;
        }
        if (!d) return "acknowledged d" + std::to_string(id) + " is missing";
        if (std::get<std::int64_t>(d->fields.at("ver")) != it->second)
            return doc_id(id) + " has an old version";
    }
    if (c.stats().documents != want.size())
        return "document count " + std::to_string(c.stats().documents);
    return "";
}

struct Fixture {
    std::string dir;
    State final_state;
    std::vector<State> newest_log_prefix;  // state after 0, 1, 2, ... records of the newest log
    std::string newest_log;
};

// Two persisted segments (one with a delete file), an older log with records after the checkpoint
// and a newest log, all acknowledged. (flush_docs 40: the second flush does not continue the first
// segment, which it would otherwise take with its deletes.)
void build_fixture(const std::string& dir, Fixture& f) {
    f.dir = dir;
    State s;
    {
        CollectionOptions o = manual();
        o.flush_docs = 40;
        auto c = Collection::create(dir, small_schema(VectorIndexKind::kHnsw), o);
        ASSERT_TRUE(c) << c.error().to_string();
        apply_upsert(s, **c, 0, 40, 1);
        ASSERT_TRUE((*c)->flush());
        apply_upsert(s, **c, 40, 70, 2);
        apply_delete(s, **c, {3, 5, 7});
        ASSERT_TRUE((*c)->flush());
        apply_upsert(s, **c, 70, 80, 3);
        apply_delete(s, **c, {41, 11});
        apply_upsert(s, **c, 0, 4, 4);
    }
    {
        auto c = Collection::open(dir, manual());  // the records above stay in the older log
        ASSERT_TRUE(c) << c.error().to_string();
        f.newest_log_prefix.push_back(s);
        apply_upsert(s, **c, 80, 90, 5);
        f.newest_log_prefix.push_back(s);
        apply_delete(s, **c, {81, 1});
        f.newest_log_prefix.push_back(s);
        apply_upsert(s, **c, 20, 30, 6);
        f.newest_log_prefix.push_back(s);
    }
    f.final_state = s;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n.rfind("wal-", 0) == 0 && (f.newest_log.empty() || n > f.newest_log)) f.newest_log = n;
    }
}

std::string kind_of(const std::string& rel) {
    const std::string name = fs::path(rel).filename().string();
    if (name.rfind("wal-", 0) == 0) return "wal";
    if (name == "MANIFEST") return "manifest";
    if (name.rfind("del", 0) == 0) return "delete";
    if (rel.rfind("seg_", 0) == 0) return "segment";
    return "other";
}

std::vector<std::string> files_of(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        const std::string rel = fs::relative(e.path(), dir).string();
        if (rel == "LOCK") continue;
        out.push_back(rel);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Offsets to damage: every byte of the first and last 64 (headers, footers) and a stride through
// the rest; for logs, every byte of each record's header and end marker plus a stride of its
// payload.
std::vector<std::size_t> flip_offsets(const std::string& path, std::size_t size, bool is_log) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < size; ++i) {
        if (i < 64 || i + 64 >= size || i % (size / 24 + 1) == 0) out.push_back(i);
    }
    if (is_log) {
        auto contents = storage::read_wal(path);
        if (contents) {
            for (const auto& r : contents->records) {
                const std::size_t end = r.offset + storage::kWalRecordOverhead + r.payload.size();
                for (std::size_t i = r.offset; i < r.offset + storage::kWalRecordHeaderBytes + 4;
                     ++i)
                    out.push_back(i);
                for (std::size_t i = end - 8; i < end; ++i) out.push_back(i);
                for (std::size_t i = r.offset; i < end; i += 37) out.push_back(i);
            }
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

struct Tally {
    std::map<std::string, std::size_t> cases, refused, opened;
};

// Restores the pristine copy, applies `mutate` to `rel`, opens and checks the outcome.
void check_case(const Fixture& f, const std::string& work, const std::string& rel,
                const std::string& what, const std::function<void(const std::string&)>& mutate,
                const State* allowed_prefix, Tally& t) {
    std::error_code ec;
    fs::remove_all(work, ec);
    fs::copy(f.dir, work, fs::copy_options::recursive);
    mutate(work + "/" + rel);
    const std::string kind = kind_of(rel);
    ++t.cases[kind];
    auto c = Collection::open(work, manual());
    if (!c) {
        ++t.refused[kind];
        EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss)
            << rel << " " << what << ": " << c.error().to_string();
        // (A removed log cannot be named: the error names the log after the gap.)
        if (what != "removed" || kind != "wal") {
            EXPECT_NE(c.error().message().find(rel), std::string::npos)
                << rel << " " << what
                << ": the error does not name the file: " << c.error().to_string();
        }
        return;
    }
    ++t.opened[kind];
    const std::string d = diff(**c, allowed_prefix ? *allowed_prefix : f.final_state);
    EXPECT_EQ(d, "") << rel << " " << what << ": opened with a silent loss";
}

TEST(FaultInjection, EveryDamagedFileOpensWhollyOrRefusesWithDataLoss) {
    testing::TempDir tmp;
    Fixture f;
    build_fixture(tmp.file("pristine"), f);
    if (::testing::Test::HasFatalFailure()) return;
    const std::string work = tmp.file("work");
    Tally t;
    // The records of the newest log, for the prefix a cut may leave.
    auto newest = storage::read_wal(f.dir + "/" + f.newest_log);
    ASSERT_TRUE(newest);
    ASSERT_EQ(newest->records.size(), f.newest_log_prefix.size() - 1);
    std::map<std::string, std::size_t> kinds;
    for (const std::string& rel : files_of(f.dir)) {
        const std::string pristine = testing::read_bytes(f.dir + "/" + rel);
        const std::string kind = kind_of(rel);
        ++kinds[kind];
        // Bit flips: headers, length fields, footers, end markers and a stride through payloads.
        for (std::size_t off : flip_offsets(f.dir + "/" + rel, pristine.size(), kind == "wal")) {
            const int bit = static_cast<int>(off % 8);
            check_case(
                f, work, rel, "bit " + std::to_string(bit) + " of byte " + std::to_string(off),
                [&](const std::string& p) {
                    std::string b = pristine;
                    b[off] = static_cast<char>(b[off] ^ (1 << bit));
                    testing::write_bytes(p, b);
                },
                nullptr, t);
        }
        // Truncations: headers, record and footer boundaries, the middle; and removal.
        std::vector<std::size_t> cuts = {0,
                                         1,
                                         4,
                                         8,
                                         15,
                                         16,
                                         17,
                                         23,
                                         24,
                                         25,
                                         40,
                                         pristine.size() / 2,
                                         pristine.size() - 25,
                                         pristine.size() - 24,
                                         pristine.size() - 8,
                                         pristine.size() - 1};
        const bool is_newest = rel == f.newest_log;
        if (kind == "wal") {
            auto contents = storage::read_wal(f.dir + "/" + rel);
            ASSERT_TRUE(contents);
            for (const auto& r : contents->records) {
                for (std::size_t d : {0, 1, 5, 23, 24, 30}) cuts.push_back(r.offset + d);
                cuts.push_back(r.offset - 1);
            }
        }
        std::sort(cuts.begin(), cuts.end());
        cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
        for (std::size_t cut : cuts) {
            if (cut >= pristine.size()) continue;
            const State* allowed = nullptr;
            if (is_newest) {
                // Indistinguishable from a crash during an append: the records wholly before the
                // cut.
                std::size_t whole = 0;
                for (const auto& r : newest->records) {
                    if (r.offset + storage::kWalRecordOverhead + r.payload.size() <= cut) ++whole;
                }
                allowed = &f.newest_log_prefix[whole];
            }
            check_case(
                f, work, rel, "cut at " + std::to_string(cut),
                [&](const std::string& p) { testing::write_bytes(p, pristine.substr(0, cut)); },
                allowed, t);
        }
        if (!is_newest) {
            check_case(
                f, work, rel, "removed", [](const std::string& p) { fs::remove(p); }, nullptr, t);
        }
    }
    // The suite covers every kind the collection writes.
    EXPECT_GE(kinds["wal"], 2u);
    EXPECT_EQ(kinds["manifest"], 1u);
    EXPECT_GE(kinds["segment"], 4u);
    EXPECT_GE(kinds["delete"], 1u);
    std::size_t total = 0;
    for (const auto& [kind, n] : t.cases) {
        total += n;
        std::printf(
            "[ measure ] %-8s %5zu damaged copies: %5zu refused (data loss), %4zu opened (all "
            "acknowledged "
            "writes, or for cuts of the newest log those before the cut)\n",
            kind.c_str(), n, t.refused[kind], t.opened[kind]);
    }
    EXPECT_GT(total, 800u);
}

// A cut of the newest log is a logged, counted recovery action.
TEST(FaultInjection, TornTailIsCountedAndLogged) {
    testing::TempDir tmp;
    Fixture f;
    build_fixture(tmp.file("c"), f);
    if (::testing::Test::HasFatalFailure()) return;
    const std::string log = f.dir + "/" + f.newest_log;
    const std::string bytes = testing::read_bytes(log);
    testing::write_bytes(log, bytes.substr(0, bytes.size() - 10));
    auto c = Collection::open(f.dir, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    const auto st = (*c)->stats();
    auto newest = storage::read_wal(log);  // truncated on disk by the recovery
    ASSERT_TRUE(newest);
    EXPECT_EQ(st.recovered_tail_records, 1u);
    EXPECT_EQ(st.recovered_tail_bytes, bytes.size() - 10 - newest->file_bytes);
    EXPECT_EQ(diff(**c, f.newest_log_prefix[f.newest_log_prefix.size() - 2]), "");
    // Writing on continues the sequence and survives another reopen.
    State s = f.newest_log_prefix[f.newest_log_prefix.size() - 2];
    apply_upsert(s, **c, 50, 55, 9);
    c->reset();
    auto again = Collection::open(f.dir, manual());
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ((*again)->stats().recovered_tail_bytes, 0u);
    EXPECT_EQ(diff(**again, s), "");
}

// Fails the Nth durability call (write, fsync, directory fsync, rename, truncate) with `err`.
class NthCallFails : public storage::FileSystem {
public:
    explicit NthCallFails(long n, int err = EIO) : n_(n), err_(err) {}
    long calls = 0;
    bool fired = false;
    ssize_t write(int fd, const void* b, std::size_t n, const std::string& p) override {
        if (hit()) return -1;
        return FileSystem::write(fd, b, n, p);
    }
    int fsync(int fd, const std::string& p) override {
        return hit() ? -1 : FileSystem::fsync(fd, p);
    }
    int fdatasync(int fd, const std::string& p) override {
        return hit() ? -1 : FileSystem::fdatasync(fd, p);
    }
    int fsync_dir(int fd, const std::string& p) override {
        return hit() ? -1 : FileSystem::fsync_dir(fd, p);
    }
    int rename(const std::string& a, const std::string& b) override {
        return hit() ? -1 : FileSystem::rename(a, b);
    }
    int ftruncate(int fd, off_t s, const std::string& p) override {
        return hit() ? -1 : FileSystem::ftruncate(fd, s, p);
    }

private:
    bool hit() {
        if (calls++ != n_) return false;
        fired = true;
        errno = err_;
        return true;
    }
    long n_;
    int err_;
};

// Every durability call of a flush (segment files, delete files, MANIFEST, directory fsyncs) fails
// in turn: the flush reports it, the merge failure is counted, nothing acknowledged is lost, and
// the inputs of the failed merge survive a reopen. Two flushes: 14 documents (less than half the
// persisted segment: a segment of their own, and the persisted one's delete file written), and 20
// (the persisted segment continued, its deleted documents dropped).
class FlushFaults : public ::testing::TestWithParam<int> {};

TEST_P(FlushFaults, FailedCallAtEveryStepOfAFlushLosesNothing) {
    const int flushed_docs = GetParam();
    testing::TempDir tmp;
    long n = 0;
    for (;; ++n) {
        std::string name = "c";
        name += std::to_string(n);
        const std::string dir = tmp.file(name);
        State s;
        auto c = Collection::create(dir, small_schema(VectorIndexKind::kHnsw), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        apply_upsert(s, **c, 0, 30, 1);
        ASSERT_TRUE((*c)->flush());
        apply_upsert(s, **c, 30, 30 + flushed_docs, 2);
        apply_delete(s, **c, {2, 4, 33});
        NthCallFails failing(n);
        Status flushed;
        {
            storage::ScopedFileSystem scope(failing);
            flushed = (*c)->flush();
        }
        if (!failing.fired) {
            ASSERT_TRUE(flushed);
            break;
        }
        ASSERT_FALSE(flushed) << "call " << n;
        EXPECT_EQ((*c)->stats().merge_failures, 1u);
        EXPECT_EQ(diff(**c, s), "") << "call " << n;
        apply_upsert(s, **c, 60, 62, 3);             // still writable
        ASSERT_TRUE((*c)->flush()) << "call " << n;  // and a retry succeeds
        c->reset();
        auto again = Collection::open(dir, manual());
        ASSERT_TRUE(again) << "call " << n << ": " << again.error().to_string();
        EXPECT_EQ(diff(**again, s), "") << "call " << n;
    }
    std::printf("[ measure ] a flush of %d documents makes %ld checked durability calls; each failed once\n",
                flushed_docs, n);
    EXPECT_GT(n, 10);
    // Which flush it was: the continued segment absorbs the persisted one.
    auto c = Collection::open(tmp.file("c" + std::to_string(n)), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ((*c)->stats().segments, flushed_docs * 2 >= 30 ? 1u : 2u);
}

INSTANTIATE_TEST_SUITE_P(FaultInjection, FlushFaults, ::testing::Values(14, 20));

// A flush whose MANIFEST took its name but whose directory fsync failed leaves that MANIFEST in force
// (it is the one a reopen reads), naming the delete files the flush wrote. A later flush must not
// reuse those names: one that fails before writing anything would remove them as its own, and the
// reopen would find a delete file missing.
class ManifestDirSyncThenSegmentWriteFails : public storage::FileSystem {
public:
    int phase = 0;  // 1: fail the directory fsync after the MANIFEST rename; 2: fail segment writes
    int failed = 0;
    int rename(const std::string& a, const std::string& b) override {
        const int r = FileSystem::rename(a, b);
        if (r == 0 && phase == 1 && b.size() >= 9 && b.compare(b.size() - 9, 9, "/MANIFEST") == 0) renamed_ = true;
        return r;
    }
    int fsync_dir(int fd, const std::string& p) override {
        if (phase == 1 && renamed_) {
            renamed_ = false;
            ++failed;
            errno = EIO;
            return -1;
        }
        return FileSystem::fsync_dir(fd, p);
    }
    ssize_t write(int fd, const void* b, std::size_t n, const std::string& p) override {
        if (phase == 2 && p.find("/seg_") != std::string::npos) {
            ++failed;
            errno = EIO;
            return -1;
        }
        return FileSystem::write(fd, b, n, p);
    }

private:
    bool renamed_ = false;
};

TEST(FaultInjection, AFlushAfterAnUnsyncedManifestKeepsTheFilesItNames) {
    testing::TempDir tmp;
    const std::string dir = tmp.file("c");
    State s;
    auto c = Collection::create(dir, small_schema(VectorIndexKind::kHnsw), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    apply_upsert(s, **c, 0, 30, 1);
    ASSERT_TRUE((*c)->flush());
    apply_delete(s, **c, {2, 4});  // the persisted segment is dirty: the flush writes its delete file
    apply_upsert(s, **c, 30, 40, 2);
    ManifestDirSyncThenSegmentWriteFails failing;
    storage::ScopedFileSystem scope(failing);
    failing.phase = 1;
    ASSERT_FALSE((*c)->flush());
    ASSERT_EQ(failing.failed, 1);
    apply_delete(s, **c, {6});
    // 13 flushed documents, less than half the persisted segment: a segment of their own, and the
    // persisted one's delete file written under a new generation.
    apply_upsert(s, **c, 40, 43, 3);
    failing.phase = 2;
    ASSERT_FALSE((*c)->flush());
    ASSERT_EQ(failing.failed, 2);
    failing.phase = 0;
    EXPECT_EQ(diff(**c, s), "");
    c->reset();
    auto again = Collection::open(dir, manual());
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(diff(**again, s), "");
}

// A failed log fsync poisons the log; the collection continues in a new log and loses nothing.
TEST(FaultInjection, FailedLogFsyncRotatesAndLosesNothing) {
    testing::TempDir tmp;
    const std::string dir = tmp.file("c");
    State s;
    auto c = Collection::create(dir, small_schema(), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    apply_upsert(s, **c, 0, 10, 1);
    {
        NthCallFails failing(1);  // the append's write is call 0, its fdatasync call 1
        storage::ScopedFileSystem scope(failing);
        std::vector<Document> docs = {make_doc(50, 7)};
        auto st = (*c)->upsert(docs);
        ASSERT_FALSE(st);
        EXPECT_EQ(st.error().code(), ErrorCode::kIoError);
        EXPECT_TRUE(failing.fired);
    }
    // The failed group was cut off the log and the log closed: writes are not refused.
    EXPECT_FALSE((*c)->stats().wal_failed);
    apply_upsert(s, **c, 10, 20, 2);  // continues in a new log
    EXPECT_FALSE((*c)->stats().wal_failed);
    std::size_t logs = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        logs += e.path().filename().string().rfind("wal-", 0) == 0 ? 1 : 0;
    }
    EXPECT_EQ(logs, 2u);
    apply_delete(s, **c, {3});
    c->reset();
    auto again = Collection::open(dir, manual());
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(diff(**again, s), "");
}

// A log that could not be cut back after a failed write makes the collection refuse writes
// (read-only) until it is reopened; reopening recovers every acknowledged write.
TEST(FaultInjection, UncleanLogFailureMakesTheCollectionReadOnly) {
    testing::TempDir tmp;
    const std::string dir = tmp.file("c");
    State s;
    auto c = Collection::create(dir, small_schema(), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    apply_upsert(s, **c, 0, 10, 1);
    {
        // The write fails half-way, then so does cutting it back.
        class WriteThenTruncate : public storage::FileSystem {
            ssize_t write(int fd, const void* b, std::size_t n, const std::string& p) override {
                (void)FileSystem::write(fd, b, n / 2, p);
                errno = EIO;
                return -1;
            }
            int ftruncate(int, off_t, const std::string&) override {
                errno = EIO;
                return -1;
            }
        } broken;
        storage::ScopedFileSystem scope(broken);
        ASSERT_FALSE((*c)->upsert({make_doc(51, 7)}));
    }
    auto st = (*c)->upsert({make_doc(52, 7)});
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message().find("read-only"), std::string::npos) << st.error().to_string();
    EXPECT_EQ(diff(**c, s), "");  // reads still work
    c->reset();
    auto again = Collection::open(dir, manual());
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(diff(**again, s), "");
    apply_upsert(s, **again, 60, 61, 8);
}

// One broken collection does not stop the store: it is listed as unavailable with its error.
TEST(FaultInjection, StoreOpensBesideABrokenCollection) {
    testing::TempDir tmp;
    const std::string data = tmp.file("data");
    {
        auto store = Store::open(data, manual());
        ASSERT_TRUE(store);
        for (const char* name : {"good", "bad"}) {
            auto c = (*store)->create(name, small_schema());
            ASSERT_TRUE(c) << c.error().to_string();
            ASSERT_TRUE((*c)->upsert({make_doc(1, 1)}));
            ASSERT_TRUE((*c)->flush());
        }
    }
    std::string seg_name;
    for (const auto& e : fs::directory_iterator(data + "/bad")) {
        if (e.path().filename().string().rfind("seg_", 0) == 0)
            seg_name = e.path().filename().string();
    }
    ASSERT_FALSE(seg_name.empty());
    fs::remove(data + "/bad/" + seg_name + "/docs.qvr");
    auto store = Store::open(data, manual());
    ASSERT_TRUE(store) << store.error().to_string();
    EXPECT_EQ((*store)->list(), std::vector<std::string>{"good"});
    const auto broken = (*store)->unavailable();
    ASSERT_EQ(broken.size(), 1u);
    EXPECT_EQ(broken[0].name, "bad");
    EXPECT_EQ(broken[0].error.code(), ErrorCode::kDataLoss);
    EXPECT_NE(broken[0].error.message().find(seg_name + "/docs.qvr"), std::string::npos)
        << broken[0].error.to_string();
    auto bad = (*store)->get("bad");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kUnavailable);
    EXPECT_EQ((*store)->create("bad", small_schema()).error().code(), ErrorCode::kAlreadyExists);
    auto good = (*store)->get("good");
    ASSERT_TRUE(good);
    EXPECT_TRUE((*good)->get("d1"));
    ASSERT_TRUE((*store)->drop("bad"));
    EXPECT_TRUE((*store)->unavailable().empty());
    EXPECT_FALSE(fs::exists(data + "/bad"));
}

// Writes batches until the disk is full; returns the acknowledged state.
void fill_until_full(Collection& c, State& s, std::int64_t ver, Error* out_error) {
    for (std::uint64_t b = 0; b < 100000; ++b) {
        std::vector<Document> docs;
        for (std::uint64_t i = 0; i < 10; ++i) {
            Document d = make_doc((b * 10 + i) % kIds, ver);
            d.fields["body"] = std::get<std::string>(d.fields["body"]) + std::string(2000, 'x');
            docs.push_back(std::move(d));
        }
        auto st = c.upsert(docs);
        if (!st) {
            *out_error = st.error();
            return;
        }
        for (std::uint64_t i = 0; i < 10; ++i) s[(b * 10 + i) % kIds] = ver;
        ++ver;
    }
}

std::string diff_prefix(const Collection& c, const State& want) {
    for (const auto& [id, ver] : want) {
        auto d = c.get(doc_id(id));
        if (!d) return "acknowledged d" + std::to_string(id) + " is missing";
        if (std::get<std::int64_t>(d->fields.at("ver")) != ver)
            return doc_id(id) + " has another version";
    }
    return "";
}

TEST(FaultInjection, FullDiskOnTmpfsFailsWritesWithResourceExhaustedAndRecovers) {
    testing::TempDir tmp;
    const std::string mnt = tmp.file("small");
    fs::create_directories(mnt);
    if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=3m") != 0) {
        GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                     << "); RLIMIT_FSIZE covers ENOSPC-like failures";
    }
    struct Unmount {
        std::string p;
        ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } unmount{mnt};
    const std::string dir = mnt + "/c";
    State s;
    {
        auto c = Collection::create(dir, small_schema(), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        // A filler file to release later, as an operator would free space.
        testing::write_bytes(mnt + "/filler", std::string(1 << 20, 'f'));
        Error full(ErrorCode::kInternal, "");
        fill_until_full(**c, s, 1000, &full);
        EXPECT_EQ(full.code(), ErrorCode::kResourceExhausted) << full.to_string();
        EXPECT_NE(full.message().find("No space"), std::string::npos) << full.to_string();
        EXPECT_FALSE((*c)->stats().wal_failed);
        auto flushed = (*c)->flush();  // merges fail too, and keep their inputs
        if (!flushed) {
            EXPECT_GE((*c)->stats().merge_failures, 1u);
        }
        EXPECT_EQ(diff_prefix(**c, s), "");
        fs::remove(mnt + "/filler");
        std::vector<Document> after = {make_doc(1, 99)};
        ASSERT_TRUE((*c)->upsert(after)) << "writes work again once space returns";
        s[1] = 99;
    }
    auto c = Collection::open(dir, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ(diff_prefix(**c, s), "");
}

// RLIMIT_FSIZE in a child process (SIGXFSZ ignored, as `quiver serve` does): EFBIG fails the write
// with kResourceExhausted; once the limit is raised writes succeed and nothing acknowledged is
// lost.
TEST(FaultInjection, FileSizeLimitFailsWritesWithResourceExhausted) {
    testing::TempDir tmp;
    const std::string dir = tmp.file("c");
    {
        auto c = Collection::create(dir, small_schema(), manual());
        ASSERT_TRUE(c) << c.error().to_string();
    }
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::signal(SIGXFSZ, SIG_IGN);
        rlimit old{};
        ::getrlimit(RLIMIT_FSIZE, &old);
        rlimit small = old;
        small.rlim_cur = 256 << 10;
        if (::setrlimit(RLIMIT_FSIZE, &small) != 0) _exit(10);
        State s;
        auto c = Collection::open(dir, manual());
        if (!c) _exit(11);
        Error full(ErrorCode::kInternal, "");
        fill_until_full(**c, s, 1, &full);
        if (full.code() != ErrorCode::kResourceExhausted) _exit(12);
        if ((*c)->stats().wal_failed) _exit(13);
        if (::setrlimit(RLIMIT_FSIZE, &old) != 0) _exit(14);
        if (!(*c)->upsert({make_doc(2, 777)})) _exit(15);
        s[2] = 777;
        c->reset();
        auto again = Collection::open(dir, manual());
        if (!again) _exit(16);
        if (!diff_prefix(**again, s).empty()) _exit(17);
        if (s.empty()) _exit(18);
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace quiver::engine

namespace quiver::engine {
namespace {

// quiver repair: a corrupt record in the older log makes open refuse; repair keeps every intact
// record, sets the damaged bytes aside and reports exactly what it dropped.
TEST(Repair, SalvagesEveryIntactRecordAndReportsTheRest) {
    testing::TempDir tmp;
    Fixture f;
    build_fixture(tmp.file("c"), f);
    if (::testing::Test::HasFatalFailure()) return;
    std::vector<std::string> logs;
    for (const auto& e : fs::directory_iterator(f.dir)) {
        if (e.path().filename().string().rfind("wal-", 0) == 0) logs.push_back(e.path().string());
    }
    std::sort(logs.begin(), logs.end());
    ASSERT_EQ(logs.size(), 2u);
    auto older = storage::read_wal(logs[0]);
    ASSERT_TRUE(older);
    ASSERT_EQ(older->records.size(), 3u);  // upsert 70-79 v3, delete {41, 11}, upsert 0-3 v4
    std::string bytes = testing::read_bytes(logs[0]);
    bytes[older->records[1].offset + 30] ^= 0x04;
    testing::write_bytes(logs[0], bytes);
    auto refused = Collection::open(f.dir, manual());
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), ErrorCode::kDataLoss);

    auto rep = repair_collection(f.dir);
    ASSERT_TRUE(rep) << rep.error().to_string();
    EXPECT_EQ(rep->segments_dropped, 0u);
    EXPECT_EQ(rep->delete_files_damaged, 0u);
    EXPECT_EQ(rep->log_records_replayed, 5u);  // 2 of the older log, 3 of the newest
    EXPECT_EQ(rep->sequence_gaps, 1u);
    EXPECT_EQ(rep->log_bytes_dropped,
              storage::kWalRecordOverhead + older->records[1].payload.size());
    ASSERT_FALSE(rep->side_dir.empty());
    EXPECT_TRUE(fs::exists(rep->side_dir + "/REPORT.txt"));
    EXPECT_EQ(
        fs::file_size(rep->side_dir + "/" + fs::path(logs[0]).filename().string() + ".dropped"),
        storage::kHeaderBytes + 8 + rep->log_bytes_dropped + storage::kFooterBytes);
    State want = f.final_state;
    want[41] = 2;  // the lost delete: both documents are back, and reported as a gap
    want[11] = 1;
    EXPECT_EQ(rep->documents, want.size());
    auto c = Collection::open(f.dir, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ(diff(**c, want), "");
    State s = want;
    apply_upsert(s, **c, 85, 88, 11);  // writable, and durable across another reopen
    c->reset();
    auto again = Collection::open(f.dir, manual());
    ASSERT_TRUE(again);
    EXPECT_EQ(diff(**again, s), "");
}

TEST(Repair, DropsADamagedSegmentAndKeepsTheRest) {
    testing::TempDir tmp;
    Fixture f;
    build_fixture(tmp.file("c"), f);
    if (::testing::Test::HasFatalFailure()) return;
    // The first persisted segment holds d0-d39 (v1); d0-d3 were rewritten later (in a log).
    std::vector<std::string> segs;
    for (const auto& e : fs::directory_iterator(f.dir)) {
        if (e.path().filename().string().rfind("seg_", 0) == 0)
            segs.push_back(e.path().filename().string());
    }
    std::sort(segs.begin(), segs.end(), [](const std::string& a, const std::string& b) {
        return std::stoull(a.substr(4)) < std::stoull(b.substr(4));
    });
    ASSERT_EQ(segs.size(), 2u);
    std::string docs = testing::read_bytes(f.dir + "/" + segs[0] + "/docs.qvr");
    docs[docs.size() / 2] ^= 0x01;
    testing::write_bytes(f.dir + "/" + segs[0] + "/docs.qvr", docs);
    auto rep = repair_collection(f.dir);
    ASSERT_TRUE(rep) << rep.error().to_string();
    EXPECT_EQ(rep->segments_dropped, 1u);
    EXPECT_EQ(rep->segments_kept, 1u);
    EXPECT_TRUE(fs::exists(rep->side_dir + "/" + segs[0]));
    State want;
    for (const auto& [id, ver] : f.final_state) {
        if (id >= 4 && id < 40 && ver == 1) continue;  // only in the dropped segment
        want[id] = ver;
    }
    auto c = Collection::open(f.dir, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ(diff(**c, want), "");
}

TEST(Repair, RefusesWhileTheCollectionIsOpen) {
    testing::TempDir tmp;
    auto c = Collection::create(tmp.file("c"), small_schema(), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    auto rep = repair_collection(tmp.file("c"));
    ASSERT_FALSE(rep);
    EXPECT_EQ(rep.error().code(), ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace quiver::engine

namespace quiver::engine {
namespace {

// The repro: 10 acknowledged batches of 20 documents; one bit of the length field of the
// 2nd record flipped. Before: the log was truncated there and 180 documents vanished without an
// error.
TEST(FaultInjection, LengthBitOfTheSecondOfTenRecordsIsRefusedNotTruncated) {
    testing::TempDir tmp;
    const std::string dir = tmp.file("c");
    {
        auto c = Collection::create(dir, small_schema(), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        for (std::uint64_t b = 0; b < 10; ++b) {
            std::vector<Document> docs;
            for (std::uint64_t i = 0; i < 20; ++i) docs.push_back(make_doc(b * 20 + i, 1));
            ASSERT_TRUE((*c)->upsert(docs));
        }
    }
    std::string log;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().filename().string().rfind("wal-", 0) == 0) log = e.path().string();
    }
    auto contents = storage::read_wal(log);
    ASSERT_TRUE(contents);
    ASSERT_EQ(contents->records.size(), 10u);
    const std::string pristine = testing::read_bytes(log);
    const std::uint64_t length_field = contents->records[1].offset + 4;
    for (int bit = 0; bit < 32; ++bit) {
        std::string bad = pristine;
        bad[length_field + bit / 8] ^= static_cast<char>(1 << (bit % 8));
        testing::write_bytes(log, bad);
        auto c = Collection::open(dir, manual());
        ASSERT_FALSE(c) << "bit " << bit << ": opened with " << (*c)->stats().documents
                        << " documents";
        EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss);
        EXPECT_NE(c.error().message().find(log), std::string::npos) << c.error().to_string();
        EXPECT_NE(c.error().message().find("offset " + std::to_string(contents->records[1].offset)),
                  std::string::npos)
            << c.error().to_string();
    }
    testing::write_bytes(log, pristine);
    auto c = Collection::open(dir, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ((*c)->stats().documents, 200u);
}

// Creating a collection (its fsyncs blocked here) does not stall requests to the others: the store
// mutex guards only the name map.
TEST(FaultInjection, CreatingACollectionDoesNotStallTheOthers) {
    testing::TempDir tmp;
    auto store = Store::open(tmp.file("data"), manual());
    ASSERT_TRUE(store);
    auto old = (*store)->create("old", small_schema());
    ASSERT_TRUE(old);
    ASSERT_TRUE((*old)->upsert({make_doc(1, 1)}));
    class BlockingFs : public storage::FileSystem {
    public:
        std::mutex mu;
        std::condition_variable cv;
        bool blocked = false, released = false;
        int fsync_dir(int fd, const std::string& p) override {
            {
                std::unique_lock lock(mu);
                if (!released) {
                    blocked = true;
                    cv.notify_all();
                    cv.wait(lock, [&] { return released; });
                }
            }
            return FileSystem::fsync_dir(fd, p);
        }
    } blocking;
    storage::ScopedFileSystem scope(blocking);
    auto creating = std::async(std::launch::async,
                               [&] { return (*store)->create("new", small_schema()).ok(); });
    {
        std::unique_lock lock(blocking.mu);
        blocking.cv.wait(lock, [&] { return blocking.blocked; });
    }
    // While `create` sits in an fsync: other collections are reachable, listed, and writable in
    // memory terms (their reads do not touch the store lock's holder).
    auto probe = std::async(std::launch::async, [&] {
        auto c = (*store)->get("old");
        return c.ok() && (*c)->get("d1").ok() && (*store)->list().size() == 1 &&
               (*store)->create("new", small_schema()).error().code() == ErrorCode::kAlreadyExists;
    });
    const bool answered = probe.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
    {
        std::lock_guard lock(blocking.mu);
        blocking.released = true;
    }
    blocking.cv.notify_all();
    EXPECT_TRUE(answered) << "the store lock was held across a create's fsync";
    if (answered) {
        EXPECT_TRUE(probe.get());
    }
    EXPECT_TRUE(creating.get());
    EXPECT_EQ((*store)->list().size(), 2u);
}

}  // namespace
}  // namespace quiver::engine

namespace quiver::engine {
namespace {

// A collection held by another process (or handle) is not "broken": the store refuses to open
// beside its owner instead of listing it as unavailable.
TEST(FaultInjection, StoreRefusesADirectoryAnotherProcessHolds) {
    testing::TempDir tmp;
    const std::string data = tmp.file("data");
    {
        auto store = Store::open(data, manual());
        ASSERT_TRUE(store);
        ASSERT_TRUE((*store)->create("c", small_schema()));
    }
    auto holder = Collection::open(data + "/c", manual());
    ASSERT_TRUE(holder);
    auto second = Store::open(data, manual());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code(), ErrorCode::kFailedPrecondition);
    holder->reset();
    EXPECT_TRUE(Store::open(data, manual()));
}

}  // namespace
}  // namespace quiver::engine
