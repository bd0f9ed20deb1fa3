// Collection: creation, recovery (MANIFEST + WAL replay), and the write path. Merges: merge.cpp;
// reads: search.cpp.
#include <fcntl.h>
#include <sys/file.h>
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
namespace {

constexpr std::uint32_t kManifestKind = storage::fourcc("MANI");
constexpr std::uint32_t kManifestVersion = 1;
constexpr std::uint32_t kDeleteKind = storage::fourcc("DELS");
constexpr std::uint32_t kDeleteVersion = 2;
constexpr std::uint8_t kRecordUpsert = 1;
constexpr std::uint8_t kRecordDelete = 2;

struct Manifest {
    Schema schema;
    std::uint64_t next_seg_id = 1;
    std::uint64_t checkpoint_seq = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> segments;  // (id, delete generation)
};

Result<Manifest> read_manifest(const std::string& dir) {
    const std::string path = dir + "/MANIFEST";
    QUIVER_ASSIGN_OR_RETURN(auto file, storage::MappedFile::open(path));
    QUIVER_ASSIGN_OR_RETURN(auto reader, storage::open_payload(file, kManifestKind, kManifestVersion));
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

Status write_manifest_file(const std::string& dir, const Manifest& m) {
    ByteWriter w;
    encode_schema(w, m.schema);
    w.u64(m.next_seg_id);
    w.u64(m.checkpoint_seq);
    w.u64(m.segments.size());
    for (const auto& [id, gen] : m.segments) {
        w.u64(id);
        w.u64(gen);
    }
    QUIVER_ASSIGN_OR_RETURN(auto fw, storage::FileWriter::create(dir + "/MANIFEST", kManifestKind, kManifestVersion));
    QUIVER_TRY(fw.write_string(w.bytes()));
    return fw.finish();
}

// Delete files: v1 = u64 n | n bytes (1 = deleted); v2 = u64 n | u64 bytes | portable roaring bitmap.
Result<DeleteSet> read_deletes(const std::string& path, std::size_t n) {
    QUIVER_ASSIGN_OR_RETURN(auto file, storage::MappedFile::open(path));
    std::uint32_t version = 0;
    QUIVER_ASSIGN_OR_RETURN(auto reader, storage::open_payload(file, kDeleteKind, kDeleteVersion, &version));
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
    for (const auto& [id, e] : segs) snap->segs.push_back({e.seg, e.deleted, e.dead});
    std::lock_guard lock(snap_mu);
    snapshot = std::move(snap);
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
    QUIVER_ASSIGN_OR_RETURN(auto w, storage::WalWriter::create(path, seq + 1, options.wal_sync));
    wal.emplace(std::move(w));
    wal_files.push_back({seq + 1, path});
    return ok_status();
}

Status Collection::Impl::write_manifest(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& persisted) {
    Manifest m;
    m.schema = schema;
    m.next_seg_id = next_seg_id.load();
    m.checkpoint_seq = checkpoint_seq;
    m.segments = persisted;
    return write_manifest_file(dir, m);
}

bool Collection::Impl::delete_live(const std::string& id, DeleteDelta& changed) {
    for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        SegEntry& e = it->second;
        const auto local = e.seg->find(id);
        if (!local) continue;
        auto found = changed.find(it->first);
        if (e.deleted.contains(*local) || (found != changed.end() && found->second.contains(*local))) {
            continue;  // an older, already deleted version
        }
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
    if (impl_->merger.joinable()) impl_->merger.join();
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
        QUIVER_TRY(load_encoders(schema, probe));
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
    {
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
    QUIVER_TRY(load_encoders(impl->schema, impl->encoders));
    impl->next_seg_id = m.next_seg_id;
    impl->checkpoint_seq = m.checkpoint_seq;
    impl->last_seq = m.checkpoint_seq;
    std::set<std::string> keep = {"MANIFEST", "LOCK"};
    for (const auto& [id, gen] : m.segments) {
        auto seg = Segment::open(dir, id, m.schema);
        if (!seg) return std::move(seg).error().with_context("opening collection '" + dir + "'");
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
    for (std::size_t li = 0; li < logs.size(); ++li) {
        const bool obsolete = li + 1 < logs.size() && logs[li + 1].first_seq <= m.checkpoint_seq + 1;
        if (obsolete) continue;  // removed below
        QUIVER_ASSIGN_OR_RETURN(auto contents, storage::read_wal(logs[li].path));
        if (contents.torn_tail) {
            // Never acknowledged: drop the partial record so nothing is ever appended after it.
            if (contents.valid_bytes >= storage::kWalHeaderBytes) {
                QUIVER_TRY(storage::WalWriter::open_for_append(logs[li].path, contents.valid_bytes,
                                                               storage::WalSync::kEveryAppend));
            }
        }
        for (const std::string& rec : contents.records) {
            ByteReader r(rec);
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t seq, r.u64());
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t type, r.u8());
            QUIVER_ASSIGN_OR_RETURN(std::uint32_t count, r.u32());
            if (seq <= m.checkpoint_seq) continue;
            if (seq <= impl->last_seq) return data_loss("'" + logs[li].path + "': sequence numbers go backwards");
            impl->last_seq = seq;
            for (std::uint32_t i = 0; i < count; ++i) {
                std::string id;
                std::optional<Document> doc;
                if (type == kRecordUpsert) {
                    QUIVER_ASSIGN_OR_RETURN(Document d, decode_document(r));
                    id = d.id;
                    doc = std::move(d);
                } else if (type == kRecordDelete) {
                    QUIVER_ASSIGN_OR_RETURN(id, r.str());
                } else {
                    return data_loss("'" + logs[li].path + "': unknown record type " + std::to_string(type));
                }
                pending.erase(id);
                impl->delete_live(id, changed);  // consults `changed` first; applied once below
                if (doc) pending.emplace(id, std::make_pair(std::move(*doc), seq));
            }
        }
    }
    impl->apply_changed(changed);
    // Leftovers of interrupted merges and obsolete logs.
    for (std::size_t li = 0; li < logs.size(); ++li) {
        const bool obsolete = li + 1 < logs.size() && logs[li + 1].first_seq <= m.checkpoint_seq + 1;
        if (obsolete) {
            std::filesystem::remove(logs[li].path, ec);
        } else {
            impl->wal_files.push_back(logs[li]);
        }
    }
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
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
        QUIVER_ASSIGN_OR_RETURN(auto seg, Segment::build(sid, impl->schema, std::move(docs), std::move(seqs),
                                                         options.build_threads));
        SegEntry e;
        e.seg = seg;
        impl->segs.emplace(sid, std::move(e));
    }
    {
        std::lock_guard lock(impl->write_mu);
        QUIVER_TRY(impl->open_wal_after(impl->last_seq));
        impl->publish();
    }
    std::shared_ptr<Collection> c(new Collection(std::move(impl)));
    if (options.background_merge) {
        Impl* raw = c->impl_.get();
        c->impl_->merger = std::thread([raw] { raw->merger_loop(); });
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
    {
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
    // Encode and build outside the writer lock, so concurrent writers index in parallel; the sequence
    // number is patched in under the lock. Building first also refuses a batch that cannot be indexed
    // before it reaches the log.
    ByteWriter w;
    encode_upsert(w, 0, docs);
    if (w.bytes().size() >= storage::kWalMaxRecord) return resource_exhausted("batch too large for one log record");
    const std::size_t n = docs.size();
    const std::uint64_t sid = s.next_seg_id.fetch_add(1);
    QUIVER_ASSIGN_OR_RETURN(auto seg, Segment::build(sid, s.schema, std::move(docs), std::vector<std::uint64_t>(n, 0), 1));
    std::lock_guard lock(s.write_mu);
    if (s.closed) return failed_precondition("collection '" + s.dir + "' is closed");
    const std::uint64_t seq = s.last_seq + 1;
    std::memcpy(w.bytes().data(), &seq, sizeof seq);  // the record starts with its u64 sequence number
    seg->assign_seq(seq);
    QUIVER_TRY(s.wal->append(w.bytes()));
    s.last_seq = seq;
    s.last_write = std::chrono::steady_clock::now();
    DeleteDelta changed;
    for (std::uint32_t i = 0; i < seg->size(); ++i) s.delete_live(seg->doc_id(i), changed);
    s.apply_changed(changed);
    SegEntry e;
    e.seg = seg;
    s.segs.emplace(sid, std::move(e));
    s.publish();
    return ok_status();
}

Result<std::size_t> Collection::remove(const std::vector<std::string>& ids) {
    Impl& s = *impl_;
    for (const auto& id : ids) {
        if (!valid_document_id(id)) return invalid_argument("document id must be 1-512 bytes of valid UTF-8");
    }
    if (ids.empty()) return std::size_t{0};
    std::lock_guard lock(s.write_mu);
    if (s.closed) return failed_precondition("collection '" + s.dir + "' is closed");
    const std::uint64_t seq = s.last_seq + 1;
    ByteWriter w;
    w.u64(seq);
    w.u8(kRecordDelete);
    w.u32(static_cast<std::uint32_t>(ids.size()));
    for (const auto& id : ids) w.str(id);
    if (w.bytes().size() >= storage::kWalMaxRecord) return resource_exhausted("batch too large for one log record");
    QUIVER_TRY(s.wal->append(w.bytes()));
    s.last_seq = seq;
    s.last_write = std::chrono::steady_clock::now();
    DeleteDelta changed;
    std::size_t removed = 0;
    for (const auto& id : ids) removed += s.delete_live(id, changed) ? 1 : 0;
    s.apply_changed(changed);
    s.publish();
    return removed;
}

}  // namespace quiver::engine
