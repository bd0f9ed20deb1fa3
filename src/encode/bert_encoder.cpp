#include "encode/bert_encoder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/storage/file_format.h"

namespace quiver::encode::detail {

namespace fs = std::filesystem;

namespace {

std::string join(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

Result<json::Value> read_json(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    auto v = json::parse(text);
    if (!v) return std::move(v).error().with_context(fmt::format("parsing '{}'", path));
    return std::move(*v);
}

}  // namespace

Result<std::unique_ptr<BertEncoder>> BertEncoder::load(const std::string& dir, const LoadOptions& options) {
    auto enc = std::unique_ptr<BertEncoder>(new BertEncoder());
    enc->options_ = options;
    const std::string config_path = join(dir, "config.json");
    if (!fs::exists(config_path)) return not_found(fmt::format("model folder '{}' has no config.json", dir));
    QUIVER_ASSIGN_OR_RETURN(std::string config_text, storage::read_file(config_path));
    QUIVER_ASSIGN_OR_RETURN(BertConfig config, BertConfig::parse(config_text, config_path));

    const std::string weights_path = join(dir, "model.safetensors");
    if (!fs::exists(weights_path)) {
        return not_found(fmt::format("model folder '{}' has no model.safetensors{}", dir,
                                     fs::exists(join(dir, "pytorch_model.bin"))
                                         ? " (pytorch_model.bin is not read; re-save the model as safetensors)"
                                         : ""));
    }
    QUIVER_ASSIGN_OR_RETURN(SafeTensors st, SafeTensors::open(weights_path));
    const bool mlm = st.contains("cls.predictions.transform.dense.weight");
    const bool colbert = st.contains("linear.weight");
    QUIVER_ASSIGN_OR_RETURN(enc->model_, BertModel::load(st, config, mlm, options.int8));

    // Tokenizer: tokenizer.json, else vocab.txt (+ tokenizer_config.json's do_lower_case).
    if (fs::exists(join(dir, "tokenizer.json"))) {
        QUIVER_ASSIGN_OR_RETURN(enc->tokenizer_, text::HfTokenizer::load(join(dir, "tokenizer.json")));
    } else if (fs::exists(join(dir, "vocab.txt"))) {
        bool lower = true;
        if (fs::exists(join(dir, "tokenizer_config.json"))) {
            QUIVER_ASSIGN_OR_RETURN(json::Value tc, read_json(join(dir, "tokenizer_config.json")));
            if (const json::Value* l = tc.find("do_lower_case"); l != nullptr && l->is_bool()) lower = l->as_bool();
        }
        QUIVER_ASSIGN_OR_RETURN(enc->tokenizer_, text::HfTokenizer::from_vocab_txt(join(dir, "vocab.txt"), lower));
    } else {
        return not_found(fmt::format("model folder '{}' has neither tokenizer.json nor vocab.txt", dir));
    }
    if (enc->tokenizer_.vocab_size() > config.vocab_size) {
        return invalid_argument(fmt::format("model folder '{}': the tokenizer has {} tokens but config.json "
                                            "vocab_size is {}", dir, enc->tokenizer_.vocab_size(), config.vocab_size));
    }
    if (enc->tokenizer_.cls_id() < 0 || enc->tokenizer_.sep_id() < 0) {
        return invalid_argument(fmt::format("model folder '{}': the tokenizer adds no [CLS]/[SEP] tokens", dir));
    }
    QUIVER_TRY(enc->load_sentence_transformers(dir));
    if (colbert) QUIVER_TRY(enc->load_colbert(dir, st));

    enc->max_length_ = std::min({options.max_length, config.max_length(), enc->st_max_seq_length_});
    if (enc->max_length_ < 4) {
        return invalid_argument(fmt::format("max_length {} is too small (at least 4)", options.max_length));
    }
    EncoderInfo& info = enc->info_;
    info.name = fs::path(dir).filename().string();
    if (info.name.empty()) info.name = fs::path(dir).parent_path().filename().string();
    info.family = config.model_type;
    info.dim = config.hidden;
    info.outputs = {OutputKind::kDense};
    if (mlm) {
        info.outputs.push_back(OutputKind::kSparse);
        info.sparse_dim = config.vocab_size;
    }
    if (colbert) {
        info.outputs.push_back(OutputKind::kMultiVector);
        info.multivector_dim = enc->colbert_dim_;
    }
    info.normalized = enc->normalize_;
    info.metric = enc->normalize_ ? simd::Metric::kCosine : simd::Metric::kInnerProduct;
    info.max_length = enc->max_length_;
    enc->pool_ = std::make_unique<ThreadPool>(resolve_threads(options.threads));
    enc->workspaces_.resize(enc->pool_->size());
    return enc;
}

Status BertEncoder::load_sentence_transformers(const std::string& dir) {
    pooling_ = Pooling::kMean;
    normalize_ = false;
    if (fs::exists(join(dir, "modules.json"))) {
        QUIVER_ASSIGN_OR_RETURN(json::Value mods, read_json(join(dir, "modules.json")));
        if (!mods.is_array()) return invalid_argument(fmt::format("'{}' is not a JSON array", join(dir, "modules.json")));
        for (const auto& m : mods.as_array()) {
            const json::Value* type = m.find("type");
            const json::Value* path = m.find("path");
            if (type == nullptr || !type->is_string()) continue;
            const std::string& t = type->as_string();
            if (t.ends_with("Normalize")) {
                normalize_ = true;
            } else if (t.ends_with("Pooling")) {
                const std::string sub = (path != nullptr && path->is_string()) ? path->as_string() : "1_Pooling";
                const std::string pc = join(join(dir, sub), "config.json");
                if (!fs::exists(pc)) return not_found(fmt::format("modules.json names a Pooling module but '{}' is missing", pc));
                QUIVER_ASSIGN_OR_RETURN(json::Value cfg, read_json(pc));
                auto flag = [&](const char* key) {
                    const json::Value* v = cfg.find(key);
                    return v != nullptr && v->is_bool() && v->as_bool();
                };
                if (flag("pooling_mode_cls_token")) {
                    pooling_ = Pooling::kCls;
                } else if (flag("pooling_mode_mean_tokens")) {
                    pooling_ = Pooling::kMean;
                } else {
                    return unimplemented(fmt::format("'{}': only CLS and mean pooling are supported", pc));
                }
            } else if (t.ends_with("Dense")) {
                return unimplemented(fmt::format("'{}': sentence-transformers Dense modules",
                                                 join(dir, "modules.json")));
            }
        }
    }
    // sentence-transformers truncates to max_seq_length (e.g. 256 for all-MiniLM-L6-v2); so do we.
    if (fs::exists(join(dir, "sentence_bert_config.json"))) {
        QUIVER_ASSIGN_OR_RETURN(json::Value sb, read_json(join(dir, "sentence_bert_config.json")));
        if (const json::Value* m = sb.find("max_seq_length"); m != nullptr && m->is_integer() && m->as_int() > 0) {
            st_max_seq_length_ = static_cast<std::size_t>(m->as_int());
        }
    }
    if (fs::exists(join(dir, "config_sentence_transformers.json"))) {
        QUIVER_ASSIGN_OR_RETURN(json::Value st, read_json(join(dir, "config_sentence_transformers.json")));
        if (const json::Value* prompts = st.find("prompts"); prompts != nullptr && prompts->is_object()) {
            for (const auto& [name, value] : prompts->as_object()) {
                if (!value.is_string()) continue;
                if (name == "query") query_prefix_ = value.as_string();
                if (name == "document" || name == "passage" || name == "corpus") document_prefix_ = value.as_string();
            }
        }
    }
    if (options_.query_prefix) query_prefix_ = *options_.query_prefix;
    if (options_.document_prefix) document_prefix_ = *options_.document_prefix;
    return ok_status();
}

Status BertEncoder::load_colbert(const std::string& dir, const SafeTensors& st) {
    QUIVER_ASSIGN_OR_RETURN(const TensorInfo* t, st.find("linear.weight"));
    const std::size_t H = model_.config().hidden;
    if (t->shape.size() != 2 || t->shape[1] != H) {
        return invalid_argument(fmt::format("'{}': linear.weight has shape {}, expected [dim, {}]", st.path(),
                                            shape_string(t->shape), H));
    }
    colbert_dim_ = t->shape[0];
    QUIVER_ASSIGN_OR_RETURN(auto w, st.to_float("linear.weight"));
    colbert_ = Linear(w.data(), colbert_dim_, H, options_.int8);
    std::string q_marker = "[unused0]";
    std::string d_marker = "[unused1]";
    if (fs::exists(join(dir, "artifact.metadata"))) {
        QUIVER_ASSIGN_OR_RETURN(json::Value meta, read_json(join(dir, "artifact.metadata")));
        auto size = [&](const char* key, std::size_t& out) {
            if (const json::Value* v = meta.find(key); v != nullptr && v->is_integer() && v->as_int() > 3) {
                out = static_cast<std::size_t>(v->as_int());
            }
        };
        size("query_maxlen", query_maxlen_);
        size("doc_maxlen", doc_maxlen_);
        if (const json::Value* v = meta.find("query_token_id"); v != nullptr && v->is_string()) q_marker = v->as_string();
        if (const json::Value* v = meta.find("doc_token_id"); v != nullptr && v->is_string()) d_marker = v->as_string();
        if (const json::Value* v = meta.find("attend_to_mask_tokens"); v != nullptr && v->is_bool()) {
            attend_to_mask_ = v->as_bool();
        }
    }
    auto id = [&](const std::string& token) -> Result<std::int32_t> {
        auto i = tokenizer_.token_to_id(token);
        if (!i) return invalid_argument(fmt::format("ColBERT model '{}': token '{}' is not in the vocabulary", dir, token));
        return *i;
    };
    QUIVER_ASSIGN_OR_RETURN(query_marker_, id(q_marker));
    QUIVER_ASSIGN_OR_RETURN(doc_marker_, id(d_marker));
    QUIVER_ASSIGN_OR_RETURN(mask_id_, id("[MASK]"));
    // Documents drop the embeddings of punctuation tokens (ColBERT's skiplist: string.punctuation).
    punctuation_.assign(tokenizer_.vocab_size(), 0);
    for (char c : std::string_view("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) {
        if (auto i = tokenizer_.token_to_id(std::string(1, c))) punctuation_[static_cast<std::size_t>(*i)] = 1;
    }
    return ok_status();
}

Status BertEncoder::tokenize_all(std::span<const std::string_view> texts, const EncodeOptions& options,
                                 std::vector<std::vector<std::int32_t>>& ids, std::vector<std::size_t>& attend) {
    ids.assign(texts.size(), {});
    attend.assign(texts.size(), 0);
    std::vector<std::optional<Error>> errors(texts.size());
    const bool query = options.role == EncodeRole::kQuery;
    const bool multi = options.kind == OutputKind::kMultiVector;
    const std::string& prefix = query ? query_prefix_ : document_prefix_;
    pool_->parallel_for(texts.size(), [&](std::size_t i, std::size_t) {
        std::vector<std::int32_t>& out = ids[i];
        if (!multi) {
            auto r = prefix.empty() ? tokenizer_.encode(texts[i], max_length_)
                                    : tokenizer_.encode(prefix + std::string(texts[i]), max_length_);
            if (!r) {
                errors[i] = std::move(r).error();
                return;
            }
            out = std::move(*r);
            attend[i] = out.size();
            return;
        }
        // ColBERT: [CLS] marker tokens [SEP]; queries are padded with [MASK] to query_maxlen.
        const std::size_t limit = std::min(query ? query_maxlen_ : doc_maxlen_, max_length_);
        out = {tokenizer_.cls_id(), query ? query_marker_ : doc_marker_};
        if (auto s = tokenizer_.tokenize(texts[i], out, limit - 3); !s) {
            errors[i] = std::move(s).error();
            return;
        }
        out.push_back(tokenizer_.sep_id());
        attend[i] = out.size();
        if (query) {
            out.resize(limit, mask_id_);
            if (attend_to_mask_) attend[i] = out.size();
        }
    }, 16);
    for (std::size_t i = 0; i < texts.size(); ++i) {
        if (errors[i]) return std::move(*errors[i]).with_context(fmt::format("text {}", i));
    }
    return ok_status();
}

Result<Embeddings> BertEncoder::encode(std::span<const std::string_view> texts, const EncodeOptions& options) {
    if (std::find(info_.outputs.begin(), info_.outputs.end(), options.kind) == info_.outputs.end()) {
        return invalid_argument(fmt::format("model '{}' does not produce {} output", info_.name, to_string(options.kind)));
    }
    std::vector<std::vector<std::int32_t>> ids;
    std::vector<std::size_t> attend;
    QUIVER_TRY(tokenize_all(texts, options, ids, attend));

    const std::size_t n = texts.size();
    Embeddings out;
    out.kind = options.kind;
    if (options.kind == OutputKind::kDense) out.dense = Matrix<float>(n, info_.dim);
    if (options.kind == OutputKind::kSparse) out.sparse.resize(n);
    if (options.kind == OutputKind::kMultiVector) out.multi.resize(n);
    for (const auto& t : ids) out.num_tokens += t.size();
    if (n == 0) return out;

    // Length-sorted batches: similar lengths share a batch, so batches cost about the same.
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ids[a].size() > ids[b].size(); });
    const std::size_t batch = std::max<std::size_t>(1, options_.batch);
    const std::size_t num_batches = (n + batch - 1) / batch;
    const bool one_batch = num_batches == 1 && pool_->size() > 1;

    auto run_batch = [&](std::size_t bi, std::size_t worker) {
        const std::size_t begin = bi * batch;
        const std::size_t end = std::min(n, begin + batch);
        std::vector<BertSequence> seqs;
        seqs.reserve(end - begin);
        for (std::size_t j = begin; j < end; ++j) {
            const std::size_t t = order[j];
            seqs.push_back({ids[t].data(), ids[t].size(), attend[t]});
        }
        BertWorkspace& ws = workspaces_[worker];
        model_.forward(seqs, ws, one_batch ? pool_.get() : nullptr);
        for (std::size_t j = begin; j < end; ++j) {
            const std::size_t t = order[j];
            const float* rows = ws.x.data() + ws.offsets[j - begin] * model_.config().hidden;
            post_process(options, t, ids[t], rows, ws, out);
        }
        if (options.progress != nullptr) options.progress->add(end - begin);
    };
    if (one_batch) {
        run_batch(0, 0);
    } else {
        pool_->parallel_for(num_batches, run_batch, 1);
    }
    return out;
}

void BertEncoder::post_process(const EncodeOptions& options, std::size_t index, const std::vector<std::int32_t>& ids,
                               const float* rows, BertWorkspace& ws, Embeddings& out) const {
    const std::size_t H = model_.config().hidden;
    const std::size_t len = ids.size();
    switch (options.kind) {
        case OutputKind::kDense: {
            float* dst = out.dense.row_ptr(index);
            if (pooling_ == Pooling::kCls) {
                std::copy(rows, rows + H, dst);
            } else {
                std::fill(dst, dst + H, 0.0f);
                for (std::size_t r = 0; r < len; ++r) {
                    for (std::size_t c = 0; c < H; ++c) dst[c] += rows[r * H + c];
                }
                const float inv = 1.0f / static_cast<float>(std::max<std::size_t>(1, len));
                for (std::size_t c = 0; c < H; ++c) dst[c] *= inv;
            }
            if (normalize_) simd::normalize(dst, H);
            break;
        }
        case OutputKind::kSparse: {
            const std::size_t V = model_.config().vocab_size;
            std::vector<float> weights(V);
            model_.splade_max(rows, len, ws, weights.data());
            std::vector<std::uint32_t> nz;
            for (std::size_t v = 0; v < V; ++v) {
                if (weights[v] > 0.0f) nz.push_back(static_cast<std::uint32_t>(v));
            }
            const std::size_t k = options_.sparse_top_k;
            if (k != 0 && nz.size() > k) {
                std::nth_element(nz.begin(), nz.begin() + static_cast<std::ptrdiff_t>(k), nz.end(),
                                 [&](std::uint32_t a, std::uint32_t b) {
                                     return weights[a] != weights[b] ? weights[a] > weights[b] : a < b;
                                 });
                nz.resize(k);
                std::sort(nz.begin(), nz.end());
            }
            SparseVector& sv = out.sparse[index];
            sv.ids = nz;
            sv.weights.reserve(nz.size());
            for (std::uint32_t v : nz) sv.weights.push_back(weights[v]);
            break;
        }
        case OutputKind::kMultiVector: {
            const std::size_t D = colbert_dim_;
            std::vector<float> proj(len * D);
            colbert_.apply(nullptr, rows, H, len, proj.data(), D, nullptr, false, ws.linear);
            const bool doc = options.role == EncodeRole::kDocument;
            std::size_t kept = 0;
            for (std::size_t r = 0; r < len; ++r) {
                if (!(doc && punctuation_[static_cast<std::size_t>(ids[r])] != 0)) ++kept;
            }
            Matrix<float> m(kept, D);
            std::size_t row = 0;
            for (std::size_t r = 0; r < len; ++r) {
                if (doc && punctuation_[static_cast<std::size_t>(ids[r])] != 0) continue;
                std::copy(proj.begin() + static_cast<std::ptrdiff_t>(r * D),
                          proj.begin() + static_cast<std::ptrdiff_t>((r + 1) * D), m.row_ptr(row));
                simd::normalize(m.row_ptr(row), D);
                ++row;
            }
            out.multi[index] = std::move(m);
            break;
        }
    }
}

std::string_view BertEncoder::term(std::uint32_t id) const noexcept {
    return tokenizer_.id_to_token(static_cast<std::int32_t>(id));
}

}  // namespace quiver::encode::detail
