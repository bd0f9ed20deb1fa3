// Product quantisation: the vector is cut into M sub-vectors of dim / M components, each replaced by the
// nearest of 2^b centroids learned by k-means on BLAS (kmeans.h). Distances are asymmetric: the query
// stays in float32 and a table per sub-quantiser holds its distance to every centroid.
//   pq<M>x8: one byte per sub-code; an estimate is M table lookups (lut8_sum kernel, gathers).
//   pq<M>x4: fast-scan (as FAISS IndexPQFastScan): two sub-codes per byte, codes stored in transposed
//            blocks of 32 (code_kernels.h), the float tables quantised to u8 with one scale, and 32
//            estimates at a time from in-register byte shuffles (lut4_scan32). M <= 256 keeps the u16
//            sums exact.
// Code (row-major): x8: u8 code[M]; x4: ceil(M/2) bytes, sub-code 2j in the low nibble of byte j.
// Parameters: f32 centroids[M][2^b][dim / M].
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "index/codec/codecs.h"
#include "index/codec/kmeans.h"
#include "quiver/simd/code_kernels.h"

namespace quiver::index::detail {
namespace {

class PqCodec final : public Codec {
public:
    PqCodec(const CodecSpec& spec, std::size_t dim, simd::Metric metric, std::uint64_t seed)
        : Codec(spec, dim, metric, seed), m_(spec.m), ksub_(std::size_t{1} << spec.bits), dsub_(dim / spec.m),
          four_(spec.bits == 4), kernels_(simd::active_code_kernels()) {}

    std::size_t code_size() const noexcept override { return four_ ? (m_ + 1) / 2 : m_; }
    std::size_t block_size() const noexcept override { return four_ ? 32 : 1; }
    std::size_t parameter_bytes() const noexcept override { return m_ * ksub_ * dsub_ * sizeof(float); }
    std::size_t min_train_rows() const noexcept override { return ksub_; }
    std::size_t default_train_rows() const noexcept override { return 128 * ksub_; }

    Status train(MatrixView<float> sample) override {
        QUIVER_TRY(check_train(sample));
        centroids_.assign(m_ * ksub_ * dsub_, 0.0f);
        Matrix<float> sub(sample.rows, dsub_);
        for (std::size_t s = 0; s < m_; ++s) {
            for (std::size_t r = 0; r < sample.rows; ++r) {
                std::copy_n(sample.row_ptr(r) + s * dsub_, dsub_, sub.row_ptr(r));
            }
            QUIVER_ASSIGN_OR_RETURN(Matrix<float> c, kmeans(sub, {.k = ksub_,
                                                                  .iterations = 12,
                                                                  .seed = seed_ + s,
                                                                  .threads = 0}));
            std::copy(c.values.begin(), c.values.end(), centroids_.begin() + static_cast<std::ptrdiff_t>(s * ksub_ * dsub_));
        }
        trained_ = true;
        return {};
    }

    // Direct nearest-centroid loops: encode runs on the index's worker threads, where small BLAS calls
    // would only contend for OpenBLAS's own threads.
    void encode(MatrixView<float> rows, std::uint8_t* codes) const override {
        const std::size_t cs = code_size();
        std::memset(codes, 0, rows.rows * cs);
        const auto l2 = simd::distance_fn(simd::Metric::kL2);
        for (std::size_t r = 0; r < rows.rows; ++r) {
            for (std::size_t s = 0; s < m_; ++s) {
                const float* x = rows.row_ptr(r) + s * dsub_;
                const float* cent = centroids_.data() + s * ksub_ * dsub_;
                float best = INFINITY;
                unsigned arg = 0;
                for (std::size_t k = 0; k < ksub_; ++k) {
                    const float d = dsub_ >= 8 ? l2(x, cent + k * dsub_, dsub_) : small_l2(x, cent + k * dsub_);
                    if (d < best) {
                        best = d;
                        arg = static_cast<unsigned>(k);
                    }
                }
                if (four_) {
                    codes[r * cs + s / 2] = static_cast<std::uint8_t>(codes[r * cs + s / 2] | (arg << ((s & 1) * 4)));
                } else {
                    codes[r * cs + s] = static_cast<std::uint8_t>(arg);
                }
            }
        }
    }

    float small_l2(const float* a, const float* b) const noexcept {
        float s = 0;
        for (std::size_t j = 0; j < dsub_; ++j) s += (a[j] - b[j]) * (a[j] - b[j]);
        return s;
    }

    unsigned sub_code(const std::uint8_t* code, std::size_t s) const noexcept {
        return four_ ? (code[s / 2] >> ((s & 1) * 4)) & 0xFu : code[s];
    }

    void decode(const std::uint8_t* codes, std::size_t n, float* out) const override {
        const std::size_t cs = code_size();
        for (std::size_t r = 0; r < n; ++r) {
            for (std::size_t s = 0; s < m_; ++s) {
                const float* c = centroids_.data() + (s * ksub_ + sub_code(codes + r * cs, s)) * dsub_;
                std::copy_n(c, dsub_, out + r * dim_ + s * dsub_);
            }
        }
    }

    // Fast-scan layout: block of 32 codes; sub-code s (of M rounded up to even) takes 16 bytes, byte j
    // = nibble of code j | nibble of code j + 16 << 4.
    void pack(const std::uint8_t* codes, std::size_t n, std::uint8_t* packed) const override {
        if (!four_) return Codec::pack(codes, n, packed);
        const std::size_t cs = code_size();
        const std::size_t mp = cs * 2;
        std::memset(packed, 0, packed_bytes(n));
        for (std::size_t b = 0; b * 32 < n; ++b) {
            std::uint8_t* blk = packed + b * 32 * cs;
            for (std::size_t j = 0; j < 32 && b * 32 + j < n; ++j) {
                const std::uint8_t* code = codes + (b * 32 + j) * cs;
                for (std::size_t s = 0; s < mp; ++s) {
                    const unsigned v = s < m_ ? sub_code(code, s) : 0u;
                    blk[s * 16 + (j & 15)] = static_cast<std::uint8_t>(blk[s * 16 + (j & 15)] | (v << (j < 16 ? 0 : 4)));
                }
            }
        }
    }

    void unpack(const std::uint8_t* packed, std::size_t i, std::uint8_t* code) const override {
        if (!four_) return Codec::unpack(packed, i, code);
        const std::size_t cs = code_size();
        const std::uint8_t* blk = packed + (i / 32) * 32 * cs;
        const std::size_t j = i % 32;
        std::memset(code, 0, cs);
        for (std::size_t s = 0; s < m_; ++s) {
            const unsigned v = (blk[s * 16 + (j & 15)] >> (j < 16 ? 0 : 4)) & 0xFu;
            code[s / 2] = static_cast<std::uint8_t>(code[s / 2] | (v << ((s & 1) * 4)));
        }
    }

    std::unique_ptr<CodeEstimator> estimator(const float* query) const override;

    std::size_t m() const noexcept { return m_; }
    std::size_t ksub() const noexcept { return ksub_; }
    std::size_t dsub() const noexcept { return dsub_; }
    bool four() const noexcept { return four_; }
    const float* centroids() const noexcept { return centroids_.data(); }
    const simd::CodeKernels& kernels() const noexcept { return kernels_; }

private:
    Status save_params(storage::FileWriter& w) const override {
        return w.write_span(std::span<const float>(centroids_));
    }
    Status load_params(storage::BinaryReader& r) override {
        return read_floats(r, m_ * ksub_ * dsub_, centroids_, "PQ centroids");
    }

    std::size_t m_, ksub_, dsub_;
    bool four_;
    const simd::CodeKernels& kernels_;
    std::vector<float> centroids_;
};

class PqEstimator final : public CodeEstimator {
public:
    PqEstimator(const PqCodec& c, const float* q)
        : CodeEstimator(c.code_size()), c_(c), lut_(c.m() * c.ksub()) {
        const bool l2 = c.metric() == simd::Metric::kL2;
        const std::size_t ds = c.dsub();
        for (std::size_t s = 0; s < c.m(); ++s) {
            const float* qs = q + s * ds;
            for (std::size_t k = 0; k < c.ksub(); ++k) {
                const float* cen = c.centroids() + (s * c.ksub() + k) * ds;
                float v = 0;
                for (std::size_t j = 0; j < ds; ++j) v += l2 ? (qs[j] - cen[j]) * (qs[j] - cen[j]) : qs[j] * cen[j];
                lut_[s * c.ksub() + k] = l2 ? v : -v;
            }
        }
        base_ = l2 ? 0.0f : 1.0f;
        if (c.four()) {
            // One scale for all tables so the u16 sums compare across codes; per-table minimum as offset.
            const std::size_t mp = c.code_size() * 2;
            q8_.assign(mp * 16, 0);
            float span = 0;
            std::vector<float> mins(c.m());
            for (std::size_t s = 0; s < c.m(); ++s) {
                const float* t = lut_.data() + s * 16;
                mins[s] = *std::min_element(t, t + 16);
                span = std::max(span, *std::max_element(t, t + 16) - mins[s]);
            }
            scale_ = span > 0 ? span / 255.0f : 1.0f;
            double offset = 0;
            for (std::size_t s = 0; s < c.m(); ++s) {
                offset += mins[s];
                for (std::size_t k = 0; k < 16; ++k) {
                    q8_[s * 16 + k] = static_cast<std::uint8_t>(
                        std::clamp(std::nearbyint((lut_[s * 16 + k] - mins[s]) / scale_), 0.0f, 255.0f));
                }
            }
            fast_base_ = base_ + static_cast<float>(offset);
        }
    }

    float distance(const std::uint8_t* code) const noexcept override {
        if (!c_.four()) return base_ + c_.kernels().lut8_sum(lut_.data(), code, c_.m());
        float s = base_;
        for (std::size_t j = 0; j < c_.m(); ++j) s += lut_[j * 16 + c_.sub_code(code, j)];
        return s;
    }

    std::size_t scan_below(const std::uint8_t* packed, std::size_t n, float limit, std::uint32_t* sel,
                           float* out) const noexcept override {
        if (!c_.four()) return CodeEstimator::scan_below(packed, n, limit, sel, out);
        // fast_base + scale * acc <= limit  <=>  acc <= (limit - fast_base) / scale; one unit of slack
        // covers the float rounding on either side, so no code at or below the limit is left out.
        const double x = (double(limit) - double(fast_base_)) / double(scale_);
        const std::int32_t lim = !(x < 65536.0) ? 65536 : x < -1.0 ? -1 : static_cast<std::int32_t>(std::floor(x)) + 1;
        const std::size_t mp = code_size_ * 2;
        std::uint16_t acc[32];
        std::size_t m = 0;
        for (std::size_t b = 0; b * 32 < n; ++b) {
            c_.kernels().lut4_scan32(packed + b * 32 * code_size_, q8_.data(), mp, acc);
            const std::size_t cnt = std::min<std::size_t>(32, n - b * 32);
            for (std::size_t j = 0; j < cnt; ++j) {
                sel[m] = static_cast<std::uint32_t>(b * 32 + j);
                out[m] = fast_base_ + scale_ * static_cast<float>(acc[j]);
                m += static_cast<std::int32_t>(acc[j]) <= lim ? 1 : 0;
            }
        }
        return m;
    }

    void scan(const std::uint8_t* packed, std::size_t n, float* out, float* err) const noexcept override {
        if (err != nullptr) std::memset(err, 0, n * sizeof(float));
        if (!c_.four()) {
            for (std::size_t i = 0; i < n; ++i) out[i] = base_ + c_.kernels().lut8_sum(lut_.data(), packed + i * code_size_, c_.m());
            return;
        }
        const std::size_t mp = code_size_ * 2;
        std::uint16_t acc[32];
        for (std::size_t b = 0; b * 32 < n; ++b) {
            c_.kernels().lut4_scan32(packed + b * 32 * code_size_, q8_.data(), mp, acc);
            const std::size_t m = std::min<std::size_t>(32, n - b * 32);
            for (std::size_t j = 0; j < m; ++j) out[b * 32 + j] = fast_base_ + scale_ * static_cast<float>(acc[j]);
        }
    }

private:
    const PqCodec& c_;
    std::vector<float> lut_;        // M x 2^b
    std::vector<std::uint8_t> q8_;  // x4: quantised tables, M rounded up to even, x 16
    float base_ = 0;
    float scale_ = 1;
    float fast_base_ = 0;
};

std::unique_ptr<CodeEstimator> PqCodec::estimator(const float* query) const {
    return std::make_unique<PqEstimator>(*this, query);
}

}  // namespace

std::unique_ptr<Codec> make_pq_codec(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                     std::uint64_t seed) {
    return std::make_unique<PqCodec>(spec, dim, metric, seed);
}

}  // namespace quiver::index::detail
