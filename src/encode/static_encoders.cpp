#include "encode/static_encoders.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>

#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/core/thread_pool.h"
#include "quiver/encode/safetensors.h"
#include "quiver/storage/file_format.h"
#include "quiver/storage/vector_io.h"

namespace quiver::encode::detail {

namespace fs = std::filesystem;

namespace {

std::string join(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

std::string folder_name(const std::string& dir) {
    std::string n = fs::path(dir).filename().string();
    return n.empty() ? fs::path(dir).parent_path().filename().string() : n;
}

// Runs fn(i) for every text on a pool sized by `threads`; returns the first error by text index.
Status for_each_text(std::size_t threads, std::size_t n, const std::function<Status(std::size_t)>& fn,
                     ProgressBar* progress) {
    ThreadPool pool(std::min(resolve_threads(threads), std::max<std::size_t>(1, n / 256)));
    std::vector<std::optional<Error>> errors(n);
    pool.parallel_for(n, [&](std::size_t i, std::size_t) {
        if (auto s = fn(i); !s) errors[i] = std::move(s).error();
        if (progress != nullptr) progress->add(1);
    }, 64);
    for (std::size_t i = 0; i < n; ++i) {
        if (errors[i]) return std::move(*errors[i]).with_context(fmt::format("text {}", i));
    }
    return ok_status();
}

bool valid_utf8_or_error(std::string_view text, Status& st) {
    if (json::valid_utf8(text)) return true;
    st = invalid_argument("text is not valid UTF-8");
    return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// model2vec

Result<std::unique_ptr<Model2VecEncoder>> Model2VecEncoder::load(const std::string& dir, const LoadOptions& options) {
    auto enc = std::unique_ptr<Model2VecEncoder>(new Model2VecEncoder());
    enc->options_ = options;
    const std::string config_path = join(dir, "config.json");
    if (fs::exists(config_path)) {
        QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(config_path));
        auto cfg = json::parse(text);
        if (!cfg) return std::move(cfg).error().with_context(fmt::format("parsing '{}'", config_path));
        if (const json::Value* n = cfg->find("normalize"); n != nullptr && n->is_bool()) enc->normalize_ = n->as_bool();
    }
    const std::string weights_path = join(dir, "model.safetensors");
    if (!fs::exists(weights_path)) return not_found(fmt::format("model2vec folder '{}' has no model.safetensors", dir));
    QUIVER_ASSIGN_OR_RETURN(SafeTensors st, SafeTensors::open(weights_path));
    std::string name = "embeddings";
    if (!st.contains(name)) {
        if (st.contains("embedding.weight")) name = "embedding.weight";
        else if (st.contains("0.embeddings")) name = "0.embeddings";
        else return not_found(fmt::format("'{}' has no 'embeddings' tensor", weights_path));
    }
    QUIVER_ASSIGN_OR_RETURN(const TensorInfo* t, st.find(name));
    if (t->shape.size() != 2 || t->shape[0] == 0 || t->shape[1] == 0) {
        return invalid_argument(fmt::format("'{}': '{}' has shape {}, expected [rows, dim]", weights_path, name,
                                            shape_string(t->shape)));
    }
    enc->rows_ = t->shape[0];
    enc->dim_ = t->shape[1];
    QUIVER_ASSIGN_OR_RETURN(enc->embeddings_, st.to_float(name));
    if (!fs::exists(join(dir, "tokenizer.json"))) {
        return not_found(fmt::format("model2vec folder '{}' has no tokenizer.json", dir));
    }
    QUIVER_ASSIGN_OR_RETURN(enc->tokenizer_, text::HfTokenizer::load(join(dir, "tokenizer.json")));
    const std::size_t vocab = enc->tokenizer_.vocab_size();
    if (st.contains("mapping")) {
        QUIVER_ASSIGN_OR_RETURN(auto mapping, st.to_int64("mapping"));
        if (mapping.size() < vocab) {
            return invalid_argument(fmt::format("'{}': mapping has {} entries for a vocabulary of {}", weights_path,
                                                mapping.size(), vocab));
        }
        for (std::int64_t m : mapping) {
            if (m < 0 || static_cast<std::size_t>(m) >= enc->rows_) {
                return invalid_argument(fmt::format("'{}': mapping value {} is outside the {} embedding rows",
                                                    weights_path, m, enc->rows_));
            }
            enc->mapping_.push_back(static_cast<std::uint32_t>(m));
        }
    } else if (enc->rows_ < vocab) {
        return invalid_argument(fmt::format("'{}': {} embedding rows for a tokenizer of {} tokens", weights_path,
                                            enc->rows_, vocab));
    }
    if (st.contains("weights")) {
        QUIVER_ASSIGN_OR_RETURN(enc->weights_, st.to_float("weights"));
        if (enc->weights_.size() < vocab) {
            return invalid_argument(fmt::format("'{}': weights has {} entries for a vocabulary of {}", weights_path,
                                                enc->weights_.size(), vocab));
        }
    }
    enc->info_.name = folder_name(dir);
    enc->info_.family = "model2vec";
    enc->info_.dim = enc->dim_;
    enc->info_.outputs = {OutputKind::kDense};
    enc->info_.normalized = enc->normalize_;
    enc->info_.max_length = options.max_length;
    return enc;
}

Result<Embeddings> Model2VecEncoder::encode(std::span<const std::string_view> texts, const EncodeOptions& options) {
    if (options.kind != OutputKind::kDense) {
        return invalid_argument(fmt::format("model2vec model '{}' produces dense output only", info_.name));
    }
    Embeddings out;
    out.dense = Matrix<float>(texts.size(), dim_);
    const std::int32_t unk = tokenizer_.unk_id();
    auto one = [&](std::size_t i) -> Status {
        std::vector<std::int32_t> ids;
        QUIVER_TRY(tokenizer_.tokenize(texts[i], ids));
        // As model2vec: drop unknown tokens, then keep the first max_length.
        ids.erase(std::remove(ids.begin(), ids.end(), unk), ids.end());
        if (options_.max_length != 0 && ids.size() > options_.max_length) ids.resize(options_.max_length);
        float* dst = out.dense.row_ptr(i);
        for (std::int32_t id : ids) {
            const auto tid = static_cast<std::size_t>(id);
            const std::size_t row = mapping_.empty() ? tid : mapping_[tid];
            const float w = weights_.empty() ? 1.0f : weights_[tid];
            const float* src = embeddings_.data() + row * dim_;
            for (std::size_t c = 0; c < dim_; ++c) dst[c] += w * src[c];
        }
        const float inv = 1.0f / static_cast<float>(std::max<std::size_t>(1, ids.size()));
        for (std::size_t c = 0; c < dim_; ++c) dst[c] *= inv;
        if (normalize_) simd::normalize(dst, dim_);
        return ok_status();
    };
    QUIVER_TRY(for_each_text(options_.threads, texts.size(), one, options.progress));
    return out;
}

// ---------------------------------------------------------------------------------------------
// Word vectors (GloVe)

Result<std::unique_ptr<WordVectorEncoder>> WordVectorEncoder::load(const std::string& dir, const LoadOptions& options) {
    auto enc = std::unique_ptr<WordVectorEncoder>(new WordVectorEncoder());
    enc->options_ = options;
    const std::string vocab_path = join(dir, "vocab.txt");
    std::string vectors_path;
    for (const char* name : {"base.fvecs", "vectors.fvecs", "vectors.npy"}) {
        if (fs::exists(join(dir, name))) {
            vectors_path = join(dir, name);
            break;
        }
    }
    if (!fs::exists(vocab_path) || vectors_path.empty()) {
        return not_found(fmt::format("word-vector folder '{}' needs vocab.txt and base.fvecs (or vectors.fvecs / "
                                     "vectors.npy)", dir));
    }
    QUIVER_ASSIGN_OR_RETURN(std::string vocab_text, storage::read_file(vocab_path));
    QUIVER_ASSIGN_OR_RETURN(storage::VectorSet vs, storage::read_vectors(vectors_path));
    std::size_t pos = 0;
    std::size_t line = 0;
    while (pos < vocab_text.size()) {
        std::size_t end = vocab_text.find('\n', pos);
        if (end == std::string::npos) end = vocab_text.size();
        std::string word = vocab_text.substr(pos, end - pos);
        if (!word.empty() && word.back() == '\r') word.pop_back();
        enc->vocab_.emplace(std::move(word), static_cast<std::uint32_t>(line));
        ++line;
        pos = end + 1;
    }
    if (line != vs.vectors.rows) {
        return invalid_argument(fmt::format("'{}' has {} words but '{}' has {} vectors", vocab_path, line,
                                            vectors_path, vs.vectors.rows));
    }
    enc->vectors_ = std::move(vs.vectors);
    if (options.sif) {
        // vocab.txt is in frequency order and carries no counts: estimate p(w) by Zipf's law,
        // p(rank r) = 1 / (r * H_N), and weight a word by a / (a + p(w)).
        double harmonic = 0.0;
        for (std::size_t r = 1; r <= line; ++r) harmonic += 1.0 / static_cast<double>(r);
        enc->sif_weights_.resize(line);
        for (std::size_t r = 0; r < line; ++r) {
            const double p = 1.0 / (static_cast<double>(r + 1) * harmonic);
            enc->sif_weights_[r] = static_cast<float>(options.sif_a / (options.sif_a + p));
        }
    }
    enc->info_.name = folder_name(dir);
    enc->info_.family = "word-vectors";
    enc->info_.dim = enc->vectors_.dim;
    enc->info_.outputs = {OutputKind::kDense, OutputKind::kMultiVector};
    enc->info_.multivector_dim = enc->vectors_.dim;
    enc->info_.normalized = true;
    return enc;
}

std::vector<std::string> WordVectorEncoder::words(std::string_view text) {
    // Lower-cased ASCII; runs of letters, digits and non-ASCII bytes form words, other bytes split.
    std::vector<std::string> out;
    std::string cur;
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) != 0 || c >= 0x80) {
            cur.push_back(static_cast<char>(std::tolower(c)));
        } else if (!cur.empty()) {
            out.push_back(std::move(cur));
            cur.clear();
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

Result<Embeddings> WordVectorEncoder::encode(std::span<const std::string_view> texts, const EncodeOptions& options) {
    if (options.kind != OutputKind::kDense && options.kind != OutputKind::kMultiVector) {
        return invalid_argument(fmt::format("word-vector model '{}' produces dense and multivector output only", info_.name));
    }
    Embeddings out;
    const std::size_t dim = vectors_.dim;
    if (options.kind == OutputKind::kMultiVector) {
        // One unit-length row per known word, in text order (unknown words are dropped): per-word
        // token vectors for late interaction (MaxSim), as ColBERT gives per WordPiece token.
        out.kind = OutputKind::kMultiVector;
        out.multi.resize(texts.size());
        auto each = [&](std::size_t i) -> Status {
            Status st;
            if (!valid_utf8_or_error(texts[i], st)) return st;
            std::vector<std::uint32_t> rows;
            for (const std::string& w : words(texts[i])) {
                auto it = vocab_.find(w);
                if (it != vocab_.end()) rows.push_back(it->second);
            }
            Matrix<float> m(rows.size(), dim);
            std::size_t kept = 0;
            for (const std::uint32_t r : rows) {
                std::copy_n(vectors_.row_ptr(r), dim, m.row_ptr(kept));
                if (simd::normalize(m.row_ptr(kept), dim)) ++kept;
            }
            m.rows = kept;
            m.values.resize(kept * dim);
            out.multi[i] = std::move(m);
            return ok_status();
        };
        QUIVER_TRY(for_each_text(options_.threads, texts.size(), each, options.progress));
        for (const auto& m : out.multi) out.num_tokens += m.rows;
        return out;
    }
    out.dense = Matrix<float>(texts.size(), dim);
    auto one = [&](std::size_t i) -> Status {
        Status st;
        if (!valid_utf8_or_error(texts[i], st)) return st;
        float* dst = out.dense.row_ptr(i);
        std::size_t found = 0;
        for (const std::string& w : words(texts[i])) {
            auto it = vocab_.find(w);
            if (it == vocab_.end()) continue;
            const float weight = sif_weights_.empty() ? 1.0f : sif_weights_[it->second];
            const float* src = vectors_.row_ptr(it->second);
            for (std::size_t c = 0; c < dim; ++c) dst[c] += weight * src[c];
            ++found;
        }
        if (found > 0) simd::normalize(dst, dim);
        return ok_status();
    };
    QUIVER_TRY(for_each_text(options_.threads, texts.size(), one, options.progress));
    return out;
}

}  // namespace quiver::encode::detail
