// Private to engine: the state behind Collection (see collection.h for the contract).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/segment.h"
#include "quiver/encode/encoder.h"
#include "quiver/engine/collection.h"
#include "quiver/storage/wal.h"

namespace quiver::engine {

struct SegEntry {
    std::shared_ptr<Segment> seg;
    DeleteSet deleted;                    // immutable version; snapshots share it
    std::shared_ptr<DeadStats> dead;      // BM25 statistics of `deleted` (null: none deleted)
    bool persisted = false;
    std::uint64_t del_gen = 0;  // generation of the persisted delete file, 0 = none
    bool dirty = false;         // deletes changed since the file was written
};

struct SnapSeg {
    std::shared_ptr<Segment> seg;
    DeleteSet deleted;
    std::shared_ptr<DeadStats> dead;
};

/// Newly deleted documents per segment id (a write's delta, applied by apply_changed).
using DeleteDelta = std::map<std::uint64_t, Bitmap>;

/// What a search or get sees: immutable once published.
struct Snapshot {
    std::vector<SnapSeg> segs;  // ascending segment id
};

/// A field's encoder; `encode` is not reentrant, so calls hold `mu`.
struct FieldEncoder {
    std::unique_ptr<encode::Encoder> encoder;
    std::mutex mu;
};

/// Loads the encoder of every vector field that has one (nullptr elsewhere).
Status load_encoders(const Schema& schema, std::vector<std::unique_ptr<FieldEncoder>>& out);
/// Replaces text given for encoded vector fields (or their sources) by embeddings.
Status embed_documents(const Schema& schema, std::vector<std::unique_ptr<FieldEncoder>>& encoders,
                       std::vector<Document>& docs);
Result<std::vector<float>> embed_query(FieldEncoder& enc, const FieldSpec& f, std::string_view text);

struct WalFile {
    std::uint64_t first_seq = 0;
    std::string path;
};

struct Collection::Impl {
    ~Impl();
    int lock_fd = -1;  // flock on <dir>/LOCK: one process per collection
    std::string dir;
    Schema schema;
    CollectionOptions options;
    std::vector<std::unique_ptr<FieldEncoder>> encoders;  // per schema field; null without an encoder

    std::mutex write_mu;  // writes, merge planning and commit
    std::map<std::uint64_t, SegEntry> segs;
    std::uint64_t last_seq = 0;
    std::uint64_t checkpoint_seq = 0;
    std::atomic<std::uint64_t> next_seg_id{1};  // writers allocate outside write_mu
    std::optional<storage::WalWriter> wal;
    std::vector<WalFile> wal_files;  // ascending first_seq; the last is `wal`
    bool closed = false;
    std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();

    mutable std::mutex snap_mu;
    std::shared_ptr<const Snapshot> snapshot = std::make_shared<Snapshot>();

    std::mutex merge_mu;  // one merge at a time (merger thread, flush, optimize)
    std::mutex stop_mu;
    std::condition_variable stop_cv;
    bool stop = false;
    std::thread merger;
    std::atomic<std::uint64_t> merges{0};

    std::shared_ptr<const Snapshot> current() const {
        std::lock_guard lock(snap_mu);
        return snapshot;
    }
    void publish();  // requires write_mu
    Status open_wal_after(std::uint64_t seq);  // requires write_mu
    Status write_manifest(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& persisted);
    /// Marks the live version of `id` (if any) deleted. Requires write_mu. Returns whether one existed.
    bool delete_live(const std::string& id, DeleteDelta& changed);
    void apply_changed(DeleteDelta& changed);
    /// Sets e.deleted to `deleted` and advances its statistics version.
    static void set_deleted(SegEntry& e, DeleteSet deleted);
    /// One merge pass; `all` merges every segment into one. Sets *did_work.
    Status merge_once(bool force_flush, bool all, bool* did_work);
    void merger_loop();
};

std::string wal_path(const std::string& dir, std::uint64_t first_seq);
std::string del_path(const std::string& dir, std::uint64_t seg, std::uint64_t gen);

}  // namespace quiver::engine
