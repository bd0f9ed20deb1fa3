// FlatIndex persistence. Payload of a 'FLAT' file, version 1 or 2 (docs/formats.md; version 2 has a
// section table: the vectors carry their own CRC, checked on first use):
//   u64 dim | u32 metric | u32 0 | u64 slots | u64 live
//   u64 labels[slots] | u8 removed[slots] | (align 4) f32 norms[slots]
//   (align 64) f32 vectors[slots * dim]          <- mapped in place by open()
//   u64 n_ids | n_ids x (u64 len, bytes)         <- optional external ids
#include <fmt/format.h>

#include "quiver/index/flat_index.h"
#include "quiver/storage/file_format.h"

namespace quiver::index {

namespace {
constexpr std::uint32_t kFlatVersion = 2;
constexpr std::uint32_t kVectorSection = storage::fourcc("VECS");
}

struct FlatIo {
    static Status save(const FlatIndex& x, const std::string& path) {
        QUIVER_TRY(x.verify());  // never re-seal a damaged section under a fresh checksum
        QUIVER_ASSIGN_OR_RETURN(storage::FileWriter w, storage::FileWriter::create(path, kFlatFileKind, kFlatVersion,
                                                                                   storage::kFlagSections));
        const std::uint64_t slots = x.labels_.size();
        QUIVER_TRY(w.write_pod<std::uint64_t>(x.dim_));
        QUIVER_TRY(w.write_pod<std::uint32_t>(static_cast<std::uint32_t>(x.metric_)));
        QUIVER_TRY(w.write_pod<std::uint32_t>(0));
        QUIVER_TRY(w.write_pod<std::uint64_t>(slots));
        QUIVER_TRY(w.write_pod<std::uint64_t>(x.live_));
        QUIVER_TRY(w.write_span(std::span<const Label>(x.labels_)));
        QUIVER_TRY(w.write_span(std::span<const std::uint8_t>(x.removed_)));
        QUIVER_TRY(w.align(4));
        QUIVER_TRY(w.write_span(std::span<const float>(x.norms_)));
        QUIVER_TRY(w.align(64));
        QUIVER_TRY(w.begin_section(kVectorSection));
        QUIVER_TRY(w.write(x.base_, slots * x.dim_ * sizeof(float)));
        QUIVER_TRY(w.end_section());
        QUIVER_TRY(w.write_pod<std::uint64_t>(x.external_ids_.size()));
        for (const auto& id : x.external_ids_) QUIVER_TRY(w.write_string(id));
        return w.finish();
    }

    static Result<std::unique_ptr<FlatIndex>> open(const std::string& path, bool verify) {
        auto mapping = std::make_shared<storage::MappedFile>();
        QUIVER_ASSIGN_OR_RETURN(*mapping, storage::MappedFile::open(path));
        std::vector<storage::Section> sections;
        QUIVER_ASSIGN_OR_RETURN(storage::BinaryReader r,
                                storage::open_payload(*mapping, kFlatFileKind, kFlatVersion, nullptr, &sections));
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t dim, r.read_pod<std::uint64_t>());
        QUIVER_ASSIGN_OR_RETURN(std::uint32_t metric, r.read_pod<std::uint32_t>());
        QUIVER_TRY(r.skip(4));
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t slots, r.read_pod<std::uint64_t>());
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t live, r.read_pod<std::uint64_t>());
        if (dim == 0 || dim > (1u << 16)) return r.corrupt(fmt::format("invalid dimension {}", dim));
        if (metric > 2) return r.corrupt(fmt::format("invalid metric {}", metric));
        if (slots > r.remaining() || live > slots) return r.corrupt("invalid vector count");
        QUIVER_ASSIGN_OR_RETURN(auto idx, FlatIndex::create(dim, static_cast<Metric>(metric)));
        QUIVER_ASSIGN_OR_RETURN(auto labels, r.read_span<Label>(slots));
        QUIVER_ASSIGN_OR_RETURN(auto removed, r.read_span<std::uint8_t>(slots));
        QUIVER_TRY(r.align(4));
        QUIVER_ASSIGN_OR_RETURN(auto norms, r.read_span<float>(slots));
        QUIVER_TRY(r.align(64));
        QUIVER_ASSIGN_OR_RETURN(auto vectors, r.read_span<float>(slots * dim));
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t n_ids, r.read_pod<std::uint64_t>());
        if (n_ids != 0 && n_ids != slots) return r.corrupt("external id count does not match");
        idx->external_ids_.reserve(n_ids);
        for (std::uint64_t i = 0; i < n_ids; ++i) {
            QUIVER_ASSIGN_OR_RETURN(std::string id, r.read_string());
            idx->external_ids_.push_back(std::move(id));
        }
        idx->labels_.assign(labels.begin(), labels.end());
        idx->removed_.assign(removed.begin(), removed.end());
        idx->norms_.assign(norms.begin(), norms.end());
        std::size_t counted = 0;
        for (std::size_t s = 0; s < slots; ++s) {
            if (idx->labels_[s] == kNoLabel) {
                return r.corrupt(fmt::format("slot {} has the reserved no-label value", s));
            }
            if (idx->removed_[s]) continue;
            idx->slot_of_[to_int(idx->labels_[s])] = static_cast<std::uint32_t>(s);
            ++counted;
        }
        if (counted != live || idx->slot_of_.size() != live) {
            return r.corrupt("live vector count does not match its labels");
        }
        idx->live_ = live;
        idx->base_ = vectors.data();
        idx->mapping_ = mapping;
        if (!sections.empty()) {
            idx->deferred_ = std::make_unique<storage::DeferredCheck>([mapping, sections = std::move(sections)]() -> Status {
                for (const auto& sec : sections) QUIVER_TRY(storage::verify_section(*mapping, sec));
                return {};
            });
            if (verify) QUIVER_TRY(idx->verify());
        }
        return idx;
    }
};

Status FlatIndex::save(const std::string& path) const { return FlatIo::save(*this, path); }

Result<std::unique_ptr<FlatIndex>> FlatIndex::open(const std::string& path, bool verify) {
    return FlatIo::open(path, verify);
}

}  // namespace quiver::index
