// Scalar quantisation (SQ8, SQ4): per-dimension ranges [min, min + levels * step] learned from the
// training sample; value x encodes as round((x - min) / step) clamped to [0, levels]. Estimates are the
// exact distances to the reconstructed vectors, computed by the u8/u4 code kernels.
// Parameters: f32 min[dim] | f32 step[dim].
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__SSE__)
#include <immintrin.h>
#endif

#include "index/codec/codecs.h"
#include "quiver/simd/code_kernels.h"

namespace quiver::index::detail {
namespace {

class SqCodec final : public Codec {
public:
    SqCodec(const CodecSpec& spec, std::size_t dim, simd::Metric metric, std::uint64_t seed)
        : Codec(spec, dim, metric, seed),
          four_(spec.kind == CodecKind::kSq4),
          levels_(four_ ? 15 : 255),
          kernels_(simd::active_code_kernels()) {}

    std::size_t code_size() const noexcept override { return four_ ? (dim_ + 1) / 2 : dim_; }
    std::size_t parameter_bytes() const noexcept override { return 2 * dim_ * sizeof(float); }

    Status train(MatrixView<float> sample) override {
        QUIVER_TRY(check_train(sample));
        std::vector<float> lo(dim_, INFINITY), hi(dim_, -INFINITY);
        for (std::size_t r = 0; r < sample.rows; ++r) {
            const float* x = sample.row_ptr(r);
            for (std::size_t j = 0; j < dim_; ++j) {
                if (!std::isfinite(x[j])) return invalid_argument("training vectors hold a non-finite value");
                lo[j] = std::min(lo[j], x[j]);
                hi[j] = std::max(hi[j], x[j]);
            }
        }
        min_ = std::move(lo);
        step_.resize(dim_);
        for (std::size_t j = 0; j < dim_; ++j) step_[j] = (hi[j] - min_[j]) / static_cast<float>(levels_);
        trained_ = true;
        return {};
    }

    void encode(MatrixView<float> rows, std::uint8_t* codes) const override {
        const std::size_t cs = code_size();
        for (std::size_t r = 0; r < rows.rows; ++r) {
            const float* x = rows.row_ptr(r);
            std::uint8_t* c = codes + r * cs;
            if (four_) std::fill(c, c + cs, std::uint8_t{0});
            for (std::size_t j = 0; j < dim_; ++j) {
                const unsigned q = quantise(x[j], j);
                if (four_) {
                    c[j >> 1] = static_cast<std::uint8_t>(c[j >> 1] | (q << ((j & 1) * 4)));
                } else {
                    c[j] = static_cast<std::uint8_t>(q);
                }
            }
        }
    }

    void decode(const std::uint8_t* codes, std::size_t n, float* out) const override {
        const std::size_t cs = code_size();
        for (std::size_t r = 0; r < n; ++r) {
            const std::uint8_t* c = codes + r * cs;
            for (std::size_t j = 0; j < dim_; ++j) {
                const unsigned q = four_ ? (c[j >> 1] >> ((j & 1) * 4)) & 0xFu : c[j];
                out[r * dim_ + j] = min_[j] + step_[j] * static_cast<float>(q);
            }
        }
    }

    std::unique_ptr<CodeEstimator> estimator(const float* query) const override;

    // Int8Query for SQ8. Inner product: 1 - <q, x> = (1 - <q, min>) - sum_j (q_j step_j) c_j.
    // L2: |q - x|^2 = |a|^2 - 2 sum_j (a_j step_j) c_j + sum_j (step_j c_j)^2 with a = q - min; the
    // last sum is the per-code term. The weights (q_j step_j or a_j step_j) share one scale,
    // max |w| / 127.
    bool has_int8_query() const noexcept override { return !four_; }
    bool int8_query(const float* q, Int8Query& out) const override {
        if (four_ || !trained_) return false;
        const bool l2 = is_l2();
        out.weights.resize(dim_);
        const float* mn = min_.data();
        const float* st = step_.data();
        // Once per query of every search: the maximum and the bias in four interleaved chains each
        // (lane t takes dimensions j = t mod 4; the dimensions past the last multiple of 4 go to
        // chain 0), not one chain of dim dependent operations. The SSE2 loop computes exactly what
        // the scalar loop does: the products are exact in double, and each chain adds in order.
        float mx[4] = {0, 0, 0, 0};
        double part[4] = {0, 0, 0, 0};
        std::size_t j0 = 0;
#if defined(__SSE2__)
        {
            const __m128 sign = _mm_set1_ps(-0.0f);
            __m128 vmx = _mm_setzero_ps();
            __m128d p01 = _mm_setzero_pd(), p23 = _mm_setzero_pd();
            for (; j0 + 4 <= dim_; j0 += 4) {
                const __m128 qv = _mm_loadu_ps(q + j0);
                const __m128 mv = _mm_loadu_ps(mn + j0);
                const __m128 a = l2 ? _mm_sub_ps(qv, mv) : qv;
                vmx = _mm_max_ps(vmx, _mm_andnot_ps(sign, _mm_mul_ps(a, _mm_loadu_ps(st + j0))));
                const __m128 x = a, y = l2 ? a : mv;  // bias terms: a * a (L2) or q * min
                p01 = _mm_add_pd(p01, _mm_mul_pd(_mm_cvtps_pd(x), _mm_cvtps_pd(y)));
                p23 = _mm_add_pd(p23, _mm_mul_pd(_mm_cvtps_pd(_mm_movehl_ps(x, x)), _mm_cvtps_pd(_mm_movehl_ps(y, y))));
            }
            _mm_storeu_ps(mx, vmx);
            _mm_storeu_pd(part, p01);
            _mm_storeu_pd(part + 2, p23);
        }
#else
        auto visit = [&](std::size_t j, float& m, double& b) {
            const float a = l2 ? q[j] - mn[j] : q[j];
            m = std::max(m, std::fabs(a * st[j]));
            b += l2 ? static_cast<double>(a) * a : static_cast<double>(q[j]) * mn[j];
        };
        for (; j0 + 4 <= dim_; j0 += 4) {
            visit(j0, mx[0], part[0]);
            visit(j0 + 1, mx[1], part[1]);
            visit(j0 + 2, mx[2], part[2]);
            visit(j0 + 3, mx[3], part[3]);
        }
#endif
        for (; j0 < dim_; ++j0) {
            const float a = l2 ? q[j0] - mn[j0] : q[j0];
            mx[0] = std::max(mx[0], std::fabs(a * st[j0]));
            part[0] += l2 ? static_cast<double>(a) * a : static_cast<double>(q[j0]) * mn[j0];
        }
        const float max_abs = std::max(std::max(mx[0], mx[1]), std::max(mx[2], mx[3]));
        const double bias = (part[0] + part[1]) + (part[2] + part[3]);
        const float unit = max_abs > 0 ? max_abs / 127.0f : 1.0f;
        const float inv = 1.0f / unit;
        // w_j = round(clamp(a_j step_j / unit)), ties to even; SSE2 sixteen at a time (cvtps2dq
        // rounds as cvtss2si does, and the packs cannot saturate values already in [-127, 127]).
        std::int8_t* w = out.weights.data();
        std::size_t j = 0;
#if defined(__SSE2__)
        {
            const __m128 vinv = _mm_set1_ps(inv), lo = _mm_set1_ps(-127.0f), hi = _mm_set1_ps(127.0f);
            auto four = [&](std::size_t k) {
                const __m128 qv = _mm_loadu_ps(q + k);
                const __m128 a = l2 ? _mm_sub_ps(qv, _mm_loadu_ps(mn + k)) : qv;
                const __m128 x = _mm_mul_ps(_mm_mul_ps(a, _mm_loadu_ps(st + k)), vinv);
                return _mm_cvtps_epi32(_mm_min_ps(_mm_max_ps(x, lo), hi));
            };
            for (; j + 16 <= dim_; j += 16) {
                const __m128i lo8 = _mm_packs_epi32(four(j), four(j + 4));
                const __m128i hi8 = _mm_packs_epi32(four(j + 8), four(j + 12));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(w + j), _mm_packs_epi16(lo8, hi8));
            }
        }
#endif
        for (; j < dim_; ++j) {
            const float x = (l2 ? q[j] - mn[j] : q[j]) * st[j];
            w[j] = static_cast<std::int8_t>(round_to_int(std::clamp(x * inv, -127.0f, 127.0f)));
        }
        out.scale = l2 ? 2 * unit : unit;
        out.bias = l2 ? static_cast<float>(bias) : 1.0f - static_cast<float>(bias);
        return true;
    }
    bool has_code_term() const noexcept override { return !four_ && is_l2(); }
    float code_term(const std::uint8_t* code) const noexcept override {
        if (!has_code_term()) return 0;
        double s = 0;
        for (std::size_t j = 0; j < dim_; ++j) {
            const double t = static_cast<double>(step_[j]) * code[j];
            s += t * t;
        }
        return static_cast<float>(s);
    }

    const std::vector<float>& min() const noexcept { return min_; }
    const std::vector<float>& step() const noexcept { return step_; }
    bool four() const noexcept { return four_; }
    const simd::CodeKernels& kernels() const noexcept { return kernels_; }

private:
    // Round to nearest, ties to even, like std::nearbyint in the default rounding mode, but one
    // instruction: the baseline x86-64 build would call libm's nearbyintf once per dimension per query.
    static int round_to_int(float x) noexcept {
#if defined(__SSE__)
        return _mm_cvtss_si32(_mm_set_ss(x));
#else
        return static_cast<int>(std::nearbyint(x));
#endif
    }
    unsigned quantise(float x, std::size_t j) const noexcept {
        if (!(step_[j] > 0)) return 0;
        const float t = std::nearbyint((x - min_[j]) / step_[j]);
        return static_cast<unsigned>(std::clamp(t, 0.0f, static_cast<float>(levels_)));
    }

    Status save_params(storage::FileWriter& w) const override {
        QUIVER_TRY(w.write_span(std::span<const float>(min_)));
        return w.write_span(std::span<const float>(step_));
    }
    Status load_params(storage::BinaryReader& r) override {
        QUIVER_TRY(read_floats(r, dim_, min_, "SQ minima"));
        QUIVER_TRY(read_floats(r, dim_, step_, "SQ steps"));
        for (float s : step_) {
            if (s < 0) return r.corrupt("SQ step is negative");
        }
        return {};
    }

    bool four_;
    unsigned levels_;
    const simd::CodeKernels& kernels_;
    std::vector<float> min_, step_;
};

class SqEstimator final : public CodeEstimator {
public:
    SqEstimator(const SqCodec& c, const float* q)
        : CodeEstimator(c.code_size()), dim_(c.dim()), l2_(c.metric() == simd::Metric::kL2), four_(c.four()),
          k_(c.kernels()), a_(c.dim()), s_(c.step()) {
        if (l2_) {
            for (std::size_t j = 0; j < dim_; ++j) a_[j] = q[j] - c.min()[j];
        } else {
            double base = 0;
            for (std::size_t j = 0; j < dim_; ++j) {
                a_[j] = q[j] * c.step()[j];
                base += static_cast<double>(q[j]) * c.min()[j];
            }
            offset_ = 1.0f - static_cast<float>(base);
        }
    }

    float distance(const std::uint8_t* code) const noexcept override {
        if (l2_) return four_ ? k_.u4_l2(a_.data(), s_.data(), code, dim_) : k_.u8_l2(a_.data(), s_.data(), code, dim_);
        return offset_ - (four_ ? k_.u4_dot(a_.data(), code, dim_) : k_.u8_dot(a_.data(), code, dim_));
    }

private:
    std::size_t dim_;
    bool l2_;
    bool four_;
    const simd::CodeKernels& k_;
    std::vector<float> a_;  // L2: q - min; IP: q * step
    const std::vector<float>& s_;
    float offset_ = 0;      // IP: 1 - <q, min>
};

std::unique_ptr<CodeEstimator> SqCodec::estimator(const float* query) const {
    return std::make_unique<SqEstimator>(*this, query);
}

}  // namespace

std::unique_ptr<Codec> make_sq_codec(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                     std::uint64_t seed) {
    return std::make_unique<SqCodec>(spec, dim, metric, seed);
}

}  // namespace quiver::index::detail
