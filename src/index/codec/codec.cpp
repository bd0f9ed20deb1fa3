#include "quiver/index/codec.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

#include "index/codec/codecs.h"

namespace quiver::index {
namespace {

std::string_view kind_name(CodecKind k) {
    switch (k) {
        case CodecKind::kNone: return "none";
        case CodecKind::kSq8: return "sq8";
        case CodecKind::kSq4: return "sq4";
        case CodecKind::kPq: return "pq";
        case CodecKind::kRabitq: return "rabitq";
        case CodecKind::kBinary: return "binary";
    }
    return "?";
}

bool parse_uint(std::string_view s, std::uint32_t& out) {
    if (s.empty() || s.size() > 6) return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

Error bad_spec(std::string_view s, std::string_view why) {
    return invalid_argument(fmt::format(
        "invalid codec '{}': {} (expected none, sq8, sq4, pq<M>x<4|8>, rabitq<1|2|4|8> or binary<1..8>)", s, why));
}

}  // namespace

Result<CodecSpec> CodecSpec::parse(std::string_view s) {
    CodecSpec c;
    if (s == "none" || s.empty()) return c;
    if (s == "sq8") return CodecSpec{CodecKind::kSq8, 0, 8};
    if (s == "sq4") return CodecSpec{CodecKind::kSq4, 0, 4};
    if (s.starts_with("pq")) {
        const auto body = s.substr(2);
        const auto x = body.find('x');
        if (x == std::string_view::npos) return bad_spec(s, "PQ needs pq<M>x<bits>, e.g. pq16x8");
        c.kind = CodecKind::kPq;
        if (!parse_uint(body.substr(0, x), c.m) || c.m == 0) return bad_spec(s, "M must be a positive integer");
        if (!parse_uint(body.substr(x + 1), c.bits) || (c.bits != 4 && c.bits != 8)) {
            return bad_spec(s, "PQ bits must be 4 or 8");
        }
        return c;
    }
    if (s.starts_with("rabitq")) {
        c.kind = CodecKind::kRabitq;
        if (!parse_uint(s.substr(6), c.bits) || (c.bits != 1 && c.bits != 2 && c.bits != 4 && c.bits != 8)) {
            return bad_spec(s, "RaBitQ bits must be 1, 2, 4 or 8");
        }
        return c;
    }
    if (s.starts_with("binary")) {
        c.kind = CodecKind::kBinary;
        if (!parse_uint(s.substr(6), c.bits) || c.bits < 1 || c.bits > 8) {
            return bad_spec(s, "binary planes must be 1 to 8");
        }
        return c;
    }
    return bad_spec(s, "unknown codec");
}

std::string CodecSpec::to_string() const {
    switch (kind) {
        case CodecKind::kNone:
        case CodecKind::kSq8:
        case CodecKind::kSq4: return std::string(kind_name(kind));
        case CodecKind::kPq: return fmt::format("pq{}x{}", m, bits);
        case CodecKind::kRabitq:
        case CodecKind::kBinary: return fmt::format("{}{}", kind_name(kind), bits);
    }
    return "?";
}

void CodeEstimator::scan(const std::uint8_t* packed, std::size_t n, float* out, float* err) const noexcept {
    for (std::size_t i = 0; i < n; ++i) out[i] = distance(packed + i * code_size_);
    if (err != nullptr) std::memset(err, 0, n * sizeof(float));
}

std::size_t CodeEstimator::scan_below(const std::uint8_t* packed, std::size_t n, float limit, std::uint32_t* sel,
                                      float* out) const noexcept {
    scan(packed, n, out, nullptr);
    std::size_t m = 0;  // compacted in place (m <= i), branch-free
    for (std::size_t i = 0; i < n; ++i) {
        const float e = out[i];
        sel[m] = static_cast<std::uint32_t>(i);
        out[m] = e;
        m += e <= limit ? 1 : 0;
    }
    return m;
}

void Codec::pack(const std::uint8_t* codes, std::size_t n, std::uint8_t* packed) const {
    std::memcpy(packed, codes, n * code_size());
    const std::size_t total = packed_bytes(n);
    if (total > n * code_size()) std::memset(packed + n * code_size(), 0, total - n * code_size());
}

void Codec::unpack(const std::uint8_t* packed, std::size_t i, std::uint8_t* code) const {
    std::memcpy(code, packed + i * code_size(), code_size());
}

Status Codec::check_train(MatrixView<float> sample) const {
    if (sample.dim != dim_) {
        return invalid_argument(fmt::format("training rows have dimension {}, the codec has {}", sample.dim, dim_));
    }
    if (sample.rows < min_train_rows()) {
        return invalid_argument(fmt::format("codec {} needs at least {} training vectors, got {}",
                                            spec_.to_string(), min_train_rows(), sample.rows));
    }
    return {};
}

Result<std::unique_ptr<Codec>> Codec::create(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                             std::uint64_t seed) {
    if (dim == 0 || dim > (1u << 16)) {
        return invalid_argument(fmt::format("dimension {} is out of range (1 to 65536)", dim));
    }
    switch (spec.kind) {
        case CodecKind::kNone:
            if (spec.bits != 0 || spec.m != 0) break;
            return detail::make_float_codec(spec, dim, metric, seed);
        case CodecKind::kSq8:
        case CodecKind::kSq4:
            if (spec.bits != (spec.kind == CodecKind::kSq8 ? 8u : 4u) || spec.m != 0) break;
            return detail::make_sq_codec(spec, dim, metric, seed);
        case CodecKind::kPq:
            if ((spec.bits != 4 && spec.bits != 8) || spec.m == 0) break;
            if (dim % spec.m != 0) {
                return invalid_argument(fmt::format("PQ's M ({}) must divide the dimension ({})", spec.m, dim));
            }
            if (spec.bits == 4 && spec.m > 256) {
                return invalid_argument(fmt::format("4-bit PQ takes at most 256 sub-quantisers, not {}", spec.m));
            }
            return detail::make_pq_codec(spec, dim, metric, seed);
        case CodecKind::kRabitq:
            if ((spec.bits != 1 && spec.bits != 2 && spec.bits != 4 && spec.bits != 8) || spec.m != 0) break;
            return detail::make_rabitq_codec(spec, dim, metric, seed);
        case CodecKind::kBinary:
            if (spec.bits < 1 || spec.bits > 8 || spec.m != 0) break;
            return detail::make_binary_codec(spec, dim, metric, seed);
    }
    return invalid_argument(fmt::format("invalid codec spec '{}'", spec.to_string()));
}

// Codec section: u8 kind | u8 0 | u16 0 | u32 m | u32 bits | u32 metric | u64 dim | u64 seed, then the
// codec's parameters (each codec documents its own), then u32 'CODE' as an end marker.
namespace {
constexpr std::uint32_t kCodecEnd = storage::fourcc("CODE");
}

Status Codec::save(storage::FileWriter& w) const {
    QUIVER_TRY(w.write_pod<std::uint8_t>(static_cast<std::uint8_t>(spec_.kind)));
    QUIVER_TRY(w.write_pod<std::uint8_t>(0));
    QUIVER_TRY(w.write_pod<std::uint16_t>(0));
    QUIVER_TRY(w.write_pod<std::uint32_t>(spec_.m));
    QUIVER_TRY(w.write_pod<std::uint32_t>(spec_.bits));
    QUIVER_TRY(w.write_pod<std::uint32_t>(static_cast<std::uint32_t>(metric_)));
    QUIVER_TRY(w.write_pod<std::uint64_t>(dim_));
    QUIVER_TRY(w.write_pod<std::uint64_t>(seed_));
    QUIVER_TRY(save_params(w));
    return w.write_pod<std::uint32_t>(kCodecEnd);
}

Result<std::unique_ptr<Codec>> Codec::load(storage::BinaryReader& r) {
    QUIVER_ASSIGN_OR_RETURN(std::uint8_t kind, r.read_pod<std::uint8_t>());
    QUIVER_TRY(r.skip(3));
    CodecSpec spec;
    spec.kind = static_cast<CodecKind>(kind);
    QUIVER_ASSIGN_OR_RETURN(spec.m, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(spec.bits, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint32_t metric, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t dim, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t seed, r.read_pod<std::uint64_t>());
    if (kind > static_cast<std::uint8_t>(CodecKind::kBinary)) {
        return r.corrupt(fmt::format("unknown codec kind {}", kind));
    }
    if (metric > 2) return r.corrupt(fmt::format("invalid codec metric {}", metric));
    auto codec = create(spec, dim, static_cast<simd::Metric>(metric), seed);
    if (!codec) return r.corrupt(fmt::format("invalid codec parameters: {}", codec.error().message()));
    QUIVER_TRY((*codec)->load_params(r));
    QUIVER_ASSIGN_OR_RETURN(std::uint32_t end, r.read_pod<std::uint32_t>());
    if (end != kCodecEnd) return r.corrupt("codec section does not end with its marker");
    (*codec)->trained_ = true;
    return std::move(*codec);
}

namespace detail {
namespace {

// kNone: the code is the float32 vector; estimates are the float kernels' distances.
class FloatCodec final : public Codec {
public:
    FloatCodec(const CodecSpec& spec, std::size_t dim, simd::Metric metric, std::uint64_t seed)
        : Codec(spec, dim, metric, seed), distance_(simd::distance_fn(metric)) {
        trained_ = true;
    }
    std::size_t code_size() const noexcept override { return dim_ * sizeof(float); }
    std::size_t parameter_bytes() const noexcept override { return 0; }
    Status train(MatrixView<float> sample) override { return check_train(sample); }
    void encode(MatrixView<float> rows, std::uint8_t* codes) const override {
        std::memcpy(codes, rows.data, rows.rows * dim_ * sizeof(float));
    }
    void decode(const std::uint8_t* codes, std::size_t n, float* out) const override {
        std::memcpy(out, codes, n * dim_ * sizeof(float));
    }
    std::unique_ptr<CodeEstimator> estimator(const float* query) const override {
        return std::make_unique<Estimator>(*this, query);
    }

private:
    class Estimator final : public CodeEstimator {
    public:
        Estimator(const FloatCodec& c, const float* q)
            : CodeEstimator(c.code_size()), q_(q, q + c.dim()), fn_(c.distance_) {}
        float distance(const std::uint8_t* code) const noexcept override {
            return fn_(q_.data(), reinterpret_cast<const float*>(code), q_.size());
        }

    private:
        std::vector<float> q_;
        simd::DistanceFn fn_;
    };
    Status save_params(storage::FileWriter&) const override { return {}; }
    Status load_params(storage::BinaryReader&) override { return {}; }
    simd::DistanceFn distance_;
};

}  // namespace

std::unique_ptr<Codec> make_float_codec(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                        std::uint64_t seed) {
    return std::make_unique<FloatCodec>(spec, dim, metric, seed);
}

Status read_floats(storage::BinaryReader& r, std::size_t count, std::vector<float>& out, const char* what) {
    if (count > r.remaining() / sizeof(float)) return r.corrupt(fmt::format("{} are truncated", what));
    out.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
        QUIVER_ASSIGN_OR_RETURN(out[i], r.read_pod<float>());
        if (!std::isfinite(out[i])) return r.corrupt(fmt::format("{} hold a non-finite value", what));
    }
    return {};
}

}  // namespace detail
}  // namespace quiver::index
