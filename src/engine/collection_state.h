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
    std::shared_ptr<const DeleteSet> deleted;
    std::size_t deleted_count = 0;
    bool persisted = false;
    std::uint64_t del_gen = 0;  // generation of the persisted delete file, 0 = none
    bool dirty = false;         // deletes changed since the file was written
};

struct SnapSeg {
    std::shared_ptr<Segment> seg;
    std::shared_ptr<const DeleteSet> deleted;
    std::size_t deleted_count = 0;
};

/// What a search or get sees: immutable once published.
struct Snapshot {
    std::vector<SnapSeg> segs;  // ascending segment id
};

/// A field's encoder; `encode` is not reentrant, so calls hold `mu`.
struct FieldEncoder {
    std::unique_ptr<encode::Encoder> encoder;
    std::mutex mu;
};

/// Loads the encoder of every vector field that has one (nullptr elsewhere), resolving names as
/// `options.models_dir` says (collection.h).
Status load_encoders(const Schema& schema, const CollectionOptions& options,
                     std::vector<std::unique_ptr<FieldEncoder>>& out);
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

    std::mutex patch_mu;  // patch(): one read-merge-write at a time
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
    bool delete_live(const std::string& id, std::map<std::uint64_t, std::shared_ptr<DeleteSet>>& changed);
    void apply_changed(std::map<std::uint64_t, std::shared_ptr<DeleteSet>>& changed);
    /// One merge pass; `all` merges every segment into one. Sets *did_work.
    Status merge_once(bool force_flush, bool all, bool* did_work);
    void merger_loop();
};

/// search.cpp: one search over `snap` (the contract of Collection::search).
Result<std::vector<SearchHit>> search_snapshot(const Collection::Impl& impl, const Snapshot& snap,
                                               const SearchRequest& request);

/// A live document of a snapshot: (index into Snapshot::segs, local slot).
struct LiveRef {
    std::size_t seg = 0;
    std::uint32_t local = 0;
};
/// query_ops.cpp: up to `limit` live documents of `snap` matching `filter` (nullptr = all) with ids
/// greater than `after` (bytewise; "" = from the first), in id order.
std::vector<LiveRef> live_in_id_order(const Snapshot& snap, const Filter* filter, std::string_view after,
                                      std::size_t limit);

std::string wal_path(const std::string& dir, std::uint64_t first_seq);
std::string del_path(const std::string& dir, std::uint64_t seg, std::uint64_t gen);

}  // namespace quiver::engine
