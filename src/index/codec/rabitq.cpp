// RaBitQ (Gao and Long, SIGMOD 2024) and its extended multi-bit form (../shared/research/algorithms.md
// section 5.2). Vectors are centred on the training mean c, padded to B = ceil(dim / 64) * 64 dimensions
// and rotated by a random orthogonal P (Gram-Schmidt of a seeded Gaussian matrix): x = P (o - c).
// With u = x / |x| the code is a grid point y (b bits per dimension, y_i = code_i + 1/2 - 2^(b-1)),
// ō = y / |y|: b = 1 is the sign of u; b > 1 picks the grid scale that maximises <ō, u> (extended
// RaBitQ). For any query-side vector v (rotated like the data), <u, v> is estimated by <ō, v> / <ō, u>,
// with |error| <= |v| * sqrt(1/<ō,u>^2 - 1) * eps0 / sqrt(B - 1) with high probability (eps0 = 3, kEps0):
//   L2: |o - q|^2 = |o - c|^2 + |v|^2 - 2 |o - c| <u, v>,  v = P (q - c)
//   IP: 1 - <q, o> = 1 - <q, c> - |o - c| <u, v>,           v = P q
// The query stays in float32 (no query quantisation), so <ō, v> is exact: a per-byte lookup table for
// b = 1, 2, the u4/u8 code kernels for b = 4, 8.
// Code: B * b / 8 bytes of grid codes (layout as code_kernels.h: bits, 2-bit fields, nibbles, bytes)
//       | f32 add (|o - c|^2 for L2, else 0) | f32 scale |o - c| / (<ō,u> |y|) | f32 err |o - c| sqrt(..) eps0/sqrt(B-1)
// Parameters: f32 c[dim] | f32 P[B * B] (row-major).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "index/codec/codecs.h"
#include "quiver/simd/code_kernels.h"

namespace quiver::index::detail {
namespace {

// The bound's confidence parameter. The reference code's 1.9 is about a two-sided 94% interval per
// estimate (the error is close to Gaussian with the bound / eps0 as its largest standard deviation; we
// measured 5-7% of estimates outside it); 3.0 leaves about 0.3% outside, 0.15% on the side that can
// drop a true neighbour from the rescore.
constexpr double kEps0 = 3.0;

class RabitqCodec final : public Codec {
public:
    RabitqCodec(const CodecSpec& spec, std::size_t dim, simd::Metric metric, std::uint64_t seed)
        : Codec(spec, dim, metric, seed), bits_(spec.bits), padded_((dim + 63) / 64 * 64),
          kernels_(simd::active_code_kernels()) {}

    std::size_t code_size() const noexcept override { return value_bytes() + 3 * sizeof(float); }
    std::size_t value_bytes() const noexcept { return padded_ * bits_ / 8; }
    std::size_t parameter_bytes() const noexcept override { return (dim_ + padded_ * padded_) * sizeof(float); }
    bool has_error_bound() const noexcept override { return true; }
    std::size_t min_train_rows() const noexcept override { return 1; }

    Status train(MatrixView<float> sample) override {
        QUIVER_TRY(check_train(sample));
        std::vector<double> sum(dim_);
        for (std::size_t r = 0; r < sample.rows; ++r) {
            for (std::size_t j = 0; j < dim_; ++j) sum[j] += sample.row_ptr(r)[j];
        }
        centre_.resize(dim_);
        for (std::size_t j = 0; j < dim_; ++j) centre_[j] = static_cast<float>(sum[j] / double(sample.rows));
        make_rotation();
        trained_ = true;
        return {};
    }

    /// rotated[r] = P * pad(rows[r] - shift) for each row (B floats each); shift may be null. Row by row
    /// with the float kernels (callers run it on worker threads, where BLAS would contend).
    void rotate(const float* rows, std::size_t n, const float* shift, float* rotated) const {
        std::vector<float> padded(padded_, 0.0f);
        const auto dot = simd::active_kernels().dot;
        for (std::size_t r = 0; r < n; ++r) {
            for (std::size_t j = 0; j < dim_; ++j) padded[j] = rows[r * dim_ + j] - (shift != nullptr ? shift[j] : 0.0f);
            for (std::size_t i = 0; i < padded_; ++i) {
                rotated[r * padded_ + i] = dot(rotation_.data() + i * padded_, padded.data(), dim_);
            }
        }
    }

    void encode(MatrixView<float> rows, std::uint8_t* codes) const override {
        const std::size_t cs = code_size();
        std::vector<float> x(rows.rows * padded_);
        rotate(rows.data, rows.rows, centre_.data(), x.data());
        std::vector<std::uint32_t> grid(padded_), best(padded_);
        std::vector<float> u(padded_);
        const double levels = double(1u << bits_);
        const double half = levels / 2;
        for (std::size_t i = 0; i < rows.rows; ++i) {
            const float* xi = x.data() + i * padded_;
            std::uint8_t* c = codes + i * cs;
            std::memset(c, 0, cs);
            double norm2 = 0, maxabs = 0;
            for (std::size_t j = 0; j < padded_; ++j) {
                norm2 += double(xi[j]) * xi[j];
                maxabs = std::max(maxabs, std::fabs(double(xi[j])));
            }
            const double norm = std::sqrt(norm2);
            double best_cos = -1, best_ynorm = 1;
            if (norm == 0) {
                // o = c: any code; <ō,u> is undefined, and |o - c| = 0 zeroes every term that uses it.
                std::fill(best.begin(), best.end(), 0u);
                best_cos = 0.8;
                best_ynorm = std::sqrt(double(padded_)) * (half - 0.5 > 0 ? half - 0.5 : 0.5);
            } else if (bits_ == 1) {
                double abs_sum = 0;
                for (std::size_t j = 0; j < padded_; ++j) {
                    best[j] = xi[j] > 0 ? 1u : 0u;
                    abs_sum += std::fabs(double(xi[j]));
                }
                best_ynorm = std::sqrt(double(padded_)) * 0.5;
                best_cos = abs_sum / (std::sqrt(double(padded_)) * norm);
            } else {
                // Extended RaBitQ: y_i = floor(t * u_i) + 1/2 on the grid; scan t up to the value at which the
                // largest |u_i| reaches the last grid point, keep the t maximising the cosine <y, u> / |y|.
                // The optimum sits in the upper part of the range; 24 steps over [0.25, 1] x tmax.
                const double tmax = half / (maxabs / norm) * (1 - 1e-9);
                for (std::size_t j = 0; j < padded_; ++j) u[j] = static_cast<float>(xi[j] / norm);
                constexpr int kSteps = 24;
                for (int s = 0; s < kSteps; ++s) {
                    const float t = static_cast<float>(tmax * (0.25 + 0.75 * (s + 1) / kSteps));
                    float yu = 0, yy = 0;
                    for (std::size_t j = 0; j < padded_; ++j) {
                        const float g = std::clamp(std::floor(t * u[j] + static_cast<float>(half)), 0.0f,
                                                   static_cast<float>(levels - 1));
                        grid[j] = static_cast<std::uint32_t>(g);
                        const float y = g + 0.5f - static_cast<float>(half);
                        yu += y * u[j];
                        yy += y * y;
                    }
                    const double cosv = yy > 0 ? yu / std::sqrt(double(yy)) : -1;
                    if (cosv > best_cos) {
                        best_cos = cosv;
                        best_ynorm = std::sqrt(double(yy));
                        best = grid;
                    }
                }
            }
            // Pack the grid codes.
            for (std::size_t j = 0; j < padded_; ++j) {
                const std::size_t bit = j * bits_;
                c[bit / 8] = static_cast<std::uint8_t>(c[bit / 8] | (best[j] << (bit % 8)));
            }
            const double x0 = std::clamp(best_cos, 1e-6, 1.0);
            const float add = static_cast<float>(is_l2() ? norm2 : 0.0);
            const float scale = static_cast<float>(norm / (x0 * best_ynorm));
            const float err = static_cast<float>(norm * std::sqrt(std::max(0.0, 1.0 / (x0 * x0) - 1.0)) * kEps0 /
                                                 std::sqrt(double(padded_ - 1 > 0 ? padded_ - 1 : 1)));
            std::memcpy(c + value_bytes(), &add, 4);
            std::memcpy(c + value_bytes() + 4, &scale, 4);
            std::memcpy(c + value_bytes() + 8, &err, 4);
        }
    }

    std::uint32_t grid_value(const std::uint8_t* c, std::size_t j) const noexcept {
        const std::size_t bit = j * bits_;
        return (c[bit / 8] >> (bit % 8)) & ((1u << bits_) - 1u);
    }

    void decode(const std::uint8_t* codes, std::size_t n, float* out) const override {
        const std::size_t cs = code_size();
        const double half = double(1u << bits_) / 2;
        std::vector<float> y(padded_);
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint8_t* c = codes + i * cs;
            float scale;
            std::memcpy(&scale, c + value_bytes() + 4, 4);
            // x ~ |o - c| ō ... scaled back: |o-c| / (<ō,u>|y|) * y is the unbiased reconstruction direction.
            for (std::size_t j = 0; j < padded_; ++j) y[j] = static_cast<float>((grid_value(c, j) + 0.5 - half) * scale);
            // o = c + P^T x (first dim components).
            for (std::size_t d = 0; d < dim_; ++d) {
                double s = 0;
                for (std::size_t j = 0; j < padded_; ++j) s += double(rotation_[j * padded_ + d]) * y[j];
                out[i * dim_ + d] = centre_[d] + static_cast<float>(s);
            }
        }
    }

    std::unique_ptr<CodeEstimator> estimator(const float* query) const override;

    std::size_t bits() const noexcept { return bits_; }
    std::size_t padded() const noexcept { return padded_; }
    const std::vector<float>& centre() const noexcept { return centre_; }
    const simd::CodeKernels& kernels() const noexcept { return kernels_; }

private:
    void make_rotation() {
        const std::size_t b = padded_;
        std::mt19937_64 rng(seed_ ^ 0x5261426974510001ull);
        std::normal_distribution<double> nd;
        std::vector<double> m(b * b);
        for (auto& v : m) v = nd(rng);
        // Modified Gram-Schmidt on the rows (twice for stability).
        for (std::size_t i = 0; i < b; ++i) {
            double* ri = m.data() + i * b;
            for (int pass = 0; pass < 2; ++pass) {
                for (std::size_t k = 0; k < i; ++k) {
                    const double* rk = m.data() + k * b;
                    double d = 0;
                    for (std::size_t j = 0; j < b; ++j) d += ri[j] * rk[j];
                    for (std::size_t j = 0; j < b; ++j) ri[j] -= d * rk[j];
                }
            }
            double n = 0;
            for (std::size_t j = 0; j < b; ++j) n += ri[j] * ri[j];
            n = std::sqrt(n);
            for (std::size_t j = 0; j < b; ++j) ri[j] /= n;
        }
        rotation_.assign(m.begin(), m.end());
    }

    Status save_params(storage::FileWriter& w) const override {
        QUIVER_TRY(w.write_span(std::span<const float>(centre_)));
        return w.write_span(std::span<const float>(rotation_));
    }
    Status load_params(storage::BinaryReader& r) override {
        QUIVER_TRY(read_floats(r, dim_, centre_, "RaBitQ centre"));
        QUIVER_TRY(read_floats(r, padded_ * padded_, rotation_, "RaBitQ rotation"));
        // The rotation must be orthogonal (each row a unit vector), or the error bound means nothing.
        for (std::size_t i = 0; i < padded_; ++i) {
            double n = 0;
            for (std::size_t j = 0; j < padded_; ++j) n += double(rotation_[i * padded_ + j]) * rotation_[i * padded_ + j];
            if (std::fabs(n - 1.0) > 1e-3) return r.corrupt("RaBitQ rotation is not orthonormal");
        }
        return {};
    }

    std::size_t bits_;
    std::size_t padded_;
    const simd::CodeKernels& kernels_;
    std::vector<float> centre_;
    std::vector<float> rotation_;
};

class RabitqEstimator final : public CodeEstimator {
public:
    RabitqEstimator(const RabitqCodec& c, const float* q)
        : CodeEstimator(c.code_size()), bits_(c.bits()), value_bytes_(c.value_bytes()),
          l2_(c.metric() == simd::Metric::kL2), k_(c.kernels()), v_(c.padded()) {
        c.rotate(q, 1, l2_ ? c.centre().data() : nullptr, v_.data());
        double vsum = 0, vnorm2 = 0;
        for (float x : v_) {
            vsum += x;
            vnorm2 += double(x) * x;
        }
        const double half = double(1u << bits_) / 2;
        off_sum_ = static_cast<float>((0.5 - half) * vsum);
        const double vnorm = std::sqrt(vnorm2);
        err_scale_ = static_cast<float>((l2_ ? 2.0 : 1.0) * vnorm);
        if (l2_) {
            base_ = static_cast<float>(vnorm2);
            coef_ = -2.0f;
        } else {
            double qc = 0;
            for (std::size_t j = 0; j < c.dim(); ++j) qc += double(q[j]) * c.centre()[j];
            base_ = static_cast<float>(1.0 - qc);
            coef_ = -1.0f;
        }
        if (bits_ <= 2) {
            // Per-byte tables: entry b of table j = sum over the fields of byte j of v * field value.
            const std::size_t per_byte = 8 / bits_;
            const std::size_t nbytes = value_bytes_;
            lut_.assign(nbytes * 256, 0.0f);
            const unsigned mask = (1u << bits_) - 1u;
            for (std::size_t j = 0; j < nbytes; ++j) {
                float* t = lut_.data() + j * 256;
                for (unsigned b = 1; b < 256; ++b) {
                    float s = 0;
                    for (std::size_t f = 0; f < per_byte; ++f) {
                        s += v_[j * per_byte + f] * static_cast<float>((b >> (f * bits_)) & mask);
                    }
                    t[b] = s;
                }
            }
        }
    }

    float raw_dot(const std::uint8_t* code) const noexcept {
        switch (bits_) {
            case 8: return k_.u8_dot(v_.data(), code, v_.size());
            case 4: return k_.u4_dot(v_.data(), code, v_.size());
            default: return k_.lut8_sum(lut_.data(), code, value_bytes_);
        }
    }

    float distance(const std::uint8_t* code) const noexcept override {
        float f[3];
        std::memcpy(f, code + value_bytes_, sizeof(f));
        return base_ + f[0] + coef_ * f[1] * (raw_dot(code) + off_sum_);
    }

    void scan(const std::uint8_t* packed, std::size_t n, float* out, float* err) const noexcept override {
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint8_t* code = packed + i * code_size_;
            float f[3];
            std::memcpy(f, code + value_bytes_, sizeof(f));
            out[i] = base_ + f[0] + coef_ * f[1] * (raw_dot(code) + off_sum_);
            if (err != nullptr) err[i] = f[2] * err_scale_;
        }
    }

private:
    std::size_t bits_;
    std::size_t value_bytes_;
    bool l2_;
    const simd::CodeKernels& k_;
    std::vector<float> v_;    // rotated query side vector (B floats)
    std::vector<float> lut_;  // b = 1, 2: value_bytes x 256
    float off_sum_ = 0;       // (1/2 - 2^(b-1)) * sum(v)
    float base_ = 0;          // L2: |v|^2; IP: 1 - <q, c>
    float coef_ = 0;          // L2: -2; IP: -1
    float err_scale_ = 0;     // (L2 ? 2 : 1) * |v|
};

std::unique_ptr<CodeEstimator> RabitqCodec::estimator(const float* query) const {
    return std::make_unique<RabitqEstimator>(*this, query);
}

}  // namespace

std::unique_ptr<Codec> make_rabitq_codec(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                         std::uint64_t seed) {
    return std::make_unique<RabitqCodec>(spec, dim, metric, seed);
}

}  // namespace quiver::index::detail
