// Explicit salvage of a damaged collection. See repair.h.
#include "quiver/engine/repair.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <map>

#include "engine/codec.h"
#include "engine/collection_state.h"
#include "quiver/storage/fs.h"
#include "quiver/storage/wal.h"

namespace quiver::engine {
namespace {

namespace fs = std::filesystem;

struct LockFile {
    int fd = -1;
    ~LockFile() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

Result<RepairReport> repair_collection(const std::string& dir) {
    LockFile lock;
    lock.fd = ::open((dir + "/LOCK").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock.fd < 0) return errno_error("opening", dir + "/LOCK");
    if (::flock(lock.fd, LOCK_EX | LOCK_NB) != 0) {
        return failed_precondition("collection '" + dir +
                                   "' is open in another process (stop the server first)");
    }
    auto manifest = read_manifest(dir);
    if (!manifest)
        return std::move(manifest).error().with_context(
            "repair needs an intact MANIFEST (it holds the schema)");
    const Manifest& m = *manifest;
    RepairReport rep;
    std::string side =
        dir + ".repair-" + std::to_string(static_cast<long long>(std::time(nullptr)));
    {
        std::error_code exists_ec;
        const std::string base = side;
        for (int n = 2; fs::exists(side, exists_ec); ++n) side = base + "-" + std::to_string(n);
    }
    auto ensure_side = [&]() -> Status {
        if (!rep.side_dir.empty()) return ok_status();
        if (::mkdir(side.c_str(), 0755) != 0) return errno_error("creating", side);
        rep.side_dir = side;
        return ok_status();
    };
    auto move_to_side = [&](const std::string& path) -> Status {
        QUIVER_TRY(ensure_side());
        return storage::rename_file(path, side + "/" + fs::path(path).filename().string());
    };

    // Segments: the live documents of every segment that verifies.
    std::map<std::string, std::pair<Document, std::uint64_t>>
        live;  // id -> (document, sequence number)
    auto keep = [&](Document d, std::uint64_t seq) {
        std::string id = d.id;
        auto it = live.find(id);
        if (it == live.end() || it->second.second <= seq) live[id] = {std::move(d), seq};
    };
    for (const auto& [id, gen] : m.segments) {
        const std::string seg_dir = dir + "/" + Segment::dir_name(id);
        auto seg = Segment::open(dir, id, m.schema);
        if (!seg) {
            ++rep.segments_dropped;
            rep.actions.push_back("dropped segment " + Segment::dir_name(id) +
                                  " (moved to the side directory): " +
                                  as_data_loss(seg.error(), seg_dir, "segment").to_string());
            std::error_code ec;
            if (fs::exists(seg_dir, ec)) QUIVER_TRY(move_to_side(seg_dir));
            if (gen > 0 && fs::exists(del_path(dir, id, gen), ec))
                QUIVER_TRY(move_to_side(del_path(dir, id, gen)));
            continue;
        }
        DeleteSet deleted;
        if (gen > 0) {
            auto d = read_deletes(del_path(dir, id, gen), (*seg)->size());
            if (d) {
                deleted = std::move(d).value();
            } else {
                ++rep.delete_files_damaged;
                rep.deletes_lost_documents += (*seg)->size();
                rep.actions.push_back("delete file of " + Segment::dir_name(id) +
                                      " is damaged; its " + std::to_string((*seg)->size()) +
                                      " documents are all kept: " + d.error().to_string());
                std::error_code ec;
                if (fs::exists(del_path(dir, id, gen), ec))
                    QUIVER_TRY(move_to_side(del_path(dir, id, gen)));
            }
        }
        ++rep.segments_kept;
        for (std::uint32_t i = 0; i < (*seg)->size(); ++i) {
            if (deleted.contains(static_cast<std::uint32_t>(i))) continue;
            auto doc = (*seg)->document(i);
            if (!doc) {
                rep.actions.push_back("document " + std::to_string(i) + " of " +
                                      Segment::dir_name(id) +
                                      " is unreadable: " + doc.error().to_string());
                continue;
            }
            keep(std::move(*doc), (*seg)->seq(i));
        }
    }

    // Logs: every intact record after the checkpoint, in sequence order.
    std::vector<std::string> logs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("wal-", 0) == 0 && name.size() > 8 &&
            name.substr(name.size() - 4) == ".log") {
            logs.push_back(e.path().string());
        }
    }
    if (ec) return io_error("listing '" + dir + "': " + ec.message());
    std::sort(logs.begin(), logs.end());  // zero-padded first sequence numbers
    std::map<std::uint64_t, std::string> records;
    for (const std::string& path : logs) {
        QUIVER_ASSIGN_OR_RETURN(auto salvage, storage::salvage_wal(path));
        for (auto& r : salvage.records) {
            if (r.seq > m.checkpoint_seq) records.emplace(r.seq, std::move(r.payload));
        }
        if (salvage.skipped.empty()) continue;
        QUIVER_TRY(ensure_side());
        QUIVER_ASSIGN_OR_RETURN(std::string bytes, storage::read_file(path));
        std::string dropped;
        for (const auto& [begin, end] : salvage.skipped) {
            dropped.append(bytes, begin, end - begin);
            rep.log_bytes_dropped += end - begin;
            rep.actions.push_back("log " + fs::path(path).filename().string() + ": dropped " +
                                  std::to_string(end - begin) + " bytes at offset " +
                                  std::to_string(begin) + " (no intact record in them)");
        }
        const std::string out = side + "/" + fs::path(path).filename().string() + ".dropped";
        QUIVER_ASSIGN_OR_RETURN(auto fw,
                                storage::FileWriter::create(out, storage::fourcc("DROP"), 1));
        QUIVER_TRY(fw.write_string(dropped));
        QUIVER_TRY(fw.finish());
    }
    std::uint64_t expected = m.checkpoint_seq + 1;
    std::uint64_t last_seq = m.checkpoint_seq;
    for (const auto& [seq, payload] : records) {
        if (seq > expected) {
            ++rep.sequence_gaps;
            rep.actions.push_back("log records " + std::to_string(expected) + " to " +
                                  std::to_string(seq - 1) + " are missing");
        }
        expected = seq + 1;
        last_seq = seq;
        ByteReader r(payload);
        auto rseq = r.u64();
        auto type = r.u8();
        auto count = r.u32();
        bool ok = rseq && type && count && *rseq == seq &&
                  (*type == kRecordUpsert || *type == kRecordDelete || *type == kRecordDeleteAsOf);
        std::uint64_t as_of = UINT64_MAX;
        if (ok && *type == kRecordDeleteAsOf) {
            auto a = r.u64();
            ok = a.ok() && *a < seq;
            if (ok) as_of = *a;
        }
        std::vector<std::pair<std::string, std::optional<Document>>> ops;
        for (std::uint32_t i = 0; ok && i < *count; ++i) {
            if (*type == kRecordUpsert) {
                auto d = decode_document(r);
                ok = d.ok();
                if (ok) ops.emplace_back(d->id, std::move(*d));
            } else {
                auto id = r.str();
                ok = id.ok();
                if (ok) ops.emplace_back(std::move(*id), std::nullopt);
            }
        }
        if (!ok) {
            ++rep.log_records_undecodable;
            rep.actions.push_back("log record " + std::to_string(seq) +
                                  " does not decode; dropped");
            continue;
        }
        ++rep.log_records_replayed;
        for (auto& [id, doc] : ops) {
            if (doc) {
                keep(std::move(*doc), seq);
            } else if (auto it = live.find(id); it != live.end() && it->second.second <= as_of) {
                live.erase(it);
            }
        }
    }

    // Rewrite: one segment and a new MANIFEST; then the old logs go to the side directory.
    const std::uint64_t new_id = m.next_seg_id;
    Manifest out;
    out.schema = m.schema;
    out.next_seg_id = new_id + 1;
    out.checkpoint_seq = last_seq;
    if (!live.empty()) {
        std::vector<Document> docs;
        std::vector<std::uint64_t> seqs;
        for (auto& [id, ds] : live) {
            docs.push_back(std::move(ds.first));
            seqs.push_back(ds.second);
        }
        rep.documents = docs.size();
        SegmentBuildOptions build;
        build.threads = 2;
        QUIVER_ASSIGN_OR_RETURN(auto seg, Segment::build(new_id, m.schema, std::move(docs), std::move(seqs), build));
        QUIVER_TRY(seg->persist(dir));
        out.segments.emplace_back(new_id, 0);
    }
    QUIVER_TRY(write_manifest_file(dir, out));
    for (const std::string& path : logs) QUIVER_TRY(move_to_side(path));
    for (const auto& [id, gen] : m.segments) {
        fs::remove_all(dir + "/" + Segment::dir_name(id), ec);
        if (gen > 0) fs::remove(del_path(dir, id, gen), ec);
    }
    QUIVER_TRY(storage::sync_directory(dir));
    if (!rep.side_dir.empty()) {
        std::string text = "quiver repair of '" + dir + "'\n";
        for (const auto& a : rep.actions) text += a + "\n";
        text += "original logs: moved here\n";
        const std::string path = side + "/REPORT.txt";
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return errno_error("creating", path);
        Status st = storage::write_all(fd, text.data(), text.size(), path);
        if (st) st = storage::sync_file(fd, path);
        ::close(fd);
        QUIVER_TRY(st);
        QUIVER_TRY(storage::sync_directory(side));
        QUIVER_TRY(storage::sync_directory(storage::parent_directory(side)));
    }
    return rep;
}

}  // namespace quiver::engine
