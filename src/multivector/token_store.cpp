// Token-vector store: build, int8 codes, sections, 'MVTS' files, and the multi-vector JSONL reader.
#include "quiver/multivector/token_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <unordered_set>

#include "quiver/core/json.h"

namespace quiver::multivector {

std::string_view to_string(TokenCodec c) noexcept {
    return c == TokenCodec::kInt8 ? "int8" : "float32";
}

Result<TokenCodec> parse_token_codec(std::string_view s) {
    if (s == "float32" || s == "f32") return TokenCodec::kFloat32;
    if (s == "int8" || s == "i8") return TokenCodec::kInt8;
    return invalid_argument(fmt::format("unknown token codec '{}' (expected float32 or int8)", s));
}

void TokenStore::decode_rows(std::size_t first, std::size_t count, float* out) const noexcept {
    if (codec_ == TokenCodec::kFloat32) {
        std::copy_n(floats_.data() + first * dim_, count * dim_, out);
        return;
    }
    for (std::size_t r = 0; r < count; ++r) {
        const float s = scales_[first + r];
        const std::int8_t* c = codes_.data() + (first + r) * dim_;
        float* o = out + r * dim_;
        for (std::size_t j = 0; j < dim_; ++j) o[j] = static_cast<float>(c[j]) * s;
    }
}

float quantize_int8_row(const float* x, std::size_t dim, std::int8_t* codes) noexcept {
    float amax = 0.0f;
    for (std::size_t j = 0; j < dim; ++j) amax = std::max(amax, std::abs(x[j]));
    const float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
    for (std::size_t j = 0; j < dim; ++j) {
        codes[j] = static_cast<std::int8_t>(std::clamp(std::nearbyint(x[j] / scale), -127.0f, 127.0f));
    }
    return scale;
}

TokenStoreBuilder::TokenStoreBuilder(std::size_t dim, TokenCodec codec) : dim_(dim), codec_(codec) {}

Status TokenStoreBuilder::add(MatrixView<float> tokens) {
    if (tokens.rows > 0 && tokens.dim != dim_) {
        return invalid_argument(
            fmt::format("document {} has token vectors of dimension {}, the store has {}", size(), tokens.dim, dim_));
    }
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (!std::isfinite(tokens.data[i])) {
            return invalid_argument(fmt::format("document {} token {} has a non-finite value", size(), i / dim_));
        }
    }
    if (codec_ == TokenCodec::kFloat32) {
        floats_.insert(floats_.end(), tokens.data, tokens.data + tokens.size());
    } else {
        const std::size_t first = codes_.size();
        codes_.resize(first + tokens.rows * dim_);
        for (std::size_t r = 0; r < tokens.rows; ++r) {
            scales_.push_back(quantize_int8_row(tokens.row_ptr(r), dim_, codes_.data() + first + r * dim_));
        }
    }
    offsets_.push_back(offsets_.back() + tokens.rows);
    return {};
}

TokenStore TokenStoreBuilder::finish() && {
    TokenStore s;
    s.dim_ = dim_;
    s.codec_ = codec_;
    s.offsets_ = storage::Buffer<std::uint64_t>(std::move(offsets_));
    s.floats_ = storage::Buffer<float>(std::move(floats_));
    s.codes_ = storage::Buffer<std::int8_t>(std::move(codes_));
    s.scales_ = storage::Buffer<float>(std::move(scales_));
    return s;
}

Status TokenStore::write(storage::FileWriter& w) const {
    QUIVER_TRY(w.write_pod<std::uint32_t>(static_cast<std::uint32_t>(codec_)));
    QUIVER_TRY(w.write_pod<std::uint64_t>(dim_));
    QUIVER_TRY(storage::write_buffer(w, offsets_.span()));
    if (codec_ == TokenCodec::kFloat32) return storage::write_buffer(w, floats_.span());
    QUIVER_TRY(storage::write_buffer(w, scales_.span()));
    return storage::write_buffer(w, codes_.span());
}

namespace {

template <class T>
storage::Buffer<T> own_copy(const storage::Buffer<T>& b) {
    return storage::Buffer<T>(std::vector<T>(b.span().begin(), b.span().end()));
}

}  // namespace

Result<TokenStore> TokenStore::read(storage::BinaryReader& r, const TokenStoreOpenOptions& options) {
    TokenStore s;
    QUIVER_ASSIGN_OR_RETURN(std::uint32_t codec, r.read_pod<std::uint32_t>());
    if (codec > 1) return r.corrupt(fmt::format("token store: unknown codec {}", codec));
    s.codec_ = static_cast<TokenCodec>(codec);
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t dim, r.read_pod<std::uint64_t>());
    if (dim == 0 || dim > (1u << 16)) return r.corrupt(fmt::format("token store: dimension {} out of range", dim));
    s.dim_ = static_cast<std::size_t>(dim);
    QUIVER_ASSIGN_OR_RETURN(s.offsets_, storage::read_buffer<std::uint64_t>(r, "token store offsets"));
    if (s.offsets_.empty() || s.offsets_[0] != 0) return r.corrupt("token store: offsets do not start at 0");
    for (std::size_t i = 1; i < s.offsets_.size(); ++i) {
        if (s.offsets_[i] < s.offsets_[i - 1]) return r.corrupt("token store: offsets are not monotone");
    }
    const std::uint64_t rows = s.offsets_[s.offsets_.size() - 1];
    if (s.codec_ == TokenCodec::kFloat32) {
        QUIVER_ASSIGN_OR_RETURN(s.floats_, storage::read_buffer<float>(r, "token store rows"));
        if (s.floats_.size() / s.dim_ != rows || s.floats_.size() % s.dim_ != 0) {
            return r.corrupt(fmt::format("token store: {} values for {} rows of {}", s.floats_.size(), rows, s.dim_));
        }
    } else {
        QUIVER_ASSIGN_OR_RETURN(s.scales_, storage::read_buffer<float>(r, "token store scales"));
        QUIVER_ASSIGN_OR_RETURN(s.codes_, storage::read_buffer<std::int8_t>(r, "token store codes"));
        if (s.scales_.size() != rows || s.codes_.size() / s.dim_ != rows || s.codes_.size() % s.dim_ != 0) {
            return r.corrupt(fmt::format("token store: {} scales and {} codes for {} rows of {}", s.scales_.size(),
                                         s.codes_.size(), rows, s.dim_));
        }
        for (std::size_t i = 0; i < s.scales_.size(); ++i) {
            if (!std::isfinite(s.scales_[i]) || s.scales_[i] < 0.0f) {
                return r.corrupt(fmt::format("token store: row {} has scale {}", i, s.scales_[i]));
            }
        }
    }
    if (options.in_memory) {
        s.offsets_ = own_copy(s.offsets_);
        s.floats_ = own_copy(s.floats_);
        s.codes_ = own_copy(s.codes_);
        s.scales_ = own_copy(s.scales_);
    }
    return s;
}

Status TokenStore::save(const std::string& path) const {
    QUIVER_ASSIGN_OR_RETURN(storage::FileWriter w, storage::FileWriter::create(path, kTokenStoreFileKind, kFormatVersion));
    QUIVER_TRY(write(w));
    return w.finish();
}

Result<TokenStore> TokenStore::open(const std::string& path, const TokenStoreOpenOptions& options) {
    QUIVER_ASSIGN_OR_RETURN(storage::MappedFile file, storage::MappedFile::open(path));
    auto mapping = std::make_shared<storage::MappedFile>(std::move(file));
    QUIVER_ASSIGN_OR_RETURN(storage::BinaryReader r, storage::open_payload(*mapping, kTokenStoreFileKind, kFormatVersion));
    QUIVER_ASSIGN_OR_RETURN(TokenStore s, read(r, options));
    if (r.remaining() != 0) return r.corrupt("token store: trailing bytes after the rows");
    if (!options.in_memory) s.mapping_ = std::move(mapping);
    return s;
}

// ---------------------------------------------------------------------------------------------
// JSONL reader

Result<MultiVectorSet> read_multivector_jsonl(const std::string& path, std::size_t max_docs) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return not_found(fmt::format("cannot open '{}'", path));
    MultiVectorSet out;
    std::unordered_set<std::string> seen;
    std::string line;
    std::size_t lineno = 0;
    auto where = [&] { return fmt::format("'{}' line {}", path, lineno); };
    while (std::getline(in, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        if (max_docs > 0 && out.docs.size() >= max_docs) break;
        auto parsed = json::parse(line);
        if (!parsed) return invalid_argument(fmt::format("{}: {}", where(), parsed.error().message()));
        const json::Value& v = *parsed;
        const json::Value* id = v.find("id");
        if (id == nullptr) id = v.find("_id");
        const json::Value* vecs = v.find("vectors");
        if (id == nullptr || vecs == nullptr || !vecs->is_array()) {
            return invalid_argument(fmt::format("{}: expected {{\"id\": ..., \"vectors\": [[...], ...]}}", where()));
        }
        std::string name = id->is_string() ? id->as_string()
                           : id->is_integer() ? std::to_string(id->as_int())
                                              : std::string();
        if (name.empty()) return invalid_argument(fmt::format("{}: the id must be a non-empty string or an integer", where()));
        if (!seen.insert(name).second) return invalid_argument(fmt::format("{}: duplicate id '{}'", where(), name));
        const auto& rows = vecs->as_array();
        Matrix<float> m;
        if (!rows.empty()) {
            if (!rows[0].is_array() || rows[0].as_array().empty()) {
                return invalid_argument(fmt::format("{}: \"vectors\" must be an array of non-empty number arrays", where()));
            }
            const std::size_t dim = rows[0].as_array().size();
            if (out.dim == 0) out.dim = dim;
            if (dim != out.dim) {
                return invalid_argument(fmt::format("{}: token vectors of dimension {}, earlier lines have {}", where(),
                                                    dim, out.dim));
            }
            m = Matrix<float>(rows.size(), dim);
            for (std::size_t r = 0; r < rows.size(); ++r) {
                if (!rows[r].is_array() || rows[r].as_array().size() != dim) {
                    return invalid_argument(fmt::format("{}: token {} is not an array of {} numbers", where(), r, dim));
                }
                const auto& vals = rows[r].as_array();
                for (std::size_t j = 0; j < dim; ++j) {
                    if (!vals[j].is_number() || !std::isfinite(vals[j].as_number())) {
                        return invalid_argument(fmt::format("{}: token {} value {} is not a finite number", where(), r, j));
                    }
                    m.row_ptr(r)[j] = static_cast<float>(vals[j].as_number());
                }
            }
        }
        out.ids.push_back(std::move(name));
        out.docs.push_back(std::move(m));
    }
    if (in.bad()) return io_error(fmt::format("reading '{}' failed", path));
    if (out.docs.empty()) return invalid_argument(fmt::format("'{}' holds no documents", path));
    if (out.dim == 0) return invalid_argument(fmt::format("'{}': every document has zero token vectors", path));
    return out;
}

}  // namespace quiver::multivector
