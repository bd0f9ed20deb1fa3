// Collection: creation, recovery (MANIFEST + WAL replay), and the write path. Merges: merge.cpp;
// reads: search.cpp.
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <unordered_map>

#include "engine/codec.h"
#include "engine/collection_state.h"
#include "quiver/storage/file_format.h"

namespace quiver::engine {

constexpr std::uint32_t kManifestKind = storage::fourcc("MANI");
// Version 2: the schema uses vector storage options (quantization, on_disk), multi_vector fields (one
// more byte per such field) or sparse_vector fields with an encoder, which version-1 readers do not
// know; other collections still write version 1 (schema_version in schema.cpp). Version 3: a text
// field has `chunking` (schema flag bit 3 and its spec). Version 4: a vector field has a
// `memory_budget` (schema flag bit 5 and a u64) or `chunking` (its documents hold chunk vectors, its
// segment index one entry per chunk), or a MUVERA multi_vector field has parameters (flag bit 6:
// blocked FDEs, the default for new fields).
constexpr std::uint32_t kManifestVersion = 4;
constexpr std::uint32_t kDeleteKind = storage::fourcc("DELS");
constexpr std::uint32_t kDeleteVersion = 2;

/// Errors of files that MANIFEST names: a missing or foreign file is damage to the collection, so
/// kNotFound and kInvalidArgument become kDataLoss naming the file; newer formats and I/O errors stay.
Error as_data_loss(const Error& e, const std::string& path, std::string_view what) {
    if (e.code() == ErrorCode::kNotFound) {
        return data_loss(e.message() + " (" + std::string(what) + " is missing: '" + path + "')");
    }
    if (e.code() == ErrorCode::kInvalidArgument) return data_loss(e.message());
    return e;
}

Result<Manifest> read_manifest(const std::string& dir) {
    const std::string path = dir + "/MANIFEST";
    auto file = storage::MappedFile::open(path);
    if (!file) return as_data_loss(file.error(), path, "the collection's MANIFEST");
    auto opened = storage::open_payload(*file, kManifestKind, kManifestVersion);
    if (!opened) return as_data_loss(opened.error(), path, "the collection's MANIFEST");
    auto& reader = *opened;
    QUIVER_ASSIGN_OR_RETURN(std::string bytes, reader.read_string());
    ByteReader r(bytes);
    Manifest m;
    QUIVER_ASSIGN_OR_RETURN(m.schema, decode_schema(r));
    QUIVER_ASSIGN_OR_RETURN(m.next_seg_id, r.u64());
    QUIVER_ASSIGN_OR_RETURN(m.checkpoint_seq, r.u64());
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t n, r.u64());
    if (n > r.remaining() / 16) return data_loss("'" + path + "': segment count beyond the file");
    for (std::uint64_t i = 0; i < n; ++i) {
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t id, r.u64());
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t gen, r.u64());
        if (id >= m.next_seg_id) return data_loss("'" + path + "': segment id beyond next id");
        m.segments.emplace_back(id, gen);
    }
    return m;
}

Status write_manifest_file(const std::string& dir, const Manifest& m, bool* renamed) {
    ByteWriter w;
    encode_schema(w, m.schema);
    w.u64(m.next_seg_id);
    w.u64(m.checkpoint_seq);
    w.u64(m.segments.size());
    for (const auto& [id, gen] : m.segments) {
        w.u64(id);
        w.u64(gen);
    }
    QUIVER_ASSIGN_OR_RETURN(auto fw,
                            storage::FileWriter::create(dir + "/MANIFEST", kManifestKind, schema_version(m.schema)));
    QUIVER_TRY(fw.write_string(w.bytes()));
    Status st = fw.finish();
    if (renamed) *renamed = fw.renamed();
    return st;
}

// Delete files: v1 = u64 n | n bytes (1 = deleted); v2 = u64 n | u64 bytes | portable roaring bitmap.
Result<DeleteSet> read_deletes(const std::string& path, std::size_t n) {
    auto file = storage::MappedFile::open(path);
    if (!file) return as_data_loss(file.error(), path, "a delete file named by MANIFEST");
    std::uint32_t version = 0;
    auto opened = storage::open_payload(*file, kDeleteKind, kDeleteVersion, &version);
    if (!opened) return as_data_loss(opened.error(), path, "a delete file named by MANIFEST");
    auto& reader = *opened;
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t count, reader.read_pod<std::uint64_t>());
    if (count != n) return data_loss("'" + path + "': delete bitmap size does not match its segment");
    Bitmap bits;
    if (version == 1) {
        QUIVER_ASSIGN_OR_RETURN(auto bytes, reader.read_span<std::uint8_t>(count));
        std::vector<std::uint32_t> docs;
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            if (bytes[i] > 1) return data_loss("'" + path + "': delete map byte is not 0 or 1");
            if (bytes[i] != 0) docs.push_back(static_cast<std::uint32_t>(i));
        }
        bits.add_many(docs);
    } else {
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t size, reader.read_pod<std::uint64_t>());
        if (size != reader.remaining()) return data_loss("'" + path + "': delete bitmap size field");
        QUIVER_ASSIGN_OR_RETURN(auto bytes, reader.read_span<std::byte>(size));
        auto decoded = Bitmap::deserialize(bytes);
        if (!decoded) return data_loss("'" + path + "': " + decoded.error().message());
        bits = std::move(decoded).value();
        if (!bits.empty() && bits.maximum() >= n) return data_loss("'" + path + "': deleted document beyond its segment");
    }
    return DeleteSet(std::move(bits));
}

namespace {

void encode_upsert(ByteWriter& w, std::uint64_t seq, const std::vector<Document>& docs) {
    w.u64(seq);
    w.u8(kRecordUpsert);
    w.u32(static_cast<std::uint32_t>(docs.size()));
    for (const auto& d : docs) encode_document(w, d);
}

}  // namespace

std::string wal_path(const std::string& dir, std::uint64_t first_seq) {
    char name[48];
    std::snprintf(name, sizeof name, "wal-%020llu.log", static_cast<unsigned long long>(first_seq));
    return dir + "/" + name;
}

std::string del_path(const std::string& dir, std::uint64_t seg, std::uint64_t gen) {
    return dir + "/del_" + std::to_string(seg) + "_" + std::to_string(gen) + ".qvr";
}

Status write_delete_file(const std::string& path, const DeleteSet& set, std::size_t n) {
    Bitmap bits = set.flatten();
    bits.optimize();
    const std::string bytes = bits.serialize();
    QUIVER_ASSIGN_OR_RETURN(auto fw, storage::FileWriter::create(path, kDeleteKind, kDeleteVersion));
    QUIVER_TRY(fw.write_pod(static_cast<std::uint64_t>(n)));
    QUIVER_TRY(fw.write_pod(static_cast<std::uint64_t>(bytes.size())));
    QUIVER_TRY(fw.write(bytes.data(), bytes.size()));
    return fw.finish();
}

void Collection::Impl::publish() {
    auto snap = std::make_shared<Snapshot>();
    snap->segs.reserve(segs.size());
    CollectionStats& st = snap->stats;
    for (const auto& [id, e] : segs) {
        snap->segs.push_back({e.seg, e.deleted, e.dead, e.persisted});
        st.documents += e.seg->size() - e.deleted.count();
        st.deleted_pending += e.deleted.count();
        ++st.segments;
        if (!e.persisted) ++st.memory_segments;
        st.vector_memory_bytes += e.seg->vector_footprint().memory_bytes;
        st.vector_disk_bytes += e.seg->vector_footprint().disk_bytes;
        if (e.persisted) add_vector_budget_stats(schema, *e.seg, st);
    }
    if (mem && mem->size() > 0) {
        snap->mem = mem;
        snap->mem_n = mem->size();
        st.documents += mem_live;
        st.deleted_pending += mem->size() - mem_live;
        ++st.segments;
        ++st.memory_segments;
    }
    snap->seq = last_seq;
    st.last_seq = last_seq;
    const std::size_t before = memory_segments.exchange(st.memory_segments);
    {
        std::lock_guard lock(snap_mu);
        snapshot = std::move(snap);
    }
    const std::size_t limit = options.stall_memory_segments;
    if (limit > 0 && before >= limit && st.memory_segments < limit) {
        std::lock_guard lock(stall_mu);  // no lost wake-up: a staller tests the count under stall_mu
        stall_cv.notify_all();
    }
}

void Collection::Impl::stall_if_merges_behind() {
    const std::size_t limit = options.stall_memory_segments;
    if (limit == 0 || !options.background_merge || options.read_only) return;
    if (memory_segments.load(std::memory_order_relaxed) < limit) return;
    write_stalls.fetch_add(1, std::memory_order_relaxed);
    // A merge that fails (a full disk) ends the wait too: the write then meets the same error or not.
    const std::uint64_t failures = merge_failures.load();
    std::unique_lock lock(stall_mu);
    stall_cv.wait_for(lock, std::chrono::milliseconds(options.max_stall_ms), [&] {
        return memory_segments.load() < limit || merge_failures.load() != failures || closing.load();
    });
}

Result<std::uint64_t> Collection::Impl::freeze_memtable(std::size_t next_capacity) {
    const std::size_t capacity = std::max<std::size_t>({options.memtable_docs, next_capacity, 1});
    if (!mem || mem->size() == 0) {
        if (!mem || mem->capacity() < capacity) mem = std::make_shared<Memtable>(schema, capacity);
        return std::uint64_t{0};
    }
    std::vector<const Document*> docs;  // the memtable's own, not copies
    std::vector<std::uint64_t> seqs;
    std::vector<std::uint32_t> slots;
    SegmentBuildOptions build;
    mem->live_prefix(mem->size(), docs, seqs, slots, &build.analysed);  // analysed once, at the write
    std::uint64_t sid = 0;
    if (!docs.empty()) {
        sid = next_seg_id++;
        build.exact_vectors = docs.size() <= options.exact_memory_docs;
        build.raw_store = true;  // in memory until a merge replaces it
        QUIVER_ASSIGN_OR_RETURN(auto seg, Segment::build(sid, schema, std::span<const Document* const>(docs),
                                                         std::move(seqs), build));
        SegEntry e;
        e.seg = seg;
        segs.emplace(sid, std::move(e));
    }
    // Snapshots already published keep the old memtable alive; new ones see the segment instead.
    mem = std::make_shared<Memtable>(schema, capacity);
    mem_live = 0;
    return sid;
}

Status Collection::Impl::open_wal_after(std::uint64_t seq) {
    const std::string path = wal_path(dir, seq + 1);
    if (::access(path.c_str(), F_OK) == 0) {
        // Only a log created and never written can carry this name: its first record would exceed `seq`.
        if (std::remove(path.c_str()) != 0) return errno_error("removing empty log", path);
    }
    // A same-named entry (the empty log just removed) must not stay listed: it would later be deleted
    // as obsolete while being the live log.
    wal_files.erase(std::remove_if(wal_files.begin(), wal_files.end(), [&](const WalFile& f) { return f.path == path; }),
                    wal_files.end());
    // Appends never sync by themselves: the group-commit leader calls sync() once per group.
    QUIVER_ASSIGN_OR_RETURN(auto w, storage::WalWriter::create(path, seq + 1, storage::WalSync::kNone));
    wal.emplace(std::move(w));
    wal_files.push_back({seq + 1, path});
    return ok_status();
}

Status Collection::Impl::write_manifest(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& persisted,
                                        bool* renamed) {
    Manifest m;
    m.schema = schema;
    m.next_seg_id = next_seg_id.load();
    m.checkpoint_seq = checkpoint_seq;
    m.segments = persisted;
    return write_manifest_file(dir, m, renamed);
}

Status Collection::Impl::ensure_wal() {
    if (wal_failed) return *wal_failed;
    // A failed group closed its log after cutting it back to its last acknowledged record (commit_group):
    // continue in a fresh one.
    if (!wal) QUIVER_TRY(open_wal_after(last_seq));
    if (wal->next_seq() != last_seq + 1) {
        return internal_error("log sequence " + std::to_string(wal->next_seq()) + " differs from the collection's " +
                              std::to_string(last_seq + 1));
    }
    return ok_status();
}

bool Collection::Impl::delete_live(const std::string& id,
                                   DeleteDelta& changed, std::uint64_t seq, std::uint64_t as_of) {
    if (mem) {
        if (const auto local = mem->find_live(id)) {
            if (mem->slot_seq(*local) > as_of) return false;  // rewritten after the snapshot: kept
            mem->mark_deleted(*local, seq);
            --mem_live;
            return true;
        }
    }
    const std::uint64_t hash = Segment::id_hash(id);  // once for every segment probed
    for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        SegEntry& e = it->second;
        const auto local = e.seg->find(id, hash);
        if (!local) continue;
        auto found = changed.find(it->first);
        if (e.deleted.contains(*local) || (found != changed.end() && found->second.contains(*local))) {
            continue;  // an older, already deleted version
        }
        if (e.seg->seq(*local) > as_of) return false;  // the live version, rewritten after the snapshot
        if (found == changed.end()) found = changed.emplace(it->first, Bitmap()).first;
        found->second.add(*local);
        return true;
    }
    return false;
}

void Collection::Impl::set_deleted(SegEntry& e, DeleteSet deleted) {
    e.deleted = std::move(deleted);
    e.dead = DeadStats::next(e.seg, e.deleted, e.dead);
}

void Collection::Impl::apply_changed(DeleteDelta& changed) {
    for (auto& [id, delta] : changed) {
        SegEntry& e = segs.at(id);
        set_deleted(e, e.deleted.with(delta.to_vector()));
        if (e.persisted) e.dirty = true;
    }
    changed.clear();
}

Collection::Impl::~Impl() {
    if (lock_fd >= 0) ::close(lock_fd);
}

Collection::Collection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Collection::~Collection() { close(); }

void Collection::close() {
    {
        std::lock_guard lock(impl_->stop_mu);
        impl_->stop = true;
    }
    impl_->stop_cv.notify_all();
    {
        std::lock_guard lock(impl_->stall_mu);
        impl_->closing.store(true);
        impl_->stall_cv.notify_all();
    }
    if (impl_->merger.joinable()) impl_->merger.join();
    if (impl_->compactor.joinable()) impl_->compactor.join();
    std::lock_guard lock(impl_->write_mu);
    impl_->closed = true;
    impl_->wal.reset();
    if (impl_->lock_fd >= 0) {
        ::close(impl_->lock_fd);  // releases the flock
        impl_->lock_fd = -1;
    }
}

const Schema& Collection::schema() const noexcept { return impl_->schema; }
const std::string& Collection::dir() const noexcept { return impl_->dir; }

Result<std::shared_ptr<Collection>> Collection::create(const std::string& dir, const Schema& schema,
                                                       const CollectionOptions& options) {
    QUIVER_TRY(schema.validate());
    {
        std::vector<std::unique_ptr<FieldEncoder>> probe;  // fail before creating anything
        QUIVER_TRY(load_encoders(schema, options, probe));
    }
    if (::mkdir(dir.c_str(), 0755) != 0) {
        if (errno == EEXIST) return already_exists("collection directory '" + dir + "' exists");
        return errno_error("creating", dir);
    }
    Manifest m;
    m.schema = schema;
    QUIVER_TRY(write_manifest_file(dir, m));
    const auto parent = std::filesystem::path(dir).parent_path().string();
    QUIVER_TRY(storage::sync_directory(parent.empty() ? "." : parent));
    return open(dir, options);
}

Result<std::shared_ptr<Collection>> Collection::open(const std::string& dir, const CollectionOptions& options) {
    auto impl = std::make_unique<Impl>();
    if (!options.read_only) {
        const std::string lock_path = dir + "/LOCK";
        impl->lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (impl->lock_fd < 0) return errno_error("opening", lock_path);
        if (::flock(impl->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            return failed_precondition("collection '" + dir + "' is open in another process or handle");
        }
    }
    QUIVER_ASSIGN_OR_RETURN(Manifest m, read_manifest(dir));
    impl->dir = dir;
    impl->schema = m.schema;
    impl->options = options;
    QUIVER_TRY(load_encoders(impl->schema, options, impl->encoders));
    impl->next_seg_id = m.next_seg_id;
    impl->checkpoint_seq = m.checkpoint_seq;
    impl->last_seq = m.checkpoint_seq;
    std::set<std::string> keep = {"MANIFEST", "LOCK"};
    for (const auto& [id, gen] : m.segments) {
        auto seg = Segment::open(dir, id, m.schema);
        if (!seg) {
            return as_data_loss(seg.error(), dir + "/" + Segment::dir_name(id), "a segment named by MANIFEST")
                .with_context("opening collection '" + dir + "'");
        }
        SegEntry e;
        e.seg = *seg;
        e.persisted = true;
        e.del_gen = gen;
        if (gen > 0) {
            QUIVER_ASSIGN_OR_RETURN(auto del, read_deletes(del_path(dir, id, gen), e.seg->size()));
            Impl::set_deleted(e, std::move(del));
            keep.insert(std::filesystem::path(del_path(dir, id, gen)).filename().string());
        }
        keep.insert(Segment::dir_name(id));
        impl->next_del_gen = std::max(impl->next_del_gen, gen + 1);
        impl->segs.emplace(id, std::move(e));
    }
    // Logs, oldest first; replay what follows the checkpoint.
    std::vector<WalFile> logs;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("wal-", 0) == 0 && name.size() > 8 && name.substr(name.size() - 4) == ".log") {
            logs.push_back({std::strtoull(name.c_str() + 4, nullptr, 10), entry.path().string()});
        }
    }
    if (ec) return io_error("listing '" + dir + "': " + ec.message());
    std::sort(logs.begin(), logs.end(), [](const WalFile& a, const WalFile& b) { return a.first_seq < b.first_seq; });
    std::map<std::string, std::pair<Document, std::uint64_t>> pending;  // replayed upserts not yet deleted
    DeleteDelta changed;
    // Records must continue the checkpoint without a gap: the next expected sequence number.
    std::uint64_t expected = m.checkpoint_seq + 1;
    bool first_live = true;
    std::string previous;  // the log replayed before this one
    for (std::size_t li = 0; li < logs.size(); ++li) {
        const bool obsolete = li + 1 < logs.size() && logs[li + 1].first_seq <= m.checkpoint_seq + 1;
        if (obsolete) continue;  // removed below
        const std::string& path = logs[li].path;
        const bool newest = li + 1 == logs.size();
        QUIVER_ASSIGN_OR_RETURN(auto contents, storage::read_wal(path));
        // The first live log may start at or before the checkpoint; every later one exactly where the
        // previous one ended.
        const std::uint64_t first = logs[li].first_seq;
        if (first > expected || (!first_live && first != expected)) {
            const std::string before = first_live ? "the MANIFEST checkpoint" : "the previous log '" + previous + "'";
            return data_loss("'" + path + "' starts at sequence number " + std::to_string(first) + " (offset 0), but " +
                             before + " ends at " + std::to_string(expected - 1) + ": " +
                             (first > expected ? "acknowledged records are missing" : "the logs overlap"));
        }
        first_live = false;
        previous = path;
        if (contents.torn_header) {
            // Torn while being created: it never held a record. Only the newest log can be.
            if (!newest) return data_loss("'" + path + "': header is torn (offset 0) but newer logs follow");
            if (contents.file_bytes > 0) {
                impl->recovered_tail_bytes += contents.file_bytes;
                std::fprintf(stderr, "quiver: collection '%s': dropped a log whose header was torn at creation "
                             "('%s', %llu bytes, 0 records)\n", dir.c_str(), path.c_str(),
                             static_cast<unsigned long long>(contents.file_bytes));
            }
            continue;  // open_wal_after() replaces it: its name is the next sequence number
        }
        if (contents.first_seq != first) {
            return data_loss("'" + path + "': header says first sequence number " + std::to_string(contents.first_seq) +
                             " (offset 8), its name " + std::to_string(first));
        }
        if (contents.torn_tail && !newest) {
            return data_loss("'" + path + "': damaged at offset " + std::to_string(contents.valid_bytes) +
                             "; only the newest log can end in a torn write");
        }
        for (const storage::WalRecord& rec : contents.records) {
            if (rec.seq < expected) continue;  // covered by the checkpoint
            const std::string where = "'" + path + "' record at offset " + std::to_string(rec.offset);
            ByteReader r(rec.payload);
            auto seq = r.u64();
            auto type = r.u8();
            auto count = r.u32();
            if (!seq || !type || !count || *seq != rec.seq) return data_loss(where + ": malformed record");
            std::uint64_t as_of = UINT64_MAX;
            if (*type == kRecordDeleteAsOf) {
                auto a = r.u64();
                if (!a || *a >= rec.seq) return data_loss(where + ": malformed record (as-of sequence number)");
                as_of = *a;
            }
            for (std::uint32_t i = 0; i < *count; ++i) {
                std::string id;
                std::optional<Document> doc;
                if (*type == kRecordUpsert) {
                    auto d = decode_document(r);
                    if (!d) return data_loss(where + ": " + d.error().message());
                    id = d->id;
                    doc = std::move(*d);
                } else if (*type == kRecordDelete || *type == kRecordDeleteAsOf) {
                    auto s = r.str();
                    if (!s) return data_loss(where + ": " + s.error().message());
                    id = std::move(*s);
                } else {
                    return data_loss(where + ": unknown record type " + std::to_string(*type));
                }
                if (const auto it = pending.find(id); it != pending.end()) {
                    if (it->second.second > as_of) continue;  // rewritten after the delete's snapshot
                    pending.erase(it);
                }
                impl->delete_live(id, changed, 0, as_of);  // consults `changed` first; applied once below
                if (doc) pending.emplace(id, std::make_pair(std::move(*doc), rec.seq));
            }
            expected = rec.seq + 1;
        }
        if (contents.torn_tail && !options.read_only) {
            // A write that never completed, so never acknowledged: drop it so nothing follows it.
            // (A read-only open beside the owner leaves it: the owner may be writing it right now.)
            const std::uint64_t dropped = contents.file_bytes - contents.valid_bytes;
            QUIVER_TRY(storage::truncate_wal(path, contents.valid_bytes));
            impl->recovered_tail_bytes += dropped;
            impl->recovered_tail_records += contents.tail_records;
            std::fprintf(stderr, "quiver: collection '%s': dropped the torn tail of '%s': %llu bytes from offset %llu "
                         "(%llu partial records)\n", dir.c_str(), path.c_str(), static_cast<unsigned long long>(dropped),
                         static_cast<unsigned long long>(contents.valid_bytes),
                         static_cast<unsigned long long>(contents.tail_records));
        }
    }
    impl->last_seq = expected - 1;
    impl->apply_changed(changed);
    // Leftovers of interrupted merges and obsolete logs (a read-only open leaves them to the owner).
    for (std::size_t li = 0; li < logs.size() && !options.read_only; ++li) {
        const bool obsolete = li + 1 < logs.size() && logs[li + 1].first_seq <= m.checkpoint_seq + 1;
        if (obsolete) {
            std::filesystem::remove(logs[li].path, ec);
        } else {
            impl->wal_files.push_back(logs[li]);
        }
    }
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        if (options.read_only) break;
        const std::string name = entry.path().filename().string();
        const bool ours = name.rfind("seg_", 0) == 0 || name.rfind("del_", 0) == 0 ||
                          (name.size() > 4 && name.substr(name.size() - 4) == ".tmp");
        if (ours && keep.count(name) == 0) std::filesystem::remove_all(entry.path(), ec);
    }
    if (!pending.empty()) {
        std::vector<Document> docs;
        std::vector<std::uint64_t> seqs;
        for (auto& [id, ds] : pending) {
            docs.push_back(std::move(ds.first));
            seqs.push_back(ds.second);
        }
        const std::uint64_t sid = impl->next_seg_id++;
        SegmentBuildOptions build;
        build.threads = options.build_threads;
        build.exact_vectors = docs.size() <= options.exact_memory_docs;
        build.raw_store = true;  // in memory until a merge replaces it
        QUIVER_ASSIGN_OR_RETURN(auto seg, Segment::build(sid, impl->schema, std::move(docs), std::move(seqs), build));
        SegEntry e;
        e.seg = seg;
        impl->segs.emplace(sid, std::move(e));
    }
    {
        std::lock_guard lock(impl->write_mu);
        if (!options.read_only) QUIVER_TRY(impl->open_wal_after(impl->last_seq));
        impl->publish();
    }
    std::shared_ptr<Collection> c(new Collection(std::move(impl)));
    if (options.background_merge && !options.read_only) {
        Impl* raw = c->impl_.get();
        c->impl_->merger = std::thread([raw] { raw->merger_loop(Impl::MergeLane::kFlush); });
        c->impl_->compactor = std::thread([raw] { raw->merger_loop(Impl::MergeLane::kCompact); });
    }
    return c;
}

Status Collection::upsert(std::vector<Document> docs) {
    Impl& s = *impl_;
    if (docs.empty()) return ok_status();
    for (const auto& d : docs) {
        if (!valid_document_id(d.id)) return invalid_argument("document id must be 1-512 bytes of valid UTF-8");
    }
    QUIVER_TRY(embed_documents(s.schema, s.encoders, docs));
    for (auto& d : docs) QUIVER_TRY(validate_document(s.schema, d));
    // The last of duplicate ids wins.
    if (docs.size() > 1) {
        std::unordered_map<std::string, std::size_t> last;
        for (std::size_t i = 0; i < docs.size(); ++i) last[docs[i].id] = i;
        if (last.size() != docs.size()) {
            std::vector<Document> unique;
            for (std::size_t i = 0; i < docs.size(); ++i) {
                if (last[docs[i].id] == i) unique.push_back(std::move(docs[i]));
            }
            docs = std::move(unique);
        }
    }
    // A vector field's memory budget must hold the collection with this batch (counted as new documents).
    QUIVER_TRY(check_vector_budgets(s.schema, s.current()->stats.documents + docs.size()));
    // Encode and index outside the writer lock, so concurrent writers work in parallel; the sequence
    // number is patched in by the group-commit leader. Indexing first also refuses a batch that cannot
    // be indexed before it reaches the log.
    PendingWrite w;
    {
        ByteWriter bw;
        encode_upsert(bw, 0, docs);
        w.record = std::move(bw.bytes());
    }
    if (w.record.size() >= storage::kWalMaxRecord) return resource_exhausted("batch too large for one log record");
    if (docs.size() <= s.options.memtable_max_batch && docs.size() <= s.options.memtable_docs) {
        w.mem_docs.reserve(docs.size());
        for (auto& d : docs) {
            QUIVER_ASSIGN_OR_RETURN(MemDoc m, Memtable::prepare(s.schema, std::move(d)));
            w.mem_docs.push_back(std::move(m));
        }
    } else {
        const std::size_t n = docs.size();
        w.seg_id = s.next_seg_id.fetch_add(1);
        SegmentBuildOptions build;
        build.exact_vectors = n <= s.options.exact_memory_docs;
        build.raw_store = true;  // in memory until a merge replaces it
        QUIVER_ASSIGN_OR_RETURN(w.seg, Segment::build(w.seg_id, s.schema, std::move(docs),
                                                      std::vector<std::uint64_t>(n, 0), build));
    }
    return s.commit(w);
}

Result<std::size_t> Collection::remove(const std::vector<std::string>& ids) {
    for (const auto& id : ids) {
        if (!valid_document_id(id)) return invalid_argument("document id must be 1-512 bytes of valid UTF-8");
    }
    return impl_->remove_ids(ids);
}

Result<std::size_t> Collection::Impl::remove_ids(const std::vector<std::string>& ids, std::uint64_t as_of) {
    if (ids.empty()) return std::size_t{0};
    PendingWrite w;
    w.is_delete = true;
    w.delete_as_of = as_of;
    {
        ByteWriter bw;
        bw.u64(0);  // the sequence number, patched by the leader
        bw.u8(as_of == UINT64_MAX ? kRecordDelete : kRecordDeleteAsOf);
        bw.u32(static_cast<std::uint32_t>(ids.size()));
        if (as_of != UINT64_MAX) bw.u64(as_of);
        for (const auto& id : ids) bw.str(id);
        w.record = std::move(bw.bytes());
    }
    if (w.record.size() >= storage::kWalMaxRecord) return resource_exhausted("batch too large for one log record");
    w.delete_ids = ids;
    QUIVER_TRY(commit(w));
    return w.removed;
}

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
              std::atomic<std::uint32_t>::is_always_lock_free, "a futex word is a plain 32-bit word");

void Handoff::post(std::uint32_t value) noexcept {
    word_.store(value, std::memory_order_release);
    // The address only (see the header): the waiter may already have returned and freed the word.
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

std::uint32_t Handoff::wait() noexcept {
    std::uint32_t v = 0;
    // FUTEX_WAIT returns at once when the word is no longer 0 (EAGAIN), on a wake-up, spurious or not,
    // and on a signal (EINTR): the loop re-reads the word each time.
    while ((v = word_.load(std::memory_order_acquire)) == 0) {
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word_), FUTEX_WAIT_PRIVATE, 0u, nullptr, nullptr, 0);
    }
    return v;
}

// Group commit (leader/follower, as RocksDB's write groups): a writer queues its record and, if no
// leader is active, becomes the leader; otherwise it sleeps until a leader has committed it or hands
// it the lead. A leader takes the whole queue, commits it under the writer lock with one write and one
// fsync, and wakes the group. Writers arriving during that fsync form the next group; the leader hands
// the lead to the first of them. Each writer sleeps on its own futex word (Handoff), so a woken
// writer contends with nobody (no thundering herd on the queue's mutex) and is woken once.
Status Collection::Impl::commit(PendingWrite& w) {
    stall_if_merges_behind();
    bool leader = false;
    bool gathered = false;
    {
        std::lock_guard lock(commit_mu);
        commit_queue.push_back(&w);
        writes_waiting.fetch_add(1, std::memory_order_relaxed);
        gathered = gathering && commit_queue.size() >= gather_target;
        if (!commit_leader) commit_leader = leader = true;
    }
    // Notified after the unlock, so the gathering leader does not wake only to block on commit_mu (a
    // late or extra notification meets a predicate wait; gather_cv lives as long as the collection).
    if (gathered) gather_cv.notify_one();
    if (!leader && w.handoff.wait() == PendingWrite::kDone) return w.status;
    std::vector<PendingWrite*> group;
    {
        std::unique_lock lock(commit_mu);
        if (options.commit_delay_us > 0 && last_group_size > 1 && commit_queue.size() < last_group_size) {
            // Concurrent writers: wait (bounded) until as many as last time have queued.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(options.commit_delay_us);
            gathering = true;
            gather_target = last_group_size;
            gather_cv.wait_until(lock, deadline, [&] { return commit_queue.size() >= gather_target; });
            gathering = false;
        }
        group.swap(commit_queue);
        last_group_size = group.size();
        writes_waiting.fetch_sub(group.size(), std::memory_order_relaxed);
    }
    bool prefreeze = false;
    {
        std::lock_guard write_lock(write_mu);
        prefreeze = commit_group(group);
    }
    PendingWrite* next = nullptr;
    {
        std::lock_guard lock(commit_mu);
        if (commit_queue.empty()) {
            commit_leader = false;
        } else {
            next = commit_queue.front();  // it leads the next group (commit_leader stays set)
        }
    }
    // A woken writer may return (destroying its PendingWrite) as soon as its word is posted: nothing
    // of it is touched afterwards (see Handoff). The next leader first, so the next group's write and
    // fsync start while this group is being woken.
    if (next != nullptr) next->handoff.post(PendingWrite::kLead);
    for (PendingWrite* p : group) {
        if (p != &w) p->handoff.post(PendingWrite::kDone);
    }
    if (prefreeze) prefreeze_memtable();  // after the group is acknowledged; the next group goes on
    return w.status;
}

void Collection::Impl::prefreeze_memtable() {
    std::shared_ptr<Memtable> source;
    std::uint32_t n = 0;
    {
        std::lock_guard lock(write_mu);
        source = mem;
        n = source ? source->size() : 0;
        if (closed || n == 0) {
            prefreezing = false;
            return;
        }
    }
    std::vector<const Document*> docs;  // the memtable's own (kept alive by `source`), not copies
    std::vector<std::uint64_t> seqs;
    std::vector<std::uint32_t> slots;
    SegmentBuildOptions build;
    source->live_prefix(n, docs, seqs, slots, &build.analysed);  // analysed once, at the write
    std::shared_ptr<Segment> seg;
    std::uint64_t sid = 0;
    if (!docs.empty()) {
        sid = next_seg_id.fetch_add(1);
        build.exact_vectors = docs.size() <= options.exact_memory_docs;
        build.raw_store = true;  // in memory until a merge replaces it
        auto built = Segment::build(sid, schema, std::span<const Document* const>(docs), std::move(seqs), build);
        // A failure leaves the memtable as it is: it is frozen under the lock when full, as without this.
        if (!built) {
            std::lock_guard lock(write_mu);
            prefreezing = false;
            return;
        }
        seg = std::move(built).value();
    }
    std::lock_guard lock(write_mu);
    prefreezing = false;
    if (closed || mem != source) return;  // a merge (or a full memtable) froze it meanwhile
    if (seg) {
        // Documents of the prefix deleted or replaced since the build are deleted in the segment.
        std::vector<std::uint32_t> gone;
        for (std::uint32_t j = 0; j < slots.size(); ++j) {
            if (source->deleted(slots[j])) gone.push_back(j);
        }
        SegEntry e;
        e.seg = seg;
        if (!gone.empty()) set_deleted(e, DeleteSet().with(gone));
        segs.emplace(sid, std::move(e));
    }
    mem = source->tail(n, std::max<std::size_t>(options.memtable_docs, 1));
    mem_live = mem->live_count(mem->size(), UINT64_MAX);
    publish();
}

bool Collection::Impl::commit_group(const std::vector<PendingWrite*>& group) {
    auto fail_all = [&](const Error& e) {
        for (PendingWrite* p : group) p->status = e;
        return false;
    };
    if (closed) return fail_all(failed_precondition("collection '" + dir + "' is closed"));
    if (options.read_only) return fail_all(failed_precondition("collection '" + dir + "' is open read-only"));
    // Room in the memtable for the whole group, made before anything reaches the log.
    std::size_t incoming = 0;
    for (const PendingWrite* p : group) incoming += p->mem_docs.size();
    if (incoming > 0 && (!mem || mem->size() + incoming > mem->capacity())) {
        if (auto frozen = freeze_memtable(incoming); !frozen) return fail_all(frozen.error());
    }
    // Append every record, then make them durable with one fsync. Nothing is applied (visible) before.
    // On a failed append or fsync every write of the group fails, and the group's records are cut off
    // the log (truncate to where the group began, then fdatasync) so that no later fsync can make them
    // durable and no recovery can replay them: the log again holds exactly the acknowledged writes,
    // whose own fsyncs succeeded, and later writes may proceed (a full disk heals when space returns).
    // If even that fails, the collection refuses writes until it is reopened.
    if (auto st = ensure_wal(); !st) return fail_all(st.error());
    const std::uint64_t group_start = wal->bytes();
    auto fail_group = [&](const Error& e) {
        fail_all(e);
        // Close the writer (a later write opens a new log after last_seq), then cut the group's
        // records off this one so that it ends at its last acknowledged record.
        const std::string path = wal->path();
        wal.reset();
        if (auto cut = storage::truncate_wal(path, group_start); !cut) {
            log_unusable.store(true);
            wal_failed = Error(cut.error().code(), "collection '" + dir + "' is read-only until reopened: its log could "
                                                       "not be cut back after \"" + e.message() + "\": " +
                                                       cut.error().message());
        }
        return false;
    };
    std::uint64_t seq = last_seq;
    std::vector<std::string_view> records;
    records.reserve(group.size());
    for (PendingWrite* p : group) {
        ++seq;
        std::memcpy(p->record.data(), &seq, sizeof seq);  // a record starts with its u64 sequence number
        records.push_back(p->record);
    }
    if (auto st = wal->append_many(records); !st) return fail_group(st.error());
    if (options.wal_sync == storage::WalSync::kEveryAppend) {
        Status st = options.wal_sync_hook ? options.wal_sync_hook() : ok_status();
        if (st) st = wal->sync();
        wal_syncs.fetch_add(1, std::memory_order_relaxed);
        if (!st) return fail_group(st.error());
    }
    // Durable: apply in sequence order and publish once.
    DeleteDelta changed;
    seq = last_seq;
    for (PendingWrite* p : group) {
        ++seq;
        if (p->is_delete) {
            for (const auto& id : p->delete_ids) p->removed += delete_live(id, changed, seq, p->delete_as_of) ? 1 : 0;
        } else if (p->seg) {
            p->seg->assign_seq(seq);
            for (std::uint32_t i = 0; i < p->seg->size(); ++i) delete_live(p->seg->doc_id(i), changed, seq);
            SegEntry e;
            e.seg = p->seg;
            segs.emplace(p->seg_id, std::move(e));
        } else {
            for (MemDoc& d : p->mem_docs) {
                delete_live(d.doc.id, changed, seq);
                mem->append(std::move(d), seq);  // room was made above
                ++mem_live;
            }
        }
        p->status = ok_status();
    }
    apply_changed(changed);
    last_seq = seq;
    last_write = std::chrono::steady_clock::now();
    writes.fetch_add(group.size(), std::memory_order_relaxed);
    publish();
    if (mem && mem->full()) {
        // A failure leaves the memtable searchable and is retried by the next group or merge.
        if (auto frozen = freeze_memtable(); frozen) publish();
        return false;
    }
    // At three quarters full the leader builds the segment of the memtable outside the lock
    // (prefreeze_memtable), so writers rarely wait for a freeze under it.
    if (mem && !prefreezing && mem->size() >= mem->capacity() - mem->capacity() / 4 && mem->capacity() >= 4) {
        prefreezing = true;
        return true;
    }
    return false;
}

}  // namespace quiver::engine
