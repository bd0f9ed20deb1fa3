#include "quiver/text/wordpiece.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "quiver/core/json.h"
#include "quiver/storage/file_format.h"
#include "text/wordpiece_impl.h"
#include "text/wordpiece_unicode.h"

namespace quiver::text {

namespace wu = wordpiece_unicode;
using detail::NormStep;
using detail::PreStep;

namespace {

const json::Value* member(const json::Value& v, std::string_view key) {
    return v.is_object() ? v.find(key) : nullptr;
}

std::u32string to_u32(std::string_view s) {
    std::u32string out;
    std::size_t bad = 0;
    if (!wu::decode_utf8(s, out, &bad)) out.clear();
    return out;
}

bool get_bool(const json::Value& v, std::string_view key, bool fallback) {
    const json::Value* m = member(v, key);
    return (m != nullptr && m->is_bool()) ? m->as_bool() : fallback;
}

Status parse_normalizer(const json::Value& v, std::vector<NormStep>& steps) {
    if (v.is_null()) return ok_status();
    const json::Value* type = member(v, "type");
    if (type == nullptr || !type->is_string()) return invalid_argument("normalizer without a 'type'");
    const std::string& t = type->as_string();
    NormStep s;
    if (t == "Sequence") {
        const json::Value* list = member(v, "normalizers");
        if (list == nullptr || !list->is_array()) return invalid_argument("Sequence normalizer without 'normalizers'");
        for (const auto& n : list->as_array()) QUIVER_TRY(parse_normalizer(n, steps));
        return ok_status();
    } else if (t == "BertNormalizer") {
        s.kind = NormStep::Kind::kBert;
        s.clean_text = get_bool(v, "clean_text", true);
        s.chinese = get_bool(v, "handle_chinese_chars", true);
        s.lowercase = get_bool(v, "lowercase", true);
        s.strip_accents = get_bool(v, "strip_accents", s.lowercase);
    } else if (t == "Lowercase") {
        s.kind = NormStep::Kind::kLowercase;
    } else if (t == "StripAccents") {
        s.kind = NormStep::Kind::kStripAccents;
    } else if (t == "NFD") {
        s.kind = NormStep::Kind::kNfd;
    } else if (t == "Strip") {
        s.kind = NormStep::Kind::kStrip;
        s.strip_left = get_bool(v, "strip_left", true);
        s.strip_right = get_bool(v, "strip_right", true);
    } else if (t == "Replace") {
        const json::Value* pattern = member(v, "pattern");
        const json::Value* content = member(v, "content");
        if (pattern == nullptr || content == nullptr || !content->is_string()) {
            return invalid_argument("Replace normalizer needs 'pattern' and 'content'");
        }
        s.to = to_u32(content->as_string());
        if (const json::Value* str = member(*pattern, "String"); str != nullptr && str->is_string()) {
            s.kind = NormStep::Kind::kReplace;
            s.from = to_u32(str->as_string());
            if (s.from.empty()) return invalid_argument("Replace normalizer with an empty pattern");
        } else if (const json::Value* re = member(*pattern, "Regex"); re != nullptr && re->is_string()) {
            if (re->as_string() != "\\s+") {
                return unimplemented(fmt::format("Replace normalizer with regex '{}' (only \\s+ is supported)",
                                                 re->as_string()));
            }
            s.kind = NormStep::Kind::kCollapseWhitespace;
        } else {
            return invalid_argument("Replace normalizer pattern is neither String nor Regex");
        }
    } else {
        return unimplemented(fmt::format("normalizer '{}'", t));
    }
    steps.push_back(std::move(s));
    return ok_status();
}

Status parse_pre_tokenizer(const json::Value& v, std::vector<PreStep>& steps) {
    if (v.is_null()) return ok_status();
    const json::Value* type = member(v, "type");
    if (type == nullptr || !type->is_string()) return invalid_argument("pre_tokenizer without a 'type'");
    const std::string& t = type->as_string();
    PreStep s;
    if (t == "Sequence") {
        const json::Value* list = member(v, "pretokenizers");
        if (list == nullptr || !list->is_array()) return invalid_argument("Sequence pre_tokenizer without 'pretokenizers'");
        for (const auto& n : list->as_array()) QUIVER_TRY(parse_pre_tokenizer(n, steps));
        return ok_status();
    } else if (t == "BertPreTokenizer") {
        s.kind = PreStep::Kind::kBert;
    } else if (t == "WhitespaceSplit") {
        s.kind = PreStep::Kind::kWhitespaceSplit;
    } else if (t == "Metaspace") {
        s.kind = PreStep::Kind::kMetaspace;
        if (const json::Value* r = member(v, "replacement"); r != nullptr && r->is_string()) {
            std::u32string rep = to_u32(r->as_string());
            if (rep.size() != 1) return invalid_argument("Metaspace replacement must be one character");
            s.replacement = rep[0];
        }
        s.split = get_bool(v, "split", true);
        s.prepend = get_bool(v, "add_prefix_space", true);
        if (const json::Value* p = member(v, "prepend_scheme"); p != nullptr && p->is_string()) {
            s.prepend = p->as_string() != "never";
        }
    } else {
        return unimplemented(fmt::format("pre_tokenizer '{}'", t));
    }
    steps.push_back(s);
    return ok_status();
}

// Special ids of the post-processor ([CLS] A [SEP]).
Status parse_post_processor(const json::Value& v, detail::TokenizerImpl& impl) {
    if (v.is_null()) return ok_status();
    const json::Value* type = member(v, "type");
    if (type == nullptr || !type->is_string()) return invalid_argument("post_processor without a 'type'");
    const std::string& t = type->as_string();
    auto special_id = [&](const json::Value& spec) -> Result<std::int32_t> {
        // TemplateProcessing: {"id": "[CLS]"} resolved through "special_tokens".
        const json::Value* id = member(spec, "id");
        if (id == nullptr || !id->is_string()) return invalid_argument("template special token without 'id'");
        const json::Value* table = member(v, "special_tokens");
        const json::Value* entry = table != nullptr ? member(*table, id->as_string()) : nullptr;
        const json::Value* ids = entry != nullptr ? member(*entry, "ids") : nullptr;
        if (ids != nullptr && ids->is_array() && ids->as_array().size() == 1 && ids->as_array()[0].is_integer()) {
            return static_cast<std::int32_t>(ids->as_array()[0].as_int());
        }
        if (auto it = impl.vocab.find(id->as_string()); it != impl.vocab.end()) return it->second;
        return invalid_argument(fmt::format("post_processor special token '{}' has no id", id->as_string()));
    };
    if (t == "TemplateProcessing") {
        const json::Value* single = member(v, "single");
        if (single == nullptr || !single->is_array()) return invalid_argument("TemplateProcessing without 'single'");
        bool seen_sequence = false;
        for (const auto& piece : single->as_array()) {
            if (const json::Value* sp = member(piece, "SpecialToken")) {
                QUIVER_ASSIGN_OR_RETURN(std::int32_t id, special_id(*sp));
                (seen_sequence ? impl.suffix : impl.prefix).push_back(id);
            } else if (member(piece, "Sequence") != nullptr) {
                seen_sequence = true;
            } else {
                return invalid_argument("TemplateProcessing piece is neither SpecialToken nor Sequence");
            }
        }
    } else if (t == "BertProcessing" || t == "RobertaProcessing") {
        for (const char* key : {"cls", "sep"}) {
            const json::Value* pair = member(v, key);
            if (pair == nullptr || !pair->is_array() || pair->as_array().size() != 2 ||
                !pair->as_array()[1].is_integer()) {
                return invalid_argument(fmt::format("{} without a ['{}', id] pair", t, key));
            }
            auto id = static_cast<std::int32_t>(pair->as_array()[1].as_int());
            (std::string_view(key) == "cls" ? impl.prefix : impl.suffix).push_back(id);
        }
    } else {
        return unimplemented(fmt::format("post_processor '{}'", t));
    }
    return ok_status();
}

Status parse_model(const json::Value& v, detail::TokenizerImpl& impl) {
    const json::Value* type = member(v, "type");
    const json::Value* vocab = member(v, "vocab");
    if (vocab == nullptr) return invalid_argument("model without a 'vocab'");
    const std::string t = (type != nullptr && type->is_string()) ? type->as_string()
                                                                  : (vocab->is_object() ? "WordPiece" : "");
    if (t == "WordPiece") {
        impl.kind = HfTokenizer::ModelKind::kWordPiece;
        if (!vocab->is_object()) return invalid_argument("WordPiece vocab is not an object");
        const auto& obj = vocab->as_object();
        impl.tokens.resize(obj.size());
        for (const auto& [token, id] : obj) {
            if (!id.is_integer() || id.as_int() < 0 || static_cast<std::size_t>(id.as_int()) >= obj.size()) {
                return invalid_argument(fmt::format("WordPiece vocab id of '{}' is not in [0, {})", token, obj.size()));
            }
            impl.vocab[token] = static_cast<std::int32_t>(id.as_int());
            impl.tokens[static_cast<std::size_t>(id.as_int())] = token;
        }
        if (const json::Value* p = member(v, "continuing_subword_prefix"); p != nullptr && p->is_string()) {
            impl.continuing_prefix = p->as_string();
        }
        if (const json::Value* m = member(v, "max_input_chars_per_word"); m != nullptr && m->is_integer()) {
            impl.max_input_chars = static_cast<std::size_t>(std::max<std::int64_t>(1, m->as_int()));
        }
        const json::Value* unk = member(v, "unk_token");
        const std::string unk_token = (unk != nullptr && unk->is_string()) ? unk->as_string() : "[UNK]";
        auto it = impl.vocab.find(unk_token);
        if (it == impl.vocab.end()) return invalid_argument(fmt::format("unk_token '{}' is not in the vocab", unk_token));
        impl.unk = it->second;
    } else if (t == "Unigram") {
        impl.kind = HfTokenizer::ModelKind::kUnigram;
        if (!vocab->is_array()) return invalid_argument("Unigram vocab is not an array");
        if (get_bool(v, "byte_fallback", false)) return unimplemented("Unigram with byte_fallback");
        const auto& arr = vocab->as_array();
        impl.tokens.reserve(arr.size());
        impl.scores.reserve(arr.size());
        impl.min_score = std::numeric_limits<double>::max();
        for (const auto& e : arr) {
            if (!e.is_array() || e.as_array().size() != 2 || !e.as_array()[0].is_string() ||
                !e.as_array()[1].is_number()) {
                return invalid_argument("Unigram vocab entry is not [piece, score]");
            }
            const std::string& piece = e.as_array()[0].as_string();
            impl.vocab.emplace(piece, static_cast<std::int32_t>(impl.tokens.size()));
            impl.tokens.push_back(piece);
            impl.scores.push_back(e.as_array()[1].as_number());
            impl.min_score = std::min(impl.min_score, impl.scores.back());
            impl.max_piece_chars = std::max(impl.max_piece_chars, to_u32(piece).size());
        }
        if (const json::Value* u = member(v, "unk_id"); u != nullptr && u->is_integer()) {
            if (u->as_int() < 0 || static_cast<std::size_t>(u->as_int()) >= arr.size()) {
                return invalid_argument("Unigram unk_id is out of range");
            }
            impl.unk = static_cast<std::int32_t>(u->as_int());
        }
    } else {
        return unimplemented(fmt::format("tokenizer model '{}'", t));
    }
    return ok_status();
}

}  // namespace

HfTokenizer::HfTokenizer() : impl_(std::make_unique<Impl>()) {}
HfTokenizer::~HfTokenizer() = default;
HfTokenizer::HfTokenizer(HfTokenizer&&) noexcept = default;
HfTokenizer& HfTokenizer::operator=(HfTokenizer&&) noexcept = default;

Result<HfTokenizer> HfTokenizer::load(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    return from_json_text(text, path);
}

Result<HfTokenizer> HfTokenizer::from_json_text(std::string_view json_text, const std::string& what) {
    auto ctx = [&](Error e) { return std::move(e).with_context(fmt::format("reading tokenizer '{}'", what)); };
    auto doc = json::parse(json_text);
    if (!doc) return ctx(std::move(doc).error());
    if (!doc->is_object()) return ctx(invalid_argument("not a JSON object"));
    HfTokenizer tok;
    Impl& impl = *tok.impl_;
    const json::Value* model = doc->find("model");
    if (model == nullptr) return ctx(invalid_argument("no 'model'"));
    if (auto s = parse_model(*model, impl); !s) return ctx(std::move(s).error());
    if (const json::Value* n = doc->find("normalizer")) {
        if (auto s = parse_normalizer(*n, impl.norm); !s) return ctx(std::move(s).error());
    }
    // NFD is supported only as the first half of NFD + StripAccents (the BERT-style pair).
    for (std::size_t i = 0; i < impl.norm.size(); ++i) {
        if (impl.norm[i].kind != NormStep::Kind::kNfd) continue;
        if (i + 1 >= impl.norm.size() || impl.norm[i + 1].kind != NormStep::Kind::kStripAccents) {
            return ctx(unimplemented("normalizer 'NFD' not followed by 'StripAccents'"));
        }
        impl.norm.erase(impl.norm.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (const json::Value* p = doc->find("pre_tokenizer")) {
        if (auto s = parse_pre_tokenizer(*p, impl.pre); !s) return ctx(std::move(s).error());
    }
    if (const json::Value* p = doc->find("post_processor")) {
        if (auto s = parse_post_processor(*p, impl); !s) return ctx(std::move(s).error());
    }
    for (auto ids : {&impl.prefix, &impl.suffix}) {
        for (std::int32_t id : *ids) {
            if (id < 0 || static_cast<std::size_t>(id) >= impl.tokens.size()) {
                return ctx(invalid_argument(fmt::format("special token id {} is outside the vocab of {}", id,
                                                        impl.tokens.size())));
            }
        }
    }
    return tok;
}

Result<HfTokenizer> HfTokenizer::from_vocab_txt(const std::string& path, bool lowercase) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    HfTokenizer tok;
    Impl& impl = *tok.impl_;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string token = text.substr(pos, end - pos);
        if (!token.empty() && token.back() == '\r') token.pop_back();
        impl.vocab.emplace(token, static_cast<std::int32_t>(impl.tokens.size()));
        impl.tokens.push_back(std::move(token));
        pos = end + 1;
    }
    auto need = [&](const char* t) -> Result<std::int32_t> {
        auto it = impl.vocab.find(t);
        if (it == impl.vocab.end()) return invalid_argument(fmt::format("'{}' has no {} token", path, t));
        return it->second;
    };
    QUIVER_ASSIGN_OR_RETURN(impl.unk, need("[UNK]"));
    QUIVER_ASSIGN_OR_RETURN(std::int32_t cls, need("[CLS]"));
    QUIVER_ASSIGN_OR_RETURN(std::int32_t sep, need("[SEP]"));
    impl.prefix = {cls};
    impl.suffix = {sep};
    NormStep n;
    n.kind = NormStep::Kind::kBert;
    n.lowercase = lowercase;
    n.strip_accents = lowercase;
    impl.norm.push_back(n);
    PreStep p;
    p.kind = PreStep::Kind::kBert;
    impl.pre.push_back(p);
    return tok;
}

Status HfTokenizer::tokenize(std::string_view text, std::vector<std::int32_t>& out, std::size_t max_tokens) const {
    std::u32string chars;
    std::size_t bad = 0;
    if (!wu::decode_utf8(text, chars, &bad)) {
        return invalid_argument(fmt::format("text is not valid UTF-8 (byte {} of {})", bad, text.size()));
    }
    impl_->run(chars, out, max_tokens);
    return ok_status();
}

Result<std::vector<std::int32_t>> HfTokenizer::encode(std::string_view text, std::size_t max_length) const {
    const std::size_t specials = impl_->prefix.size() + impl_->suffix.size();
    if (max_length < specials || max_length == 0) {
        return invalid_argument(fmt::format("max_length {} leaves no room for tokens", max_length));
    }
    std::vector<std::int32_t> ids(impl_->prefix);
    const std::size_t budget = max_length - specials;
    if (budget > 0) QUIVER_TRY(tokenize(text, ids, budget));
    else {
        std::vector<std::int32_t> ignored;  // still validate the text
        QUIVER_TRY(tokenize(text, ignored, 1));
    }
    ids.insert(ids.end(), impl_->suffix.begin(), impl_->suffix.end());
    return ids;
}

HfTokenizer::ModelKind HfTokenizer::model_kind() const noexcept { return impl_->kind; }
std::size_t HfTokenizer::vocab_size() const noexcept { return impl_->tokens.size(); }
std::optional<std::int32_t> HfTokenizer::token_to_id(std::string_view token) const {
    auto it = impl_->vocab.find(std::string(token));
    if (it == impl_->vocab.end()) return std::nullopt;
    return it->second;
}
std::string_view HfTokenizer::id_to_token(std::int32_t id) const noexcept {
    if (id < 0 || static_cast<std::size_t>(id) >= impl_->tokens.size()) return {};
    return impl_->tokens[static_cast<std::size_t>(id)];
}
std::int32_t HfTokenizer::cls_id() const noexcept { return impl_->prefix.empty() ? -1 : impl_->prefix.front(); }
std::int32_t HfTokenizer::sep_id() const noexcept { return impl_->suffix.empty() ? -1 : impl_->suffix.back(); }
std::int32_t HfTokenizer::unk_id() const noexcept { return impl_->unk; }
bool HfTokenizer::adds_special_tokens() const noexcept { return !impl_->prefix.empty() || !impl_->suffix.empty(); }

}  // namespace quiver::text
