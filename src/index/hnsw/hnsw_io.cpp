// HnswIndex persistence. Payload of an 'HNSW' file (docs/formats.md); version 3 = version 1 (float32)
// or 2 (codes) with a section table: the level-0 records and the float vectors carry their own CRCs,
// checked with the level-0 links on first use (or at open with HnswOpenOptions::verify):
//   u64 dim | u32 metric | u32 coded | u64 M | u64 ef_construction | u64 seed | u64 count
//   u64 num_deleted | i64 max_level | u64 entry | u64 stride
//   [coded = 1 only, version 2: the codec (Codec::save)]
//   (align 64) level-0 records [count * stride]             <- mapped in place by open()
//   u64 labels[count] | u8 levels[count] | u8 deleted[count]
//   (align 8) u64 upper_offset[count] | u64 upper_words | u32 upper[upper_words]
//   u64 n_ids | n_ids x (u64 len, bytes)                     <- optional external ids
//   [coded = 1 only: (align 64) f32 vectors[count * dim]]    <- mapped in place by open()
#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "index/hnsw/hnsw_graph.h"

namespace quiver::index {

detail::OwnedFd::~OwnedFd() {
    if (fd >= 0) ::close(fd);
}

namespace {
constexpr std::uint32_t kHnswCodedVersion = 2;      // graphs on codes (HnswParams::codec), one CRC
constexpr std::uint32_t kHnswSectionedVersion = 3;  // either, with per-section CRCs (written since)
constexpr std::uint32_t kLevel0Section = storage::fourcc("L0RC");
constexpr std::uint32_t kVectorSection = storage::fourcc("VECS");
}

Status HnswIndex::save(const std::string& path) const {
    const HnswGraph& g = *graph_;
    if (g.coded() && !g.codec->trained()) {
        return failed_precondition("an empty HNSW index on codes has no trained codec to save");
    }
    QUIVER_TRY(verify());  // never re-seal damaged sections under fresh checksums
    QUIVER_ASSIGN_OR_RETURN(storage::FileWriter w,
                            storage::FileWriter::create(path, kHnswFileKind, kHnswSectionedVersion,
                                                        storage::kFlagSections));
    QUIVER_TRY(w.write_pod<std::uint64_t>(g.dim));
    QUIVER_TRY(w.write_pod<std::uint32_t>(static_cast<std::uint32_t>(g.metric)));
    QUIVER_TRY(w.write_pod<std::uint32_t>(g.coded() ? 1 : 0));
    QUIVER_TRY(w.write_pod<std::uint64_t>(g.params.M));
    QUIVER_TRY(w.write_pod<std::uint64_t>(g.params.ef_construction));
    QUIVER_TRY(w.write_pod<std::uint64_t>(g.params.seed));
    QUIVER_TRY(w.write_pod<std::uint64_t>(g.count));
    QUIVER_TRY(w.write_pod<std::uint64_t>(g.num_deleted));
    QUIVER_TRY(w.write_pod<std::int64_t>(g.max_level.load()));
    QUIVER_TRY(w.write_pod<std::uint64_t>(g.entry.load()));
    QUIVER_TRY(w.write_pod<std::uint64_t>(g.stride));
    if (g.coded()) QUIVER_TRY(g.codec->save(w));
    QUIVER_TRY(w.align(64));
    QUIVER_TRY(w.begin_section(kLevel0Section));
    QUIVER_TRY(w.write(g.level0, g.count * g.stride));
    QUIVER_TRY(w.end_section());
    QUIVER_TRY(w.write(g.labels.data(), g.count * sizeof(Label)));
    QUIVER_TRY(w.write(g.levels.data(), g.count));
    QUIVER_TRY(w.write(g.deleted.data(), g.count));
    QUIVER_TRY(w.align(8));
    QUIVER_TRY(w.write(g.upper_offset.data(), g.count * sizeof(std::uint64_t)));
    QUIVER_TRY(w.write_pod<std::uint64_t>(g.upper.size()));
    QUIVER_TRY(w.write_span(std::span<const std::uint32_t>(g.upper)));
    QUIVER_TRY(w.write_pod<std::uint64_t>(external_ids_.size()));
    for (const auto& id : external_ids_) QUIVER_TRY(w.write_string(id));
    if (g.coded()) {
        QUIVER_TRY(w.align(64));
        QUIVER_TRY(w.begin_section(kVectorSection));
        QUIVER_TRY(w.write(g.vec_base, g.count * g.dim * sizeof(float)));
        QUIVER_TRY(w.end_section());
    }
    return w.finish();
}

Result<std::unique_ptr<HnswIndex>> HnswIndex::open(const std::string& path, const HnswOpenOptions& options) {
    auto mapping = std::make_shared<storage::MappedFile>();
    QUIVER_ASSIGN_OR_RETURN(*mapping, storage::MappedFile::open(path));
    std::uint32_t version = 0;
    std::vector<storage::Section> sections;  // checked on first use (DeferredCheck below)
    QUIVER_ASSIGN_OR_RETURN(storage::BinaryReader r, storage::open_payload(*mapping, kHnswFileKind,
                                                                           kHnswSectionedVersion, &version, &sections));
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t dim, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint32_t metric, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint32_t coded, r.read_pod<std::uint32_t>());
    if (coded > 1 || (version < kHnswSectionedVersion && (coded == 1) != (version == kHnswCodedVersion))) {
        return r.corrupt(fmt::format("codes flag {} does not match format version {}", coded, version));
    }
    HnswParams params;
    QUIVER_ASSIGN_OR_RETURN(params.M, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(params.ef_construction, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(params.seed, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t count, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t num_deleted, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(std::int64_t max_level, r.read_pod<std::int64_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t entry, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t stride, r.read_pod<std::uint64_t>());
    if (metric > 2) return r.corrupt(fmt::format("invalid metric {}", metric));
    std::unique_ptr<Codec> codec;
    if (coded) {
        QUIVER_ASSIGN_OR_RETURN(codec, Codec::load(r));
        if (codec->dim() != dim || codec->metric() != static_cast<Metric>(metric) || !codec->trained()) {
            return r.corrupt("the codec does not match the index");
        }
        params.codec = codec->spec();
    }
    auto created = HnswIndex::create(dim, static_cast<Metric>(metric), params);
    if (!created) return r.corrupt("invalid parameters: " + created.error().message());
    std::unique_ptr<HnswIndex> idx = std::move(*created);
    HnswGraph& g = *idx->graph_;
    if (codec) g.codec = std::move(codec);
    if (stride != g.stride) return r.corrupt(fmt::format("record stride {} does not match {}", stride, g.stride));
    if (count > r.remaining() / std::max<std::uint64_t>(stride, 1) || num_deleted > count ||
        count >= std::numeric_limits<std::uint32_t>::max()) {
        return r.corrupt("invalid node count");
    }
    if (count > 0 && (max_level < 0 || max_level > 30 || entry >= count)) {
        return r.corrupt("invalid entry point");
    }
    QUIVER_TRY(r.align(64));
    QUIVER_ASSIGN_OR_RETURN(auto level0, r.read_span<std::byte>(count * stride));
    QUIVER_ASSIGN_OR_RETURN(auto labels, r.read_span<Label>(count));
    QUIVER_ASSIGN_OR_RETURN(auto levels, r.read_span<std::uint8_t>(count));
    QUIVER_ASSIGN_OR_RETURN(auto deleted, r.read_span<std::uint8_t>(count));
    QUIVER_TRY(r.align(8));
    QUIVER_ASSIGN_OR_RETURN(auto upper_offset, r.read_span<std::uint64_t>(count));
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t upper_words, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(auto upper, r.read_span<std::uint32_t>(upper_words));
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t n_ids, r.read_pod<std::uint64_t>());
    if (n_ids != 0 && n_ids != count) return r.corrupt("external id count does not match");
    for (std::uint64_t i = 0; i < n_ids; ++i) {
        QUIVER_ASSIGN_OR_RETURN(std::string id, r.read_string());
        idx->external_ids_.push_back(std::move(id));
    }

    if (coded) {
        QUIVER_TRY(r.align(64));
        QUIVER_ASSIGN_OR_RETURN(auto vectors, r.read_span<float>(count * dim));
        g.vec_stride = dim * sizeof(float);
        if (options.vectors_on_disk) {
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                return Error(ErrorCode::kUnavailable,
                             fmt::format("opening '{}' for vector reads: {}", path, std::strerror(errno)));
            }
            g.disk_fd = std::make_shared<const detail::OwnedFd>(fd);
            g.disk_offset = static_cast<std::uint64_t>(reinterpret_cast<const std::byte*>(vectors.data()) -
                                                       mapping->bytes().data());
            mapping->release(std::as_bytes(vectors));  // never read through the mapping (but by its checksum)
        } else {
            g.vec_base = reinterpret_cast<const std::byte*>(vectors.data());
        }
    }
    if (r.remaining() != 0) return r.corrupt(fmt::format("{} unexpected bytes after the index", r.remaining()));
    g.labels.assign(labels.begin(), labels.end());
    g.levels.assign(levels.begin(), levels.end());
    g.deleted.assign(deleted.begin(), deleted.end());
    g.upper_offset.assign(upper_offset.begin(), upper_offset.end());
    g.upper.assign(upper.begin(), upper.end());
    g.level0 = const_cast<std::byte*>(level0.data());
    if (!coded) g.update_vec_base();
    g.count = count;
    g.capacity = count;
    g.num_deleted = num_deleted;
    g.entry.store(static_cast<std::uint32_t>(entry));
    g.max_level.store(count == 0 ? -1 : static_cast<int>(max_level));

    // Structural validation: a file with a valid checksum can still be hand-crafted; never let a
    // bad link, level or offset reach the search loop. Every check is overflow-safe (no sum or
    // product of file values is formed before it is bounded).
    if (count > 0 && g.levels[entry] != max_level) {
        return r.corrupt(fmt::format("entry point {} has level {}, the graph's top is {}", entry,
                                     g.levels[entry], max_level));
    }
    std::size_t deleted_seen = 0;
    for (std::uint32_t s = 0; s < count; ++s) {
        const int lv = g.levels[s];
        if (lv > max_level) return r.corrupt(fmt::format("node {} has level {} above the top", s, lv));
        if (g.labels[s] == kNoLabel) return r.corrupt(fmt::format("node {} has the reserved no-label value", s));
        const std::uint64_t off = g.upper_offset[s];
        if (off > upper_words || static_cast<std::uint64_t>(lv) > (upper_words - off) / g.upper_block) {
            return r.corrupt(fmt::format("node {} upper links lie outside the arena", s));
        }
        // Upper levels here; level 0 (in the records) is checked with its section, on first use.
        for (int l = 1; l <= lv; ++l) {
            const std::uint32_t* ln = g.links(s, l);
            if (ln[0] > g.max_links(l)) return r.corrupt(fmt::format("node {} has {} links", s, ln[0]));
            for (std::uint32_t i = 0; i < ln[0]; ++i) {
                const std::uint32_t t = ln[1 + i];
                // A link on level l must point at a node that has level l (search reads its list there).
                if (t >= count || g.levels[t] < l) {
                    return r.corrupt(fmt::format("node {} links to {} on level {}", s, t, l));
                }
            }
        }
        if (g.deleted[s] > 1) return r.corrupt(fmt::format("node {} has deleted flag {}", s, g.deleted[s]));
        if (g.deleted[s]) {
            ++deleted_seen;
        } else {
            g.slot_of[to_int(g.labels[s])] = s;
        }
    }
    if (deleted_seen != num_deleted || g.slot_of.size() != count - num_deleted) {
        return r.corrupt("deleted-node count does not match the labels");
    }
    g.mapping = mapping;
    g.locks.resize(count);
    g.scratch_pool.reset(count);
    // First use (search, add, remove, save, ...; or now with options.verify): the sections' CRCs, then
    // the level-0 links, then the per-code terms the walk reads. Every use runs HnswIndex::verify() first,
    // so nothing reads the records before this passed, and nothing changed the graph since open.
    g.deferred = std::make_unique<storage::DeferredCheck>([gp = &g, mapping, sections = std::move(sections)]() -> Status {
        HnswGraph& gr = *gp;
        for (const auto& sec : sections) {
            // Vectors left on disk are read with pread only: their check drops what it mapped every 64 MiB.
            QUIVER_TRY(sec.name == kVectorSection && gr.on_disk() ? storage::verify_section_released(*mapping, sec)
                                                                  : storage::verify_section(*mapping, sec));
        }
        for (std::uint32_t s = 0; s < gr.count; ++s) {
            const std::uint32_t* ln = gr.links(s, 0);
            if (ln[0] > gr.max_links(0)) {
                return data_loss(fmt::format("'{}': node {} has {} links on level 0", mapping->path(), s, ln[0]));
            }
            for (std::uint32_t i = 0; i < ln[0]; ++i) {
                if (ln[1 + i] >= gr.count) {
                    return data_loss(fmt::format("'{}': node {} links to {} on level 0", mapping->path(), s,
                                                 ln[1 + i]));
                }
            }
        }
        gr.compute_code_terms(0);
        return {};
    });
    if (options.verify) QUIVER_TRY(idx->verify());
    return idx;
}

}  // namespace quiver::index
