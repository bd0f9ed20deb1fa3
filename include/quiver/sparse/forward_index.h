/// @file forward_index.h
/// @brief The forward index of a sparse collection: every document's (term, weight) pairs stored one
/// after another, addressed by a per-document offset. It is where exact scores come from in Seismic.
///
/// Layout: offsets[N+1] (u64); terms as u16 when the vocabulary has at most 65,536 ids, else u32; weights
/// as f32 or bf16 (the top 16 bits of an f32, rounded to nearest even: 8 significant bits, relative error
/// <= 2^-9, so a ranking changes only between scores closer than ~0.4%). The bench reports the effect.
///
/// Scoring contract: `score(doc, qdense)` is sum_j qdense[term_j] * weight_j, where `qdense` is a dense
/// array of dim() floats holding the query's weights (0 elsewhere). Thread-safe (const).
/// Buffers either own their memory or view a mapped file that the owner keeps alive.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/sparse/sparse_vector.h"
#include "quiver/storage/buffer.h"
#include "quiver/storage/file_format.h"

namespace quiver::sparse {

using storage::Buffer;
using storage::read_buffer;
using storage::write_buffer;

/// The caller's document ids, one string per row, stored as offsets + characters.
class DocIdTable {
public:
    DocIdTable() = default;
    explicit DocIdTable(const std::vector<std::string>& ids);
    std::size_t size() const noexcept { return offsets_.empty() ? 0 : offsets_.size() - 1; }
    std::string_view operator[](std::size_t i) const noexcept {
        return {chars_.data() + offsets_[i], static_cast<std::size_t>(offsets_[i + 1] - offsets_[i])};
    }
    std::size_t bytes() const noexcept { return offsets_.bytes() + chars_.bytes(); }
    [[nodiscard]] Status save(storage::FileWriter& w) const;
    /// Reads a table of exactly `expected_rows` ids (kDataLoss otherwise).
    [[nodiscard]] static Result<DocIdTable> load(storage::BinaryReader& r, std::size_t expected_rows);

private:
    Buffer<std::uint64_t> offsets_;
    Buffer<char> chars_;
};

/// Writes / reads a Vocabulary (mode, dimension, strings in id order).
[[nodiscard]] Status write_vocabulary(storage::FileWriter& w, const Vocabulary& v);
[[nodiscard]] Result<Vocabulary> read_vocabulary(storage::BinaryReader& r);

/// How the forward index stores weights.
enum class WeightFormat : std::uint8_t { kF32 = 0, kBf16 = 1 };

inline std::uint16_t to_bf16(float f) noexcept {
    const std::uint32_t b = std::bit_cast<std::uint32_t>(f);
    return static_cast<std::uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}
inline float from_bf16(std::uint16_t h) noexcept {
    return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

class ForwardIndex {
public:
    ForwardIndex() = default;
    /// Copies `c`'s rows, converting weights to `format`.
    static ForwardIndex build(const SparseCollection& c, WeightFormat format);

    std::size_t size() const noexcept { return offsets_.empty() ? 0 : offsets_.size() - 1; }
    std::size_t nnz() const noexcept { return offsets_.empty() ? 0 : offsets_[offsets_.size() - 1]; }
    std::uint32_t dim() const noexcept { return dim_; }
    WeightFormat format() const noexcept { return format_; }
    std::size_t doc_nnz(std::uint32_t doc) const noexcept { return offsets_[doc + 1] - offsets_[doc]; }

    /// Exact inner product of document `doc` with the dense query `qdense` (see the file comment).
    float score(std::uint32_t doc, const float* qdense) const noexcept {
        const std::uint64_t b = offsets_[doc], e = offsets_[doc + 1];
        if (wide_terms_) return format_ == WeightFormat::kF32 ? dot_impl(terms32_.data(), f32_.data(), b, e, qdense)
                                                             : dot_impl(terms32_.data(), bf16_.data(), b, e, qdense);
        return format_ == WeightFormat::kF32 ? dot_impl(terms16_.data(), f32_.data(), b, e, qdense)
                                             : dot_impl(terms16_.data(), bf16_.data(), b, e, qdense);
    }
    /// Hints the CPU to load document `doc` (first cache lines of its terms and weights).
    void prefetch(std::uint32_t doc) const noexcept;

    /// Document `doc` decoded to f32 weights.
    SparseVector row(std::uint32_t doc) const;
    /// Calls fn(term, weight) for every entry of `doc`, in ascending term order.
    template <class Fn>
    void for_each(std::uint32_t doc, Fn&& fn) const {
        const std::uint64_t b = offsets_[doc], e = offsets_[doc + 1];
        for (std::uint64_t j = b; j < e; ++j) fn(term_at(j), weight_at(j));
    }
    std::uint32_t term_at(std::uint64_t j) const noexcept {
        return wide_terms_ ? terms32_[j] : static_cast<std::uint32_t>(terms16_[j]);
    }
    float weight_at(std::uint64_t j) const noexcept {
        return format_ == WeightFormat::kF32 ? f32_[j] : from_bf16(bf16_[j]);
    }

    /// Bytes of the arrays (offsets, terms, weights).
    std::size_t bytes() const noexcept {
        return offsets_.bytes() + terms16_.bytes() + terms32_.bytes() + f32_.bytes() + bf16_.bytes();
    }

    [[nodiscard]] Status save(storage::FileWriter& w) const;
    /// Reads a forward index written by save(), as views into the reader's mapped bytes, and checks
    /// that offsets are monotone and every term is below dim.
    [[nodiscard]] static Result<ForwardIndex> load(storage::BinaryReader& r);

private:
    template <class TermT, class WeightT>
    static float dot_impl(const TermT* terms, const WeightT* w, std::uint64_t b, std::uint64_t e,
                          const float* q) noexcept {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        std::uint64_t j = b;
        for (; j + 4 <= e; j += 4) {
            s0 += q[terms[j]] * value(w[j]);
            s1 += q[terms[j + 1]] * value(w[j + 1]);
            s2 += q[terms[j + 2]] * value(w[j + 2]);
            s3 += q[terms[j + 3]] * value(w[j + 3]);
        }
        for (; j < e; ++j) s0 += q[terms[j]] * value(w[j]);
        return (s0 + s1) + (s2 + s3);
    }
    static float value(float v) noexcept { return v; }
    static float value(std::uint16_t v) noexcept { return from_bf16(v); }

    std::uint32_t dim_ = 0;
    WeightFormat format_ = WeightFormat::kF32;
    bool wide_terms_ = false;
    Buffer<std::uint64_t> offsets_;
    Buffer<std::uint16_t> terms16_;
    Buffer<std::uint32_t> terms32_;
    Buffer<float> f32_;
    Buffer<std::uint16_t> bf16_;
};

}  // namespace quiver::sparse
