// Binary codes: sign bits (binary1) and BEBR-style recurrent residual binarisation (binary<b>, b planes;
// ../shared/research/algorithms.md section 10). Vectors are centred on the training mean mu; plane p
// holds s_p = sign(r_p) with scale a_p = mean |r_p| (the least-squares scale for a sign vector), and
// r_{p+1} = r_p - a_p s_p. The query is binarised the same way (planes t_r, scales b_r), so
//   <x - mu, q - mu> ~ sum_{p,r} a_p b_r <s_p, t_r>,   <s, t> = dim - 2 * hamming(s, t),
// computed with the Hamming kernel (AVX-512 VPOPCNTDQ where present). Each code also keeps one exact
// float: |x - mu|^2 for L2, <mu, x - mu> for inner product, so only the cross term is estimated.
// Code: b planes of W = ceil(dim / 64) u64 words | f32 a[b] | f32 extra | padding to 8 bytes.
// Parameters: f32 mu[dim].
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "index/codec/codecs.h"
#include "quiver/simd/code_kernels.h"

namespace quiver::index::detail {
namespace {

class BinaryCodec final : public Codec {
public:
    BinaryCodec(const CodecSpec& spec, std::size_t dim, simd::Metric metric, std::uint64_t seed)
        : Codec(spec, dim, metric, seed), planes_(spec.bits), words_((dim + 63) / 64),
          kernels_(simd::active_code_kernels()) {}

    std::size_t code_size() const noexcept override {
        return planes_ * words_ * 8 + ((planes_ + 1) * 4 + 7) / 8 * 8;
    }
    std::size_t parameter_bytes() const noexcept override { return dim_ * sizeof(float); }

    Status train(MatrixView<float> sample) override {
        QUIVER_TRY(check_train(sample));
        std::vector<double> sum(dim_);
        for (std::size_t r = 0; r < sample.rows; ++r) {
            for (std::size_t j = 0; j < dim_; ++j) sum[j] += sample.row_ptr(r)[j];
        }
        mu_.resize(dim_);
        for (std::size_t j = 0; j < dim_; ++j) mu_[j] = static_cast<float>(sum[j] / double(sample.rows));
        trained_ = true;
        return {};
    }

    /// Binarises `x - mu` into planes (words_ u64 each) and scales; returns |x - mu|^2 and <mu, x - mu>.
    void binarise(const float* x, std::uint64_t* planes, float* scales, double* norm2, double* mu_dot) const {
        std::vector<float> r(dim_);
        double n2 = 0, md = 0;
        for (std::size_t j = 0; j < dim_; ++j) {
            r[j] = x[j] - mu_[j];
            n2 += double(r[j]) * r[j];
            md += double(mu_[j]) * r[j];
        }
        *norm2 = n2;
        *mu_dot = md;
        for (std::size_t p = 0; p < planes_; ++p) {
            std::uint64_t* w = planes + p * words_;
            std::memset(w, 0, words_ * 8);
            double abs_sum = 0;
            for (std::size_t j = 0; j < dim_; ++j) {
                abs_sum += std::fabs(r[j]);
                if (r[j] >= 0) w[j / 64] |= std::uint64_t{1} << (j % 64);
            }
            const float a = static_cast<float>(abs_sum / double(dim_));
            scales[p] = a;
            for (std::size_t j = 0; j < dim_; ++j) r[j] -= r[j] >= 0 ? a : -a;
        }
    }

    void encode(MatrixView<float> rows, std::uint8_t* codes) const override {
        const std::size_t cs = code_size();
        for (std::size_t i = 0; i < rows.rows; ++i) {
            std::uint8_t* c = codes + i * cs;
            std::memset(c, 0, cs);
            std::vector<std::uint64_t> planes(planes_ * words_);
            std::vector<float> scales(planes_ + 1);
            double n2 = 0, md = 0;
            binarise(rows.row_ptr(i), planes.data(), scales.data(), &n2, &md);
            scales[planes_] = static_cast<float>(is_l2() ? n2 : md);
            std::memcpy(c, planes.data(), planes.size() * 8);
            std::memcpy(c + planes.size() * 8, scales.data(), scales.size() * 4);
        }
    }

    void decode(const std::uint8_t* codes, std::size_t n, float* out) const override {
        const std::size_t cs = code_size();
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint8_t* c = codes + i * cs;
            float* o = out + i * dim_;
            for (std::size_t j = 0; j < dim_; ++j) o[j] = mu_[j];
            for (std::size_t p = 0; p < planes_; ++p) {
                float a;
                std::memcpy(&a, c + planes_ * words_ * 8 + p * 4, 4);
                for (std::size_t j = 0; j < dim_; ++j) {
                    std::uint64_t w;
                    std::memcpy(&w, c + (p * words_ + j / 64) * 8, 8);
                    o[j] += ((w >> (j % 64)) & 1u) ? a : -a;
                }
            }
        }
    }

    std::unique_ptr<CodeEstimator> estimator(const float* query) const override;

    std::size_t planes() const noexcept { return planes_; }
    std::size_t words() const noexcept { return words_; }
    const std::vector<float>& mu() const noexcept { return mu_; }
    const simd::CodeKernels& kernels() const noexcept { return kernels_; }

private:
    Status save_params(storage::FileWriter& w) const override { return w.write_span(std::span<const float>(mu_)); }
    Status load_params(storage::BinaryReader& r) override { return read_floats(r, dim_, mu_, "binary code centre"); }

    std::size_t planes_;
    std::size_t words_;
    const simd::CodeKernels& kernels_;
    std::vector<float> mu_;
};

class BinaryEstimator final : public CodeEstimator {
public:
    BinaryEstimator(const BinaryCodec& c, const float* q)
        : CodeEstimator(c.code_size()), planes_(c.planes()), words_(c.words()), dim_(double(c.dim())),
          l2_(c.metric() == simd::Metric::kL2), hamming_(c.kernels().hamming),
          t_(c.planes() * c.words()), b_(c.planes()) {
        double n2 = 0, md = 0;
        c.binarise(q, t_.data(), b_.data(), &n2, &md);
        if (l2_) {
            base_ = static_cast<float>(n2);
        } else {
            double qmu = 0;
            for (std::size_t j = 0; j < c.dim(); ++j) qmu += double(q[j]) * c.mu()[j];
            base_ = static_cast<float>(1.0 - qmu);  // 1 - <q, mu>
        }
    }

    float distance(const std::uint8_t* code) const noexcept override {
        const auto* s = reinterpret_cast<const std::uint64_t*>(code);
        const auto* f = reinterpret_cast<const float*>(code + planes_ * words_ * 8);
        float cross = 0;
        for (std::size_t p = 0; p < planes_; ++p) {
            for (std::size_t r = 0; r < planes_; ++r) {
                const double h = double(hamming_(s + p * words_, t_.data() + r * words_, words_));
                cross += f[p] * b_[r] * static_cast<float>(dim_ - 2 * h);
            }
        }
        // L2: |q-mu|^2 + |x-mu|^2 - 2 <x-mu, q-mu>;  IP: 1 - <q,mu> - <mu, x-mu> - <x-mu, q-mu>.
        return l2_ ? base_ + f[planes_] - 2 * cross : base_ - f[planes_] - cross;
    }

    void scan(const std::uint8_t* packed, std::size_t n, float* out, float* err) const noexcept override {
        for (std::size_t i = 0; i < n; ++i) out[i] = distance(packed + i * code_size_);
        if (err != nullptr) std::memset(err, 0, n * sizeof(float));
    }

private:
    std::size_t planes_, words_;
    double dim_;
    bool l2_;
    std::uint64_t (*hamming_)(const std::uint64_t*, const std::uint64_t*, std::size_t) noexcept;
    std::vector<std::uint64_t> t_;
    std::vector<float> b_;
    float base_ = 0;
};

std::unique_ptr<CodeEstimator> BinaryCodec::estimator(const float* query) const {
    return std::make_unique<BinaryEstimator>(*this, query);
}

}  // namespace

std::unique_ptr<Codec> make_binary_codec(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                         std::uint64_t seed) {
    return std::make_unique<BinaryCodec>(spec, dim, metric, seed);
}

}  // namespace quiver::index::detail
