#include "quiver/encode/safetensors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>

#include "quiver/core/json.h"

namespace quiver::encode {

namespace {

std::size_t dtype_size(TensorDtype d) noexcept {
    switch (d) {
        case TensorDtype::kF32: case TensorDtype::kI32: return 4;
        case TensorDtype::kF16: case TensorDtype::kBF16: return 2;
        case TensorDtype::kF64: case TensorDtype::kI64: return 8;
        case TensorDtype::kI8: return 1;
    }
    return 1;
}

Result<TensorDtype> parse_dtype(const std::string& s) {
    if (s == "F32") return TensorDtype::kF32;
    if (s == "F16") return TensorDtype::kF16;
    if (s == "BF16") return TensorDtype::kBF16;
    if (s == "F64") return TensorDtype::kF64;
    if (s == "I8") return TensorDtype::kI8;
    if (s == "I32") return TensorDtype::kI32;
    if (s == "I64") return TensorDtype::kI64;
    return unimplemented(fmt::format("tensor dtype '{}' (readable: F32, F16, BF16, F64, I8, I32, I64)", s));
}

float half_to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
    std::uint32_t exp = (h >> 10) & 0x1F;
    std::uint32_t mant = h & 0x3FF;
    std::uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: renormalise
            exp = 127 - 15 + 1;
            while ((mant & 0x400) == 0) {
                mant <<= 1;
                --exp;
            }
            mant &= 0x3FF;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

}  // namespace

std::string_view to_string(TensorDtype d) noexcept {
    switch (d) {
        case TensorDtype::kF32: return "F32";
        case TensorDtype::kF16: return "F16";
        case TensorDtype::kBF16: return "BF16";
        case TensorDtype::kF64: return "F64";
        case TensorDtype::kI8: return "I8";
        case TensorDtype::kI32: return "I32";
        case TensorDtype::kI64: return "I64";
    }
    return "?";
}

std::string shape_string(const std::vector<std::size_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::size_t TensorInfo::numel() const noexcept {
    // Validated on open: the product fits (it is at most the file's byte count).
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
}

namespace {

// Headers above this are refused before parsing (the safetensors format caps them at 100 MB).
constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;

bool checked_mul(std::size_t a, std::size_t b, std::size_t& out) noexcept { return !__builtin_mul_overflow(a, b, &out); }

}  // namespace

Result<SafeTensors> SafeTensors::open(const std::string& path) {
    auto ctx = [&](Error e) { return std::move(e).with_context(fmt::format("reading '{}'", path)); };
    auto mapped = storage::MappedFile::open(path);
    if (!mapped) return ctx(std::move(mapped).error());
    SafeTensors st;
    st.file_ = std::move(*mapped);
    const auto bytes = st.file_.bytes();
    if (bytes.size() < 8) return ctx(data_loss(fmt::format("file of {} bytes is too short for a safetensors header", bytes.size())));
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<std::uint8_t>(bytes[static_cast<std::size_t>(i)]);
    if (header_len > bytes.size() - 8) {
        return ctx(data_loss(fmt::format("header length {} exceeds the file size {}", header_len, bytes.size())));
    }
    if (header_len > kMaxHeaderBytes) {
        return ctx(data_loss(fmt::format("header length {} is above the format's limit of {}", header_len, kMaxHeaderBytes)));
    }
    const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + 8, static_cast<std::size_t>(header_len));
    auto doc = json::parse(header);
    if (!doc) return ctx(Error(ErrorCode::kDataLoss, "header is not JSON: " + doc.error().message()));
    if (!doc->is_object()) return ctx(data_loss("header is not a JSON object"));
    const std::size_t data_begin = 8 + static_cast<std::size_t>(header_len);
    const std::size_t data_size = bytes.size() - data_begin;
    for (const auto& [name, entry] : doc->as_object()) {
        if (name == "__metadata__") continue;
        if (!entry.is_object()) return ctx(data_loss(fmt::format("tensor '{}' is not a JSON object", name)));
        const json::Value* dtype = entry.find("dtype");
        const json::Value* shape = entry.find("shape");
        const json::Value* offsets = entry.find("data_offsets");
        if (dtype == nullptr || !dtype->is_string() || shape == nullptr || !shape->is_array() ||
            offsets == nullptr || !offsets->is_array() || offsets->as_array().size() != 2) {
            return ctx(data_loss(fmt::format("tensor '{}' lacks dtype, shape or data_offsets", name)));
        }
        auto dt = parse_dtype(dtype->as_string());
        if (!dt) return ctx(std::move(dt).error().with_context(fmt::format("tensor '{}'", name)));
        TensorInfo info;
        info.dtype = *dt;
        // Element and byte counts in checked arithmetic: a crafted shape must not wrap around.
        std::size_t numel = 1;
        for (const auto& d : shape->as_array()) {
            if (!d.is_integer() || d.as_int() < 0) return ctx(data_loss(fmt::format("tensor '{}' has an invalid shape", name)));
            info.shape.push_back(static_cast<std::size_t>(d.as_int()));
            if (!checked_mul(numel, info.shape.back(), numel)) {
                return ctx(data_loss(fmt::format("tensor '{}' shape {} overflows the element count", name,
                                                 shape_string(info.shape))));
            }
        }
        std::size_t nbytes = 0;
        if (!checked_mul(numel, dtype_size(info.dtype), nbytes)) {
            return ctx(data_loss(fmt::format("tensor '{}' {} has more bytes than the file", name, shape_string(info.shape))));
        }
        const auto& off = offsets->as_array();
        if (!off[0].is_integer() || !off[1].is_integer() || off[0].as_int() < 0 || off[1].as_int() < off[0].as_int() ||
            static_cast<std::uint64_t>(off[1].as_int()) > data_size) {
            return ctx(data_loss(fmt::format("tensor '{}' has data_offsets outside the {} data bytes", name, data_size)));
        }
        const auto begin = static_cast<std::size_t>(off[0].as_int());
        const auto end = static_cast<std::size_t>(off[1].as_int());
        if (end - begin != nbytes) {
            return ctx(data_loss(fmt::format("tensor '{}' {} {} needs {} bytes, data_offsets give {}", name,
                                             to_string(info.dtype), shape_string(info.shape), nbytes, end - begin)));
        }
        info.bytes = bytes.subspan(data_begin + begin, end - begin);
        st.tensors_.emplace(name, std::move(info));
    }
    return st;
}

Result<const TensorInfo*> SafeTensors::find(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return not_found(fmt::format("tensor '{}' is missing from '{}'", name, path()));
    return &it->second;
}

Result<std::vector<float>> SafeTensors::to_float(const std::string& name,
                                                 const std::vector<std::size_t>& expected_shape) const {
    QUIVER_ASSIGN_OR_RETURN(const TensorInfo* t, find(name));
    if (!expected_shape.empty() && t->shape != expected_shape) {
        return invalid_argument(fmt::format("tensor '{}' in '{}' has shape {}, config.json implies {}", name, path(),
                                            shape_string(t->shape), shape_string(expected_shape)));
    }
    const std::size_t n = t->numel();
    std::vector<float> out(n);
    const std::byte* p = t->bytes.data();
    switch (t->dtype) {
        case TensorDtype::kF32:
            std::memcpy(out.data(), p, n * 4);
            break;
        case TensorDtype::kF16:
            for (std::size_t i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                out[i] = half_to_float(h);
            }
            break;
        case TensorDtype::kBF16:
            for (std::size_t i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
                std::memcpy(&out[i], &bits, 4);
            }
            break;
        case TensorDtype::kF64:
            for (std::size_t i = 0; i < n; ++i) {
                double d;
                std::memcpy(&d, p + 8 * i, 8);
                out[i] = static_cast<float>(d);
            }
            break;
        case TensorDtype::kI8:
            for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<std::int8_t>(p[i]));
            break;
        case TensorDtype::kI32:
            for (std::size_t i = 0; i < n; ++i) {
                std::int32_t v;
                std::memcpy(&v, p + 4 * i, 4);
                out[i] = static_cast<float>(v);
            }
            break;
        case TensorDtype::kI64:
            return invalid_argument(fmt::format("tensor '{}' in '{}' is I64, not a float tensor", name, path()));
    }
    return out;
}

Result<std::vector<std::int64_t>> SafeTensors::to_int64(const std::string& name) const {
    QUIVER_ASSIGN_OR_RETURN(const TensorInfo* t, find(name));
    const std::size_t n = t->numel();
    std::vector<std::int64_t> out(n);
    const std::byte* p = t->bytes.data();
    switch (t->dtype) {
        case TensorDtype::kI8:
            for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::int8_t>(p[i]);
            return out;
        case TensorDtype::kI32:
            for (std::size_t i = 0; i < n; ++i) {
                std::int32_t v;
                std::memcpy(&v, p + 4 * i, 4);
                out[i] = v;
            }
            return out;
        case TensorDtype::kI64:
            std::memcpy(out.data(), p, n * 8);
            return out;
        default:
            return invalid_argument(fmt::format("tensor '{}' in '{}' is {}, not an integer tensor", name, path(),
                                                to_string(t->dtype)));
    }
}

}  // namespace quiver::encode
