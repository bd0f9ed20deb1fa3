// Background merging: persists in-memory segments, reclaims deleted documents, advances the WAL
// checkpoint and replaces MANIFEST. See collection.h for the locking contract.
#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "engine/collection_state.h"

namespace quiver::engine {


namespace {

/// Whether a merge that takes a persisted segment as its base continues every vector index of the
/// schema instead of rebuilding it: every vector field is an HNSW graph over whole documents (not
/// chunks), and there is no multi_vector field. Then adding the newest persisted segment to a flush
/// costs the rewrite of its text indexes and document store, not of its graphs.
bool continues_graphs(const Schema& schema) {
    bool any = false;
    for (const FieldSpec& f : schema.fields) {
        if (f.type == FieldType::kMultiVector) return false;
        if (f.type != FieldType::kVector) continue;
        if (f.index != VectorIndexKind::kHnsw || chunked_vectors(f)) return false;
        any = true;
    }
    return any;
}

/// Of a schema whose graphs a merge continues: whether they also drop the base's deleted documents,
/// i.e. every vector field stays float32 (Segment::build rebuilds a quantized graph whose base has
/// deleted documents instead; a memory budget may pick codes).
bool drops_deleted(const Schema& schema) {
    return std::none_of(schema.fields.begin(), schema.fields.end(), [](const FieldSpec& f) {
        return f.type == FieldType::kVector && (f.quantization.enabled() || f.memory_budget != 0);
    });
}

struct Source {
    std::uint64_t id;
    std::shared_ptr<Segment> seg;
    DeleteSet deleted;
    bool persisted;
};

/// A persisted segment outside the merge whose deletes a flush makes durable: its delete set as of
/// the plan (which fixes the checkpoint), written to generation `gen` before the commit.
struct DeleteCapture {
    std::uint64_t id;
    std::uint64_t gen;
    DeleteSet deleted;
    std::size_t size;  // the segment's documents
};

}  // namespace

Status Collection::Impl::merge_once(MergeLane lane, bool force_flush, bool all, bool* did_work) {
    Status st = merge_pass(lane, force_flush, all, did_work);
    if (!st) {
        merge_failures.fetch_add(1);
        {
            std::lock_guard lock(stall_mu);  // writers stalled behind merges stop waiting
            stall_cv.notify_all();
        }
        std::fprintf(stderr, "quiver: merge in collection '%s' failed (inputs kept): %s\n", dir.c_str(),
                     st.error().to_string().c_str());
        std::lock_guard lock(error_mu);
        last_merge_error = st.error().to_string();
    }
    return st;
}

Status Collection::Impl::merge_pass(MergeLane lane, bool force_flush, bool all, bool* did_work) {
    *did_work = false;
    if (options.read_only) return failed_precondition("collection '" + dir + "' is open read-only");
    std::vector<Source> sources;
    std::vector<DeleteCapture> captured;
    std::uint64_t start_seq = 0;
    std::uint64_t new_id = 0;
    std::size_t live_docs = 0;  // the collection's, for vector memory budgets
    // The sources this pass took, released when it ends (committed or not) for the other lane.
    struct Claim {
        Impl& impl;
        std::vector<std::uint64_t> ids;
        ~Claim() {
            if (ids.empty()) return;
            std::lock_guard lock(impl.write_mu);
            for (const std::uint64_t id : ids) impl.merging.erase(id);
        }
    } claim{*this, {}};
    const bool flushes = lane != MergeLane::kCompact;    // takes in-memory segments, moves the checkpoint
    const bool compacts = lane != MergeLane::kFlush;     // takes persisted segments for their own sake
    // Planned under the writer lock; planned a second time after the flush lane built the memtable's
    // segment outside it (below).
    for (bool prefrozen = false;; prefrozen = true) {
        std::unique_lock lock(write_mu);
        if (closed) return ok_status();
        std::size_t mem_docs = 0;
        std::size_t mem_segs = 0;
        std::vector<std::pair<std::size_t, std::uint64_t>> persisted;  // (live docs, id)
        std::vector<std::uint64_t> chosen;
        bool dirty_deletes = false;
        for (const auto& [id, e] : segs) {
            dirty_deletes = dirty_deletes || e.dirty;
            if (!e.persisted) {
                mem_docs += e.seg->size();
                ++mem_segs;
                if (flushes) chosen.push_back(id);
            } else if (!compacts || merging.count(id) != 0) {
                continue;  // the flush lane takes persisted segments only to continue one (below)
            } else {
                const std::size_t live = e.seg->size() - e.deleted.count();
                if (all || live == 0 ||
                    static_cast<double>(e.deleted.count()) > options.max_deleted_ratio * e.seg->size()) {
                    chosen.push_back(id);
                } else {
                    persisted.emplace_back(live, id);
                }
            }
        }
        if (mem && mem->size() > 0) {  // the memtable counts as one in-memory segment
            mem_docs += mem->size();
            ++mem_segs;
        }
        const bool idle = std::chrono::steady_clock::now() - last_write > std::chrono::seconds(1);
        const bool log_large = wal && wal->bytes() > (64u << 20);
        const bool flush_due = (mem_segs > 0 && (force_flush || all || idle || mem_docs >= options.flush_docs ||
                                                 mem_segs >= 8)) ||
                               (dirty_deletes && (force_flush || idle)) || log_large;
        const bool flush_now = flushes && flush_due;
        // Too many persisted segments: merge the smallest down to half the limit.
        if (persisted.size() > options.max_segments) {
            std::sort(persisted.begin(), persisted.end());
            const std::size_t take = persisted.size() - options.max_segments / 2;
            for (std::size_t i = 0; i < take; ++i) chosen.push_back(persisted[i].second);
        }
        bool persisted_work = std::any_of(chosen.begin(), chosen.end(), [&](std::uint64_t id) { return segs.at(id).persisted; });
        if (!flush_now && !persisted_work) return ok_status();
        if (lane == MergeLane::kAll && flush_now && mem_segs > 0 && persisted_work && !all && !deferred_compaction) {
            // Flush first, alone: persisting the in-memory segments (which every search pays for, and
            // which the write stall counts) must not wait for the rewrite of a large persisted segment.
            // The next pass takes the persisted work (never deferred twice in a row, so sustained writes
            // cannot starve it). Empty persisted segments go now (nothing to build).
            deferred_compaction = true;
            chosen.erase(std::remove_if(chosen.begin(), chosen.end(),
                                        [&](std::uint64_t id) {
                                            const SegEntry& e = segs.at(id);
                                            return e.persisted && e.seg->size() > e.deleted.count();
                                        }),
                         chosen.end());
            persisted_work = false;
        } else if (lane == MergeLane::kAll) {
            deferred_compaction = false;
        }
        if (all && chosen.size() == 1 && mem_segs == 0 && segs.at(chosen[0]).deleted.empty()) return ok_status();
        // A flush continues the newest persisted segment when its graphs can grow instead of starting
        // a new segment whose graphs a later merge would insert all over again (see
        // continues_graphs): the segment is below flush_docs, and the flushed documents are at least
        // half its size (so its text indexes are rewritten at most about twice per document, and a
        // trickle of idle flushes does not rewrite it each time). Its deleted documents leave its
        // graphs (drops_deleted; at most half of it, as for a merge's base); quantized graphs are
        // continued only without deleted documents. Under writes spread over the collection, the
        // newest segment has deletes before the next flush: until session 19 each flush then started
        // a segment of its own, and while the compaction lane rewrote the large segment a dozen
        // small segments piled up, each walked by every vector search.
        if (flushes && mem_segs > 0 && !all && continues_graphs(schema)) {
            const bool drops = drops_deleted(schema);
            for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
                const SegEntry& e = it->second;
                if (!e.persisted) continue;
                const bool taken = std::find(chosen.begin(), chosen.end(), it->first) != chosen.end();
                const bool claimed = merging.count(it->first) != 0;  // by the compaction lane
                const bool deletes_ok = e.deleted.empty() || (drops && e.deleted.count() * 2 <= e.seg->size());
                if (!taken && !claimed && deletes_ok && e.seg->size() < options.flush_docs &&
                    mem_docs * 2 >= e.seg->size()) {
                    chosen.push_back(it->first);
                }
                break;  // only the newest persisted segment
            }
        }
        // The checkpoint below covers every record up to last_seq: the memtable's documents must be
        // among the sources, as a segment. The background flush lane first builds the segment of the
        // memtable's current prefix outside the writer lock (prefreeze_memtable, as a writer does at
        // three quarters full) and plans again, so that only the documents written meanwhile are
        // frozen under it: a freeze of the whole memtable under the lock held every writer for 7-8 ms
        // on average and up to 22 ms at each flush under issue 10's mixed load (docs/collections.md).
        if (lane == MergeLane::kFlush && !prefrozen && !prefreezing && mem && mem->size() > kLockedFreezeDocs) {
            prefreezing = true;
            lock.unlock();
            prefreeze_memtable();
            continue;
        }
        if (flushes) {
            QUIVER_ASSIGN_OR_RETURN(const std::uint64_t frozen, freeze_memtable());
            if (frozen != 0) chosen.push_back(frozen);
            if (mem_segs > 0) publish();
            // Rotate the log: everything up to start_seq is covered by this merge's commit.
            start_seq = last_seq;
            // (No open log: a failed group closed it, and the next write opens one after last_seq.)
            if (wal && wal->bytes() > storage::kWalHeaderBytes) QUIVER_TRY(open_wal_after(last_seq));
        }
        std::sort(chosen.begin(), chosen.end());
        merging.insert(chosen.begin(), chosen.end());
        claim.ids = chosen;
        for (std::uint64_t id : chosen) {
            const SegEntry& e = segs.at(id);
            sources.push_back({id, e.seg, e.deleted, e.persisted});
        }
        // A flush moves the checkpoint to start_seq, so every delete up to it must be in a delete file
        // the new MANIFEST names: those of the other persisted segments are taken now, with the
        // checkpoint, and written before the commit, outside the writer lock (writing a dozen of them
        // under it held every writer for 9-12 ms per flush, up to 94 ms, under issue 10's mixed load;
        // docs/collections.md). Deletes after start_seq stay in the log and the segment stays dirty.
        // Each takes a generation never used before (next_del_gen, from 2: 1 is a merged segment's
        // own first file), whatever becomes of this pass.
        if (flushes) {
            for (const auto& [id, e] : segs) {
                if (!e.persisted || !e.dirty || std::binary_search(chosen.begin(), chosen.end(), id)) continue;
                captured.push_back({id, next_del_gen++, e.deleted, e.seg->size()});
            }
        }
        new_id = next_seg_id++;
        for (const auto& [id, e] : segs) live_docs += e.seg->size() - e.deleted.count();
        break;
    }
    *did_work = true;
    if (lane == MergeLane::kCompact && options.compact_hook) options.compact_hook();
    // Build outside the locks: searches and writes continue.
    // The largest persisted input goes first, without its deleted documents: the merged segment's
    // graphs continue its graphs instead of being rebuilt (a tiered merge would otherwise re-insert
    // every vector each time its segment is merged, and a compaction of a segment a third deleted
    // would rebuild the graphs of the two thirds kept). Its deleted documents' nodes are dropped from
    // the copy (HnswIndex::drop, consolidated; measured against rebuilds at a third deleted per round);
    // an input more than half deleted is left to a full rebuild.
    SegmentBuildOptions build;
    // Background flushes build with merge_threads, background compactions with compact_threads;
    // flush() and optimize(), which a caller waits for, with build_threads.
    if (force_flush || all) {
        build.threads = options.build_threads;
    } else {
        const std::size_t lane_threads = lane == MergeLane::kCompact ? options.compact_threads : options.merge_threads;
        build.threads = std::max<std::size_t>(lane_threads, 1);
    }
    build.collection_documents = live_docs;
    std::vector<std::size_t> order(sources.size());
    for (std::size_t si = 0; si < sources.size(); ++si) order[si] = si;
    {
        std::size_t best = sources.size();
        for (std::size_t si = 0; si < sources.size(); ++si) {
            const Source& src = sources[si];
            if (!src.persisted || src.seg->size() == 0 || src.deleted.count() * 2 > src.seg->size()) continue;
            if (best == sources.size() || src.seg->size() - src.deleted.count() >
                                              sources[best].seg->size() - sources[best].deleted.count()) {
                best = si;
            }
        }
        if (best != sources.size()) {
            std::rotate(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(best),
                        order.begin() + static_cast<std::ptrdiff_t>(best) + 1);
            build.base = sources[best].seg.get();
            build.base_dir = dir;
            build.base_removed = sources[best].deleted.merged().to_vector();
        }
    }
    std::vector<Document> docs;
    std::vector<std::uint64_t> seqs;
    std::vector<std::pair<std::size_t, std::uint32_t>> origin;  // (source index, local)
    for (const std::size_t si : order) {
        const Source& src = sources[si];
        build.text_sources.push_back({src.seg.get(), src.deleted.merged().to_vector()});
        QUIVER_ASSIGN_OR_RETURN(std::vector<Document> stored, src.seg->documents());
        for (std::uint32_t i = 0; i < src.seg->size(); ++i) {
            if (src.deleted.contains(i)) continue;
            docs.push_back(std::move(stored[i]));
            seqs.push_back(src.seg->seq(i));
            origin.emplace_back(si, i);
        }
    }
    // On failure before the MANIFEST names them: the new segment and the delete files written.
    std::size_t captured_written = 0;
    auto discard_written = [&] {
        std::error_code ec;
        std::filesystem::remove_all(dir + "/" + Segment::dir_name(new_id), ec);
        std::filesystem::remove(del_path(dir, new_id, 1), ec);
        for (std::size_t i = 0; i < captured_written; ++i) {
            std::filesystem::remove(del_path(dir, captured[i].id, captured[i].gen), ec);
        }
    };
    std::shared_ptr<Segment> merged;
    if (!docs.empty()) {
        QUIVER_ASSIGN_OR_RETURN(merged, Segment::build(new_id, schema, std::move(docs), std::move(seqs), build));
        Status st = merged->persist(dir);
        if (st) st = merged->reopen_on_disk_vectors(dir);
        if (!st) {
            discard_written();
            return st;
        }
        // The exact text lengths that the BM25 statistics of its deleted documents (DeadStats) read
        // on the segment's first delete: one pass over each text field's postings, taken here, outside
        // the locks, rather than by the first search after that delete while every other search of
        // the segment waits for it (32 ms for the 100,000-document segment of issue 10's load, on an
        // idle core). Under spread-out writes every merged segment soon has a delete.
        for (std::size_t fi = 0; fi < schema.fields.size(); ++fi) (void)merged->text_lengths(fi);
    }
    for (const DeleteCapture& c : captured) {
        Status st = write_delete_file(del_path(dir, c.id, c.gen), c.deleted, c.size);
        ++captured_written;  // a failed write may leave its file (or its temporary) behind
        if (!st) {
            discard_written();
            return st;
        }
    }
    // Commit: brief, under the writer lock.
    std::unique_lock lock(write_mu);
    if (closed) return ok_status();
    Bitmap deleted_during;  // merged documents deleted while the merge ran
    for (std::size_t j = 0; j < origin.size(); ++j) {
        const auto& [si, local] = origin[j];
        if (segs.at(sources[si].id).deleted.contains(local)) deleted_during.add(static_cast<std::uint32_t>(j));
    }
    const DeleteSet merged_deleted(std::move(deleted_during));
    std::vector<std::string> obsolete;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> manifest;
    auto is_source = [&](std::uint64_t id) {
        return std::any_of(sources.begin(), sources.end(), [&](const Source& s) { return s.id == id; });
    };
    auto capture_of = [&](std::uint64_t id) -> const DeleteCapture* {
        for (const DeleteCapture& c : captured) {
            if (c.id == id) return &c;
        }
        return nullptr;
    };
    // The other persisted segments keep their delete files, or take the ones written above. A
    // compaction writes none: it does not move the checkpoint, so the log still holds every delete
    // since the files named now (the next flush writes them).
    for (auto& [id, e] : segs) {
        if (!e.persisted || is_source(id)) continue;
        const DeleteCapture* c = capture_of(id);
        manifest.emplace_back(id, c != nullptr ? c->gen : e.del_gen);
    }
    Status st;
    const std::size_t merged_dead = merged_deleted.count();
    if (merged && merged_dead > 0) {
        st = write_delete_file(del_path(dir, new_id, 1), merged_deleted, merged->size());
    }
    if (st && merged) manifest.emplace_back(new_id, merged_dead > 0 ? 1 : 0);
    std::sort(manifest.begin(), manifest.end());
    const std::uint64_t old_checkpoint = checkpoint_seq;
    bool manifest_renamed = false;
    if (st) {
        // A compaction covers no log record of its own: the checkpoint stays the last flush's.
        if (flushes) checkpoint_seq = start_seq;
        st = write_manifest(manifest, &manifest_renamed);
        if (!st) checkpoint_seq = old_checkpoint;
    }
    if (!st && manifest_renamed) {
        // The new MANIFEST took the name but its directory entry may not be durable: after a crash
        // either version can be the one read, so every file either names must stay. The next open
        // removes whichever files the surviving MANIFEST does not name.
        return st;
    }
    if (!st) {
        discard_written();
        return st;
    }
    // The new state is durable: switch to it and remove what it replaced. A captured segment that a
    // compaction replaced meanwhile was not named; one deleted from since the capture stays dirty.
    for (const DeleteCapture& c : captured) {
        const auto it = segs.find(c.id);
        if (it == segs.end()) {
            obsolete.push_back(del_path(dir, c.id, c.gen));
            continue;
        }
        SegEntry& e = it->second;
        if (e.del_gen > 0) obsolete.push_back(del_path(dir, c.id, e.del_gen));
        e.del_gen = c.gen;
        e.dirty = e.deleted.count() != c.deleted.count();
    }
    for (const Source& src : sources) {
        const SegEntry& e = segs.at(src.id);
        if (e.persisted) {
            obsolete.push_back(dir + "/" + Segment::dir_name(src.id));
            if (e.del_gen > 0) obsolete.push_back(del_path(dir, src.id, e.del_gen));
        }
        segs.erase(src.id);
    }
    if (merged) {
        SegEntry e;
        e.seg = merged;
        set_deleted(e, merged_deleted);
        e.persisted = true;
        e.del_gen = merged_dead > 0 ? 1 : 0;
        segs.emplace(new_id, std::move(e));
    }
    while (wal_files.size() > 1 && wal_files[1].first_seq <= checkpoint_seq + 1) {
        obsolete.push_back(wal_files.front().path);
        wal_files.erase(wal_files.begin());
    }
    publish();
    // The replaced files go after the writer lock is released: unlinking them took 4 ms (flushes) and
    // 10 ms (compactions) on average under it, with writers waiting (issue 10's mixed load,
    // docs/collections.md). Nothing names them any more (a crash before they are gone leaves files
    // the next open removes), and their names are never reused (ids, generations and log sequence
    // numbers only grow). stats() may show the merge a moment before its files are gone; `merges`
    // counts it once they are, and flush() and optimize() return after it.
    lock.unlock();
    std::error_code ec;
    for (const auto& path : obsolete) std::filesystem::remove_all(path, ec);
    merges.fetch_add(1);
    return ok_status();
}

void Collection::Impl::merger_loop(MergeLane lane) {
    // Merges run at the requests' priority (as Lucene's merge threads and RocksDB's default pools): a
    // merger at a lower nice value starved under sustained load (a few percent of a core against busy
    // request threads), in-memory segments piled up and every search paid for them. Writers are held back
    // instead when merges fall behind (stall_memory_segments).
    // Named, so profiles (perf report --sort comm) and top -H tell merges from requests.
    ::pthread_setname_np(::pthread_self(), lane == MergeLane::kCompact ? "quiver-compact" : "quiver-merge");
    auto wait = std::chrono::milliseconds(200);
    while (true) {
        {
            std::unique_lock lock(stop_mu);
            stop_cv.wait_for(lock, wait, [&] { return stop; });
            if (stop) return;
        }
        if (options.merge_hook) options.merge_hook();
        std::lock_guard merge_lock(lane == MergeLane::kCompact ? compact_mu : merge_mu);
        bool did_work = false;
        // A failed merge leaves the previous state intact (and is logged and counted); it is retried,
        // backing off up to 30 s so a full disk is not hammered.
        const bool ok = merge_once(lane, false, false, &did_work).ok();
        wait = ok ? std::chrono::milliseconds(200) : std::min<std::chrono::milliseconds>(wait * 2, std::chrono::seconds(30));
    }
}

Status Collection::flush() {
    std::lock_guard merge_lock(impl_->merge_mu);
    std::lock_guard compact_lock(impl_->compact_mu);
    for (int pass = 0; pass < 64; ++pass) {
        bool did_work = false;
        QUIVER_TRY(impl_->merge_once(Impl::MergeLane::kAll, true, false, &did_work));
        if (!did_work) return ok_status();
    }
    return ok_status();
}

Status Collection::optimize() {
    std::lock_guard merge_lock(impl_->merge_mu);
    std::lock_guard compact_lock(impl_->compact_mu);
    bool did_work = false;
    return impl_->merge_once(Impl::MergeLane::kAll, true, true, &did_work);
}

CollectionStats Collection::stats() const {
    // From the published snapshot and atomics: never waits for the writer lock (held across fsyncs).
    CollectionStats s = impl_->current()->stats;
    s.merges = impl_->merges.load();
    s.writes = impl_->writes.load(std::memory_order_relaxed);
    s.wal_syncs = impl_->wal_syncs.load(std::memory_order_relaxed);
    s.writes_waiting = impl_->writes_waiting.load(std::memory_order_relaxed);
    s.write_stalls = impl_->write_stalls.load(std::memory_order_relaxed);
    s.merge_failures = impl_->merge_failures.load();
    s.recovered_tail_bytes = impl_->recovered_tail_bytes.load();
    s.recovered_tail_records = impl_->recovered_tail_records.load();
    s.wal_failed = impl_->log_unusable.load();
    {
        std::lock_guard elock(impl_->error_mu);
        s.last_merge_error = impl_->last_merge_error;
    }
    return s;
}

}  // namespace quiver::engine
