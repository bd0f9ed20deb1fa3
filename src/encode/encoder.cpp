#include "quiver/encode/encoder.h"

#include <fmt/format.h>

#include <cctype>
#include <filesystem>

#include "encode/bert_encoder.h"
#include "encode/decoder.h"
#include "encode/static_encoders.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/storage/file_format.h"

namespace quiver::encode {

namespace fs = std::filesystem;

std::string_view to_string(OutputKind k) noexcept {
    switch (k) {
        case OutputKind::kDense: return "dense";
        case OutputKind::kSparse: return "sparse";
        case OutputKind::kMultiVector: return "multivector";
    }
    return "?";
}

Result<OutputKind> parse_output_kind(std::string_view s) {
    if (s == "dense") return OutputKind::kDense;
    if (s == "sparse") return OutputKind::kSparse;
    if (s == "multivector" || s == "multi-vector") return OutputKind::kMultiVector;
    return invalid_argument(fmt::format("unknown output kind '{}' (dense, sparse, multivector)", s));
}

namespace {

// True when the folder holds a model2vec model (config model_type, or a StaticEmbedding module).
Result<bool> is_model2vec(const std::string& dir) {
    const std::string cfg = (fs::path(dir) / "config.json").string();
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(cfg));
    auto doc = json::parse(text);
    if (!doc) return std::move(doc).error().with_context(fmt::format("parsing '{}'", cfg));
    if (const json::Value* mt = doc->find("model_type"); mt != nullptr && mt->is_string() && mt->as_string() == "model2vec") {
        return true;
    }
    const std::string mods = (fs::path(dir) / "modules.json").string();
    if (fs::exists(mods)) {
        QUIVER_ASSIGN_OR_RETURN(std::string mtext, storage::read_file(mods));
        return mtext.find("StaticEmbedding") != std::string::npos;
    }
    return false;
}

// True when config.json names a decoder-only model type (qwen2, mistral, llama, ...).
Result<bool> is_decoder(const std::string& dir) {
    const std::string cfg = (fs::path(dir) / "config.json").string();
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(cfg));
    auto doc = json::parse(text);
    if (!doc) return std::move(doc).error().with_context(fmt::format("parsing '{}'", cfg));
    const json::Value* mt = doc->find("model_type");
    return mt != nullptr && mt->is_string() && detail::DecoderConfig::is_decoder(mt->as_string());
}

}  // namespace

Result<std::unique_ptr<Encoder>> load_encoder(const std::string& dir, const LoadOptions& options) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return not_found(fmt::format("model folder '{}' does not exist", dir));
    auto ctx = [&](Error e) { return std::move(e).with_context(fmt::format("loading model '{}'", dir)); };
    if (fs::exists(fs::path(dir) / "config.json")) {
        auto m2v = is_model2vec(dir);
        if (!m2v) return ctx(std::move(m2v).error());
        if (*m2v) {
            auto r = detail::Model2VecEncoder::load(dir, options);
            if (!r) return ctx(std::move(r).error());
            return std::unique_ptr<Encoder>(std::move(*r));
        }
        auto decoder = is_decoder(dir);
        if (!decoder) return ctx(std::move(decoder).error());
        if (*decoder) {
            auto r = detail::DecoderEncoder::load(dir, options);
            if (!r) return ctx(std::move(r).error());
            return std::unique_ptr<Encoder>(std::move(*r));
        }
        auto r = detail::BertEncoder::load(dir, options);
        if (!r) return ctx(std::move(r).error());
        return std::unique_ptr<Encoder>(std::move(*r));
    }
    if (fs::exists(fs::path(dir) / "vocab.txt")) {
        auto r = detail::WordVectorEncoder::load(dir, options);
        if (!r) return ctx(std::move(r).error());
        return std::unique_ptr<Encoder>(std::move(*r));
    }
    return ctx(not_found("not a model folder: expected config.json (+ model.safetensors, tokenizer.json) "
                         "or vocab.txt + base.fvecs"));
}

// ---------------------------------------------------------------------------------------------
// HashingEncoder

HashingEncoder::HashingEncoder(std::size_t dim, std::uint64_t seed) : seed_(seed) {
    info_.name = fmt::format("hashing-{}", dim);
    info_.family = "hashing";
    info_.dim = dim == 0 ? 1 : dim;
    info_.sparse_dim = info_.dim;
    info_.outputs = {OutputKind::kDense, OutputKind::kSparse};
    info_.normalized = true;
}

Result<Embeddings> HashingEncoder::encode(std::span<const std::string_view> texts, const EncodeOptions& options) {
    if (options.kind == OutputKind::kMultiVector) return invalid_argument("the hashing encoder has no multivector output");
    const std::size_t dim = info_.dim;
    Embeddings out;
    out.kind = options.kind;
    if (options.kind == OutputKind::kDense) out.dense = Matrix<float>(texts.size(), dim);
    else out.sparse.resize(texts.size());
    std::vector<float> counts(dim);
    for (std::size_t i = 0; i < texts.size(); ++i) {
        if (!json::valid_utf8(texts[i])) return invalid_argument(fmt::format("text {} is not valid UTF-8", i));
        std::fill(counts.begin(), counts.end(), 0.0f);
        std::uint64_t h = 0xcbf29ce484222325ull ^ seed_;
        bool in_word = false;
        auto flush = [&] {
            if (!in_word) return;
            const std::size_t bucket = static_cast<std::size_t>(h % dim);
            const float sign = options.kind == OutputKind::kDense && ((h >> 63) & 1u) ? -1.0f : 1.0f;
            counts[bucket] += sign;
            h = 0xcbf29ce484222325ull ^ seed_;
            in_word = false;
        };
        for (char ch : texts[i]) {
            const auto c = static_cast<unsigned char>(ch);
            if (std::isalnum(c) != 0 || c >= 0x80) {
                h = (h ^ static_cast<unsigned char>(std::tolower(c))) * 0x100000001b3ull;
                in_word = true;
            } else {
                flush();
            }
        }
        flush();
        if (options.kind == OutputKind::kDense) {
            std::copy(counts.begin(), counts.end(), out.dense.row_ptr(i));
            simd::normalize(out.dense.row_ptr(i), dim);
        } else {
            for (std::size_t b = 0; b < dim; ++b) {
                if (counts[b] != 0.0f) {
                    out.sparse[i].ids.push_back(static_cast<std::uint32_t>(b));
                    out.sparse[i].weights.push_back(counts[b]);
                }
            }
        }
        if (options.progress != nullptr) options.progress->add(1);
    }
    return out;
}

}  // namespace quiver::encode
