// CodeIndex persistence. Payload of a 'CIDX' file, version 1 or 2 (docs/formats.md; version 2 has a
// section table: the float vectors carry their own CRC, checked on first use):
//   u64 dim | u32 metric | u32 flags (bit 0: float vectors present) | u64 nlist | u64 nprobe | u64 seed
//   u64 train_rows | u64 slots | u64 live
//   codec section (Codec::save)
//   (align 4) f32 centroids[nlist * dim]
//   (align 8) u64 labels[slots] | u8 removed[slots]
//   per list (max(nlist, 1) lists): (align 8) u64 count | u32 slots[count] (IVF only)
//                                    | (align 64) packed codes (codec.packed_bytes(count) bytes)
//   (align 64) f32 vectors[slots * dim]          <- flag bit 0; mapped in place by open(), or read
//                                                   with pread by the rescore (vectors_on_disk)
//   u64 n_ids | n_ids x (u64 len, bytes)         <- optional external ids
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "quiver/index/code_index.h"

namespace quiver::index {
namespace {
constexpr std::uint32_t kCodeIndexVersion = 2;
constexpr std::uint32_t kVectorSection = storage::fourcc("VECS");
constexpr std::uint32_t kFlagVectors = 1;
}  // namespace

struct CodeIndexIo {
    static Status save(const CodeIndex& x, const std::string& path) {
        QUIVER_TRY(x.verify());  // never re-seal a damaged section under a fresh checksum
        QUIVER_ASSIGN_OR_RETURN(storage::FileWriter w,
                                storage::FileWriter::create(path, kCodeIndexFileKind, kCodeIndexVersion,
                                                            storage::kFlagSections));
        const std::uint64_t slots = x.labels_.size();
        QUIVER_TRY(w.write_pod<std::uint64_t>(x.dim_));
        QUIVER_TRY(w.write_pod<std::uint32_t>(static_cast<std::uint32_t>(x.metric_)));
        QUIVER_TRY(w.write_pod<std::uint32_t>(x.has_vectors() ? kFlagVectors : 0));
        QUIVER_TRY(w.write_pod<std::uint64_t>(x.params_.nlist));
        QUIVER_TRY(w.write_pod<std::uint64_t>(x.params_.nprobe));
        QUIVER_TRY(w.write_pod<std::uint64_t>(x.params_.seed));
        QUIVER_TRY(w.write_pod<std::uint64_t>(x.params_.train_rows));
        QUIVER_TRY(w.write_pod<std::uint64_t>(slots));
        QUIVER_TRY(w.write_pod<std::uint64_t>(x.live_));
        QUIVER_TRY(x.codec_->save(w));
        QUIVER_TRY(w.align(4));
        QUIVER_TRY(w.write_span(std::span<const float>(x.centroids_)));
        QUIVER_TRY(w.align(8));
        QUIVER_TRY(w.write_span(std::span<const Label>(x.labels_)));
        QUIVER_TRY(w.write_span(std::span<const std::uint8_t>(x.removed_)));
        for (const auto& l : x.lists_) {
            QUIVER_TRY(w.align(8));
            QUIVER_TRY(w.write_pod<std::uint64_t>(l.count));
            if (x.params_.nlist > 0) QUIVER_TRY(w.write_span(std::span<const std::uint32_t>(l.slots)));
            QUIVER_TRY(w.align(64));
            QUIVER_TRY(w.write_span(std::span<const std::uint8_t>(l.codes)));
        }
        if (x.vectors_ != nullptr) {
            QUIVER_TRY(w.align(64));
            QUIVER_TRY(w.begin_section(kVectorSection));
            QUIVER_TRY(w.write(x.vectors_, slots * x.dim_ * sizeof(float)));
            QUIVER_TRY(w.end_section());
        } else if (x.disk_fd_ >= 0) {  // copied from the open file in chunks, never all in memory
            QUIVER_TRY(w.align(64));
            QUIVER_TRY(w.begin_section(kVectorSection));
            std::vector<char> chunk(1 << 20);
            const std::uint64_t total = slots * x.dim_ * sizeof(float);
            for (std::uint64_t done = 0; done < total;) {
                const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - done));
                const ssize_t got = ::pread(x.disk_fd_, chunk.data(), want, static_cast<off_t>(x.disk_offset_ + done));
                if (got <= 0) return data_loss(fmt::format("reading the float vectors to save '{}' failed", path));
                QUIVER_TRY(w.write(chunk.data(), static_cast<std::size_t>(got)));
                done += static_cast<std::uint64_t>(got);
            }
            QUIVER_TRY(w.end_section());
        }
        QUIVER_TRY(w.write_pod<std::uint64_t>(x.external_ids_.size()));
        for (const auto& id : x.external_ids_) QUIVER_TRY(w.write_string(id));
        return w.finish();
    }

    static Result<std::unique_ptr<CodeIndex>> open(const std::string& path, const CodeIndexOpenOptions& options) {
        auto mapping = std::make_shared<storage::MappedFile>();
        QUIVER_ASSIGN_OR_RETURN(*mapping, storage::MappedFile::open(path));
        std::vector<storage::Section> sections;  // the float vectors: checked on first use
        QUIVER_ASSIGN_OR_RETURN(storage::BinaryReader r, storage::open_payload(*mapping, kCodeIndexFileKind,
                                                                               kCodeIndexVersion, nullptr, &sections));
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t dim, r.read_pod<std::uint64_t>());
        QUIVER_ASSIGN_OR_RETURN(std::uint32_t metric, r.read_pod<std::uint32_t>());
        QUIVER_ASSIGN_OR_RETURN(std::uint32_t flags, r.read_pod<std::uint32_t>());
        CodeIndexParams p;
        QUIVER_ASSIGN_OR_RETURN(p.nlist, r.read_pod<std::uint64_t>());
        QUIVER_ASSIGN_OR_RETURN(p.nprobe, r.read_pod<std::uint64_t>());
        QUIVER_ASSIGN_OR_RETURN(p.seed, r.read_pod<std::uint64_t>());
        QUIVER_ASSIGN_OR_RETURN(p.train_rows, r.read_pod<std::uint64_t>());
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t slots, r.read_pod<std::uint64_t>());
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t live, r.read_pod<std::uint64_t>());
        if (dim == 0 || dim > (1u << 16)) return r.corrupt(fmt::format("invalid dimension {}", dim));
        if (metric > 2) return r.corrupt(fmt::format("invalid metric {}", metric));
        if ((flags & ~kFlagVectors) != 0) return r.corrupt(fmt::format("unknown flags {:#x}", flags));
        if (p.nlist > (1u << 20)) return r.corrupt(fmt::format("invalid nlist {}", p.nlist));
        if (slots > r.remaining() / 9 || live > slots) return r.corrupt("invalid vector count");
        QUIVER_ASSIGN_OR_RETURN(auto codec, Codec::load(r));
        if (codec->dim() != dim) return r.corrupt("codec dimension does not match the index");
        const auto m = static_cast<Metric>(metric);
        if (codec->metric() != (m == Metric::kCosine ? Metric::kInnerProduct : m)) {
            return r.corrupt("codec metric does not match the index");
        }
        p.codec = codec->spec();
        p.keep_vectors = (flags & kFlagVectors) != 0;
        if (p.keep_vectors && p.codec.kind == CodecKind::kNone) return r.corrupt("float codes with float vectors");
        std::unique_ptr<CodeIndex> idx(new CodeIndex(dim, m, p));
        idx->codec_ = std::move(codec);
        idx->lists_.resize(std::max<std::uint64_t>(p.nlist, 1));
        QUIVER_TRY(r.align(4));
        QUIVER_ASSIGN_OR_RETURN(auto cent, r.read_span<float>(p.nlist * dim));
        for (float v : cent) {
            if (!std::isfinite(v)) return r.corrupt("a centroid holds a non-finite value");
        }
        idx->centroids_.assign(cent.begin(), cent.end());
        QUIVER_TRY(r.align(8));
        QUIVER_ASSIGN_OR_RETURN(auto labels, r.read_span<Label>(slots));
        QUIVER_ASSIGN_OR_RETURN(auto removed, r.read_span<std::uint8_t>(slots));
        idx->labels_.assign(labels.begin(), labels.end());
        idx->removed_.assign(removed.begin(), removed.end());
        mapping->release(std::as_bytes(labels));
        mapping->release(std::as_bytes(removed));
        std::vector<std::uint8_t> seen(p.nlist > 0 ? slots : 0);
        std::uint64_t total = 0;
        for (auto& l : idx->lists_) {
            QUIVER_TRY(r.align(8));
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t count, r.read_pod<std::uint64_t>());
            if (count > slots - total) return r.corrupt("list sizes exceed the vector count");
            total += count;
            l.count = count;
            if (p.nlist > 0) {
                QUIVER_ASSIGN_OR_RETURN(auto ls, r.read_span<std::uint32_t>(count));
                for (std::uint32_t s : ls) {
                    if (s >= slots || seen[s]) return r.corrupt("a list entry names an invalid or repeated slot");
                    seen[s] = 1;
                }
                l.slots.assign(ls.begin(), ls.end());
                mapping->release(std::as_bytes(ls));
            }
            QUIVER_TRY(r.align(64));
            QUIVER_ASSIGN_OR_RETURN(auto codes, r.read_span<std::uint8_t>(idx->codec_->packed_bytes(count)));
            l.codes.assign(codes.begin(), codes.end());
            mapping->release(std::as_bytes(codes));  // copied: its pages need not stay mapped
        }
        if (total != slots) return r.corrupt("list sizes do not add up to the vector count");
        if (p.keep_vectors) {
            QUIVER_TRY(r.align(64));
            QUIVER_ASSIGN_OR_RETURN(auto vectors, r.read_span<float>(slots * dim));
            if (options.vectors_on_disk) {
                const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    return Error(ErrorCode::kUnavailable,
                                 fmt::format("opening '{}' for vector reads: {}", path, std::strerror(errno)));
                }
                idx->disk_fd_ = fd;
                idx->disk_offset_ = static_cast<std::uint64_t>(reinterpret_cast<const std::byte*>(vectors.data()) -
                                                               mapping->bytes().data());
            } else {
                idx->vectors_ = vectors.data();
                idx->mapping_ = mapping;
            }
        }
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t n_ids, r.read_pod<std::uint64_t>());
        if (n_ids != 0 && n_ids != slots) return r.corrupt("external id count does not match");
        idx->external_ids_.reserve(n_ids);
        for (std::uint64_t i = 0; i < n_ids; ++i) {
            QUIVER_ASSIGN_OR_RETURN(std::string id, r.read_string());
            idx->external_ids_.push_back(std::move(id));
        }
        if (r.remaining() != 0) return r.corrupt("trailing bytes after the index");
        // Labels: sequential (label = slot) needs no map; otherwise map the live ones, each once.
        std::size_t counted = 0;
        for (std::size_t s = 0; s < slots; ++s) {
            if (to_int(idx->labels_[s]) != s) idx->sequential_ = false;
            if (idx->removed_[s] > 1) return r.corrupt("invalid tombstone byte");
            if (idx->removed_[s] == 0) {
                if (idx->labels_[s] == kNoLabel) return r.corrupt("a live vector has the reserved label");
                ++counted;
            }
        }
        if (!idx->sequential_) {
            for (std::size_t s = 0; s < slots; ++s) {
                if (idx->removed_[s] != 0) continue;
                if (!idx->slot_of_.emplace(to_int(idx->labels_[s]), static_cast<std::uint32_t>(s)).second) {
                    return r.corrupt("a label is live twice");
                }
            }
        }
        if (counted != live) return r.corrupt("live vector count does not match the tombstones");
        idx->live_ = live;
        // Everything but the float vectors was copied into owned arrays above: drop the mapped pages the
        // copies and the checks touched, so they do not count twice in the process's resident memory
        // (they stay in the page cache). Float vectors read through the mapping stay mapped.
        const auto all = mapping->bytes();
        if (idx->vectors_ != nullptr) {
            const auto* v = reinterpret_cast<const std::byte*>(idx->vectors_);
            const std::size_t vbytes = slots * dim * sizeof(float);
            mapping->release(all.first(static_cast<std::size_t>(v - all.data())));
            mapping->release(all.subspan(static_cast<std::size_t>(v - all.data()) + vbytes));
        } else {
            mapping->release(all);
        }
        if (!sections.empty()) {
            const bool on_disk = idx->disk_fd_ >= 0;
            idx->deferred_ = std::make_unique<storage::DeferredCheck>(
                [mapping, on_disk, sections = std::move(sections)]() -> Status {
                    for (const auto& sec : sections) {
                        // Vectors left on disk are read with pread only: the check drops the pages it
                        // mapped every 64 MiB, so it never holds the section resident.
                        QUIVER_TRY(on_disk ? storage::verify_section_released(*mapping, sec)
                                           : storage::verify_section(*mapping, sec));
                    }
                    return {};
                });
            if (options.verify) QUIVER_TRY(idx->verify());
        }
        return idx;
    }
};

Status CodeIndex::save(const std::string& path) const { return CodeIndexIo::save(*this, path); }
Result<std::unique_ptr<CodeIndex>> CodeIndex::open(const std::string& path, const CodeIndexOpenOptions& options) {
    return CodeIndexIo::open(path, options);
}

}  // namespace quiver::index
