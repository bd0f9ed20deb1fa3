// Private to engine: the state behind Collection (see collection.h for the contract).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/memtable.h"
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
    bool persisted = false;
};

/// Newly deleted documents per segment id (a write's delta, applied by apply_changed).
using DeleteDelta = std::map<std::uint64_t, Bitmap>;

/// What a search or get sees: immutable once published.
///
/// Its documents live in "sources": source i < segs.size() is segment segs[i], source segs.size() is
/// the memtable prefix (when `mem` is set). Readers that walk documents (count, scroll, filter-only
/// queries, fusion keys) go through the source accessors, so a segment and the memtable answer alike.
struct Snapshot {
    std::vector<SnapSeg> segs;  // ascending segment id
    std::shared_ptr<const Memtable> mem;  // null or the memtable's first `mem_n` slots, as of `seq`
    std::uint32_t mem_n = 0;
    std::uint64_t seq = 0;
    CollectionStats stats;  // computed at publish: stats() never takes the writer lock

    std::size_t sources() const noexcept { return segs.size() + (mem ? 1 : 0); }
    bool is_mem(std::size_t source) const noexcept { return source == segs.size(); }
    /// Slots of a source (live or not).
    std::uint32_t source_size(std::size_t source) const noexcept {
        return is_mem(source) ? mem_n : segs[source].seg->size();
    }
    bool live(std::size_t source, std::uint32_t local) const noexcept {
        return is_mem(source) ? mem->visible(local, seq) : !segs[source].deleted.contains(local);
    }
    std::string_view doc_id(std::size_t source, std::uint32_t local) const noexcept {
        return is_mem(source) ? std::string_view(mem->doc_id(local)) : std::string_view(segs[source].seg->doc_id(local));
    }
    const Document& attributes(std::size_t source, std::uint32_t local) const noexcept {
        return is_mem(source) ? mem->attributes(local) : segs[source].seg->attributes(local);
    }
    /// The whole stored document.
    Result<Document> document(std::size_t source, std::uint32_t local) const {
        if (is_mem(source)) return mem->document(local);
        return segs[source].seg->document(local);
    }
    /// The fields of a document named in `fields` (segments: Segment::document(local, fields), which
    /// reads attributes and short fields without decompressing a block).
    Result<Document> document(std::size_t source, std::uint32_t local, std::span<const std::string> fields) const {
        if (!is_mem(source)) return segs[source].seg->document(local, fields);
        const Document& d = mem->document(local);
        Document out;
        out.id = d.id;
        for (const std::string& name : fields) {
            if (auto it = d.fields.find(name); it != d.fields.end()) out.fields.emplace(name, it->second);
        }
        return out;
    }
    /// Live documents of a source.
    std::size_t live_count(std::size_t source) const noexcept {
        return is_mem(source) ? mem->live_count(mem_n, seq) : segs[source].seg->size() - segs[source].deleted.count();
    }
};

/// A one-shot wake-up word between a group-commit leader and one waiting writer: the writer sleeps in
/// FUTEX_WAIT until the word leaves 0; the leader stores the new value (release) and issues one
/// FUTEX_WAKE. With a mutex and condition variable instead, the leader signalled while holding the
/// writer's mutex, so the woken writer often blocked again on that mutex and needed a second wake-up
/// at the unlock (about 3.5% of the server's CPU at 16 writing connections went to that second round).
/// Lifetime: once the writer has seen the new value it may return and free the word before the
/// leader's FUTEX_WAKE is issued. That call only names the address (a private futex's key is the
/// address; the kernel reads no memory for a wake), so it then wakes nobody, fails with EFAULT, or wakes
/// a waiter of another futex word now at that address, which re-checks its word (every futex waiter,
/// this one and glibc's locks included, tolerates such spurious wake-ups). Linux only.
class Handoff {
public:
    /// Leader: sets the word to `value` (not 0; everything written before is visible to the waiter).
    void post(std::uint32_t value) noexcept;
    /// Writer: waits until the word is not 0 and returns it.
    std::uint32_t wait() noexcept;

private:
    std::atomic<std::uint32_t> word_{0};
};

/// One write waiting for group commit (see Impl::commit).
struct PendingWrite {
    std::string record;               // the encoded WAL record; its first 8 bytes get the sequence number
    std::vector<MemDoc> mem_docs;     // a small upsert: appended to the memtable
    std::shared_ptr<Segment> seg;     // a large upsert: its own in-memory segment, built by the writer
    std::uint64_t seg_id = 0;
    std::vector<std::string> delete_ids;  // a delete
    bool is_delete = false;
    std::uint64_t delete_as_of = UINT64_MAX;  // delete by filter: only versions written at or before it
    Status status;
    std::size_t removed = 0;  // deletes: how many existed
    // The writer's own hand-off (Impl::commit; 0 while it waits): a leader posts kDone (the write was
    // committed, `status` is final) or kLead (lead the next group), so a woken writer takes no lock at all.
    static constexpr std::uint32_t kDone = 1;
    static constexpr std::uint32_t kLead = 2;
    Handoff handoff;
};

/// A field's encoder; `encode` is not reentrant, so calls hold `mu`.
struct FieldEncoder {
    std::unique_ptr<encode::Encoder> encoder;
    std::mutex mu;
};

/// Loads the encoder of every field that has one (vector, sparse_vector, multi_vector) (nullptr elsewhere), resolving names as
/// `options.models_dir` says (collection.h).
Status load_encoders(const Schema& schema, const CollectionOptions& options,
                     std::vector<std::unique_ptr<FieldEncoder>>& out);
/// Replaces text given for fields with an encoder (or their sources) by embeddings: vectors, SPLADE
/// term weights or ColBERT token vectors. A text that encodes to nothing leaves the field absent.
Status embed_documents(const Schema& schema, std::vector<std::unique_ptr<FieldEncoder>>& encoders,
                       std::vector<Document>& docs);
Result<std::vector<float>> embed_query(FieldEncoder& enc, const FieldSpec& f, std::string_view text);
/// A sparse_vector field's query text -> SPLADE term weights (kInvalidArgument when no term is weighted).
Result<SparseTerms> embed_query_sparse(FieldEncoder& enc, const FieldSpec& f, std::string_view text);
/// A multi_vector field's query text -> ColBERT query token vectors.
Result<TokenVectors> embed_query_tokens(FieldEncoder& enc, const FieldSpec& f, std::string_view text);

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

    std::mutex write_mu;  // WAL appends + fsync (one group at a time), merge planning and commit
    std::map<std::uint64_t, SegEntry> segs;
    std::uint64_t last_seq = 0;
    std::uint64_t checkpoint_seq = 0;
    std::atomic<std::uint64_t> next_seg_id{1};  // writers allocate outside write_mu
    // The next delete file generation (write_mu): never reused while the collection is open, so a pass
    // that fails after a MANIFEST naming its files took their names (rename done, directory fsync
    // failed) cannot have a later pass overwrite or remove them. Open starts past every named one.
    // Generation 1 is a merged segment's own first file (merge_pass: its documents deleted while it
    // was built), so these start at 2: a flush's capture of that segment's deletes once took
    // generation 1 too, wrote over the segment's own file, named it and then removed it as the file
    // it replaced, and the next open found MANIFEST naming a missing file (session 21's crash test).
    std::uint64_t next_del_gen = 2;
    std::optional<storage::WalWriter> wal;
    std::vector<WalFile> wal_files;  // ascending first_seq; the last is `wal`
    bool closed = false;
    std::atomic<bool> log_unusable{false};  // mirrors wal_failed, for stats() (which takes no lock)
    std::optional<Error> wal_failed;  // a failed group could not be cut off the log: no more writes
    std::shared_ptr<Memtable> mem;    // small batches; frozen into a segment at capacity (write_mu)
    std::size_t mem_live = 0;         // live documents in `mem` (write_mu)
    bool prefreezing = false;         // a prefreeze_memtable() is under way (write_mu)
    bool deferred_compaction = false;  // the last kAll pass flushed alone, deferring persisted work (write_mu)
    std::set<std::uint64_t> merging;   // segments a running merge pass took as sources (write_mu)

    // Group commit: writers queue here; one leader appends the queue, fsyncs once, wakes the rest.
    std::mutex commit_mu;
    std::vector<PendingWrite*> commit_queue;
    bool commit_leader = false;
    std::size_t last_group_size = 0;       // commit_mu: writers in the previous group
    bool gathering = false;                // commit_mu: a leader waits (commit_delay_us) for its group
    std::size_t gather_target = 0;         // commit_mu: the queue length it waits for
    std::condition_variable gather_cv;     // with commit_mu: the queue reached gather_target
    std::atomic<std::uint64_t> wal_syncs{0};
    std::atomic<std::uint64_t> writes{0};
    std::atomic<std::size_t> writes_waiting{0};
    // Write stall: in-memory segments as of the last publish, and writers waiting for merges to cut them.
    std::atomic<std::size_t> memory_segments{0};
    std::atomic<std::uint64_t> write_stalls{0};
    std::mutex stall_mu;
    std::condition_variable stall_cv;  // with stall_mu: notified when memory_segments drops below the limit
    std::atomic<bool> closing{false};  // close() has begun: stalled writers stop waiting
    std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();

    mutable std::mutex snap_mu;
    std::shared_ptr<const Snapshot> snapshot = std::make_shared<Snapshot>();

    // patch(): a read-merge-write holds the stripes of its ids (hash of the id), in ascending order, so
    // patches of the same id are serialised while patches of different ids commit in one group.
    // A patch holds its stripes until its write is durable (the group's fsync), so two patches of
    // different ids sharing a stripe wait for each other's commit. 1,024 stripes (40 KiB per collection)
    // against 64: under issue 10's mixed load (5-id patches, about 6 in flight) a patch met a held
    // stripe about a third of the time with 64; patch p50 30.3-30.8 -> 26.8-28.0 ms and p99 82.6-82.9 ->
    // 63.8-65.1 ms in one interleaved run (docs/collections.md).
    static constexpr std::size_t kPatchStripes = 1024;
    std::array<std::mutex, kPatchStripes> patch_mu;
    // Merge lanes (merge.cpp): the flush lane (thread quiver-merge) persists in-memory segments and
    // advances the checkpoint; the compaction lane (thread quiver-compact) rewrites and merges
    // persisted segments. flush() and optimize() hold both mutexes, always merge_mu first.
    std::mutex merge_mu;    // the flush lane, flush(), optimize()
    std::mutex compact_mu;  // the compaction lane, flush(), optimize()
    std::mutex stop_mu;
    std::condition_variable stop_cv;
    bool stop = false;
    std::thread merger;
    std::thread compactor;
    std::atomic<std::uint64_t> merges{0};
    std::atomic<std::uint64_t> merge_failures{0};
    std::atomic<std::uint64_t> recovered_tail_bytes{0};    // torn log tails dropped at open
    std::atomic<std::uint64_t> recovered_tail_records{0};  // partial records among them
    mutable std::mutex error_mu;
    std::string last_merge_error;  // guarded by error_mu

    std::shared_ptr<const Snapshot> current() const {
        std::lock_guard lock(snap_mu);
        return snapshot;
    }
    void publish();  // requires write_mu
    /// Before a write (no lock held): waits, at most `max_stall_ms`, while the background merger is
    /// `stall_memory_segments` or more in-memory segments behind.
    void stall_if_merges_behind();
    /// Queues `w`, then either waits for a leader to commit it or leads a group. Returns w.status.
    Status commit(PendingWrite& w);
    /// Requires write_mu. Returns true when the memtable is due to be frozen and the caller (the group's
    /// leader, after waking its group and without any lock) should call prefreeze_memtable().
    bool commit_group(const std::vector<PendingWrite*>& group);
    /// Builds the segment of the memtable's current prefix outside the writer lock, then, under it,
    /// swaps it in: the segment (with the deletes made meanwhile) replaces the prefix, and the slots
    /// appended meanwhile move to a new memtable. Writers go on during the build; a merge that froze
    /// the memtable meanwhile makes it give up. One at a time (`prefreezing`).
    void prefreeze_memtable();
    /// Turns the memtable into an in-memory segment and starts an empty one of at least
    /// max(memtable_docs, next_capacity) slots; requires write_mu. Returns the new segment's id, or 0
    /// when the memtable had no live document.
    Result<std::uint64_t> freeze_memtable(std::size_t next_capacity = 0);
    Status open_wal_after(std::uint64_t seq);  // requires write_mu
    /// Replaces MANIFEST; `*renamed` tells whether the new file took the name (even if the directory
    /// fsync then failed, when either version may be the one on disk after a crash).
    Status write_manifest(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& persisted, bool* renamed);
    /// A log writer that may take the next record (requires write_mu): after a failed group closed the
    /// log (cut back to `last_seq`), opens a new one; fails once a cut failed (read-only until reopened).
    Status ensure_wal();
    /// Marks the live version of `id` (if any) deleted. Requires write_mu. Returns whether one existed.
    /// `seq` is the deleting write's sequence number (memtable slots record it).
    /// With `as_of`, only a live version written at or before that sequence number is deleted.
    bool delete_live(const std::string& id, DeleteDelta& changed, std::uint64_t seq = 0,
                     std::uint64_t as_of = UINT64_MAX);
    void apply_changed(DeleteDelta& changed);
    /// Sets e.deleted to `deleted` and advances its statistics version.
    static void set_deleted(SegEntry& e, DeleteSet deleted);
    /// What a merge pass may take. kFlush: the in-memory segments and the memtable (and the newest
    /// persisted segment whose graphs the flush continues), with the log rotated and the checkpoint
    /// advanced to what they cover. kCompact: persisted segments only (rewrites of segments with too
    /// many deleted documents, merges of too many segments); the log and the checkpoint stay. kAll:
    /// both in one pass (flush() and optimize(), which hold both lanes' mutexes). Two passes of
    /// different lanes run at once on disjoint sources (`merging`).
    enum class MergeLane { kAll, kFlush, kCompact };
    /// One merge pass; `all` merges every segment into one. Sets *did_work. A failure is logged to
    /// stderr and counted (`merge_failures`), and leaves the previous state intact.
    Status merge_once(MergeLane lane, bool force_flush, bool all, bool* did_work);
    /// The background flush lane freezes a memtable of at most this many documents under the writer
    /// lock; a larger one is built outside it first (merge_pass).
    static constexpr std::size_t kLockedFreezeDocs = 64;
    Status merge_pass(MergeLane lane, bool force_flush, bool all, bool* did_work);
    void merger_loop(MergeLane lane);
    /// Deletes `ids` in one durable write; with `as_of` (delete by filter), as kRecordDeleteAsOf.
    Result<std::size_t> remove_ids(const std::vector<std::string>& ids, std::uint64_t as_of = UINT64_MAX);
};

/// search.cpp: one search over `snap` (the contract of Collection::search).
Result<std::vector<SearchHit>> search_snapshot(const Collection::Impl& impl, const Snapshot& snap,
                                               const SearchRequest& request,
                                               SearchExplain* explain = nullptr);

/// A live document of a snapshot: (source, see Snapshot, local slot).
struct LiveRef {
    std::size_t seg = 0;
    std::uint32_t local = 0;
};
/// query_ops.cpp: up to `limit` live documents of `snap` matching `filter` (nullptr = all) with ids
/// greater than `after` (bytewise; "" = from the first), in id order. With `budget`, each document the
/// filter tests is charged its node count; the walk stops short once the budget is exceeded (the caller
/// checks `budget->status()`).
std::vector<LiveRef> live_in_id_order(const Snapshot& snap, const Filter* filter, std::string_view after,
                                      std::size_t limit, FilterBudget* budget = nullptr);

// Files of a collection directory (collection.cpp); repair.cpp uses them too.
inline constexpr std::uint8_t kRecordUpsert = 1;
inline constexpr std::uint8_t kRecordDelete = 2;
/// Delete by filter: u64 as_of, then the ids. An id is deleted only if its live version was written at
/// or before sequence number `as_of` (the snapshot the filter was evaluated on), so a document rewritten
/// meanwhile keeps its new version, live and on replay alike.
inline constexpr std::uint8_t kRecordDeleteAsOf = 3;
struct Manifest {
    Schema schema;
    std::uint64_t next_seg_id = 1;
    std::uint64_t checkpoint_seq = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> segments;  // (id, delete generation)
};
/// Reads `dir/MANIFEST`; any damage (or a missing file) is kDataLoss naming it.
Result<Manifest> read_manifest(const std::string& dir);
/// Replaces `dir/MANIFEST` atomically; `*renamed` as in FileWriter::renamed().
Status write_manifest_file(const std::string& dir, const Manifest& m, bool* renamed = nullptr);
/// Reads a delete file for a segment of `n` documents; damage is kDataLoss naming it.
Result<DeleteSet> read_deletes(const std::string& path, std::size_t n);
/// Writes a delete file for a segment of `n` documents (format v2: a roaring bitmap).
Status write_delete_file(const std::string& path, const DeleteSet& set, std::size_t n);
/// Maps kNotFound / kInvalidArgument of a file MANIFEST names to kDataLoss naming it.
Error as_data_loss(const Error& e, const std::string& path, std::string_view what);

std::string wal_path(const std::string& dir, std::uint64_t first_seq);
std::string del_path(const std::string& dir, std::uint64_t seg, std::uint64_t gen);

}  // namespace quiver::engine
