#include "quiver/text/wordpiece.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <unordered_map>

#include "quiver/core/json.h"
#include "quiver/storage/file_format.h"
#include "text/precompiled.h"
#include "text/wordpiece_impl.h"
#include "text/wordpiece_unicode.h"

namespace quiver::text {

namespace wu = wordpiece_unicode;
using detail::Behavior;
using detail::KnownRegex;
using detail::NormStep;
using detail::PreStep;

namespace {

// Ids are int32 in the encoders; a vocabulary may not reach past this.
constexpr std::int64_t kMaxId = std::int64_t{1} << 30;

// The pre-tokenisation regexes implemented by hand (GPT-2's is also ByteLevel's built-in one).
constexpr std::string_view kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const json::Value* member(const json::Value& v, std::string_view key) {
    return v.is_object() ? v.find(key) : nullptr;
}

Result<std::u32string> to_u32(const std::string& s, std::string_view what) {
    std::u32string out;
    std::size_t bad = 0;
    if (!wu::decode_utf8(s, out, &bad)) return invalid_argument(fmt::format("{} is not valid UTF-8", what));
    return out;
}

bool get_bool(const json::Value& v, std::string_view key, bool fallback) {
    const json::Value* m = member(v, key);
    return (m != nullptr && m->is_bool()) ? m->as_bool() : fallback;
}

const std::string* get_string(const json::Value& v, std::string_view key) {
    const json::Value* m = member(v, key);
    return (m != nullptr && m->is_string()) ? &m->as_string() : nullptr;
}

Result<std::string> type_of(const json::Value& v, std::string_view what) {
    const std::string* t = get_string(v, "type");
    if (t == nullptr) return invalid_argument(fmt::format("{} without a 'type'", what));
    return *t;
}

Result<Behavior> parse_behavior(const json::Value& v) {
    const std::string* b = get_string(v, "behavior");
    if (b == nullptr) return Behavior::kIsolated;
    if (*b == "Removed") return Behavior::kRemoved;
    if (*b == "Isolated") return Behavior::kIsolated;
    if (*b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
    if (*b == "MergedWithNext") return Behavior::kMergedWithNext;
    if (*b == "Contiguous") return Behavior::kContiguous;
    return invalid_argument(fmt::format("unknown split behavior '{}'", *b));
}

Status parse_normalizer(const json::Value& v, std::vector<NormStep>& steps, int depth = 0) {
    if (v.is_null()) return ok_status();
    if (depth > 16) return invalid_argument("normalizers nested too deeply");
    QUIVER_ASSIGN_OR_RETURN(std::string t, type_of(v, "normalizer"));
    NormStep s;
    if (t == "Sequence") {
        const json::Value* list = member(v, "normalizers");
        if (list == nullptr || !list->is_array()) return invalid_argument("Sequence normalizer without 'normalizers'");
        for (const auto& n : list->as_array()) QUIVER_TRY(parse_normalizer(n, steps, depth + 1));
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
    } else if (t == "NFKD") {
        s.kind = NormStep::Kind::kNfkd;
    } else if (t == "NFC") {
        s.kind = NormStep::Kind::kNfc;
    } else if (t == "NFKC") {
        s.kind = NormStep::Kind::kNfkc;
    } else if (t == "ByteLevel") {
        s.kind = NormStep::Kind::kByteLevel;
    } else if (t == "Strip") {
        s.kind = NormStep::Kind::kStrip;
        s.strip_left = get_bool(v, "strip_left", true);
        s.strip_right = get_bool(v, "strip_right", true);
    } else if (t == "Prepend") {
        s.kind = NormStep::Kind::kPrepend;
        const std::string* p = get_string(v, "prepend");
        if (p == nullptr) return invalid_argument("Prepend normalizer without 'prepend'");
        QUIVER_ASSIGN_OR_RETURN(s.to, to_u32(*p, "Prepend 'prepend'"));
    } else if (t == "Replace") {
        const json::Value* pattern = member(v, "pattern");
        const std::string* content = get_string(v, "content");
        if (pattern == nullptr || content == nullptr) return invalid_argument("Replace normalizer needs 'pattern' and 'content'");
        QUIVER_ASSIGN_OR_RETURN(s.to, to_u32(*content, "Replace 'content'"));
        if (const std::string* str = get_string(*pattern, "String")) {
            s.kind = NormStep::Kind::kReplace;
            QUIVER_ASSIGN_OR_RETURN(s.from, to_u32(*str, "Replace pattern"));
            if (s.from.empty()) return invalid_argument("Replace normalizer with an empty pattern");
        } else if (const std::string* re = get_string(*pattern, "Regex")) {
            // \s+ (whitespace runs) and " {2,}" (space runs, as SentencePiece conversions write it).
            if (*re == "\\s+") {
                s.kind = NormStep::Kind::kCollapseWhitespace;
            } else if (*re == " {2,}") {
                s.kind = NormStep::Kind::kCollapseSpaces;
            } else {
                return unimplemented(fmt::format("Replace normalizer with regex '{}' (supported: \\s+ and ' {{2,}}')", *re));
            }
        } else {
            return invalid_argument("Replace normalizer pattern is neither String nor Regex");
        }
    } else if (t == "Precompiled") {
        s.kind = NormStep::Kind::kPrecompiled;
        const std::string* map = get_string(v, "precompiled_charsmap");
        if (map == nullptr) return invalid_argument("Precompiled normalizer without 'precompiled_charsmap'");
        QUIVER_ASSIGN_OR_RETURN(s.charsmap, detail::Charsmap::from_base64(*map));
    } else {
        return unimplemented(fmt::format("normalizer '{}'", t));
    }
    steps.push_back(std::move(s));
    return ok_status();
}

Status parse_pre_tokenizer(const json::Value& v, std::vector<PreStep>& steps, int depth = 0) {
    if (v.is_null()) return ok_status();
    if (depth > 16) return invalid_argument("pre_tokenizers nested too deeply");
    QUIVER_ASSIGN_OR_RETURN(std::string t, type_of(v, "pre_tokenizer"));
    PreStep s;
    if (t == "Sequence") {
        const json::Value* list = member(v, "pretokenizers");
        if (list == nullptr || !list->is_array()) return invalid_argument("Sequence pre_tokenizer without 'pretokenizers'");
        for (const auto& n : list->as_array()) QUIVER_TRY(parse_pre_tokenizer(n, steps, depth + 1));
        return ok_status();
    } else if (t == "BertPreTokenizer") {
        s.kind = PreStep::Kind::kBert;
    } else if (t == "Whitespace") {
        s.kind = PreStep::Kind::kWhitespace;
    } else if (t == "WhitespaceSplit") {
        s.kind = PreStep::Kind::kWhitespaceSplit;
    } else if (t == "Punctuation") {
        s.kind = PreStep::Kind::kPunctuation;
        QUIVER_ASSIGN_OR_RETURN(s.behavior, parse_behavior(v));
    } else if (t == "Digits") {
        s.kind = PreStep::Kind::kDigits;
        s.individual_digits = get_bool(v, "individual_digits", false);
    } else if (t == "CharDelimiterSplit") {
        s.kind = PreStep::Kind::kCharDelimiter;
        const std::string* d = get_string(v, "delimiter");
        if (d == nullptr) return invalid_argument("CharDelimiterSplit without 'delimiter'");
        QUIVER_ASSIGN_OR_RETURN(s.pattern, to_u32(*d, "CharDelimiterSplit delimiter"));
        if (s.pattern.size() != 1) return invalid_argument("CharDelimiterSplit delimiter must be one character");
    } else if (t == "Split") {
        const json::Value* pattern = member(v, "pattern");
        if (pattern == nullptr) return invalid_argument("Split pre_tokenizer without 'pattern'");
        QUIVER_ASSIGN_OR_RETURN(s.behavior, parse_behavior(v));
        s.invert = get_bool(v, "invert", false);
        if (const std::string* str = get_string(*pattern, "String")) {
            s.kind = PreStep::Kind::kSplitString;
            QUIVER_ASSIGN_OR_RETURN(s.pattern, to_u32(*str, "Split pattern"));
            if (s.pattern.empty()) return invalid_argument("Split pre_tokenizer with an empty pattern");
        } else if (const std::string* re = get_string(*pattern, "Regex")) {
            s.kind = PreStep::Kind::kSplitRegex;
            if (*re == kGpt2Regex) s.regex = KnownRegex::kGpt2;
            else if (*re == kLlama3Regex) s.regex = KnownRegex::kLlama3;
            else if (*re == kQwen2Regex) s.regex = KnownRegex::kQwen2;
            else return unimplemented(fmt::format("Split pre_tokenizer regex '{}' (supported: the GPT-2, Llama 3 and Qwen 2 patterns)", *re));
        } else {
            return invalid_argument("Split pattern is neither String nor Regex");
        }
    } else if (t == "Metaspace") {
        s.kind = PreStep::Kind::kMetaspace;
        if (const std::string* r = get_string(v, "replacement")) {
            QUIVER_ASSIGN_OR_RETURN(std::u32string rep, to_u32(*r, "Metaspace replacement"));
            if (rep.size() != 1) return invalid_argument("Metaspace replacement must be one character");
            s.replacement = rep[0];
        }
        s.split = get_bool(v, "split", true);
        s.prepend = get_bool(v, "add_prefix_space", true) ? PreStep::Prepend::kAlways : PreStep::Prepend::kNever;
        if (const std::string* p = get_string(v, "prepend_scheme")) {
            if (*p == "always") s.prepend = PreStep::Prepend::kAlways;
            else if (*p == "first") s.prepend = PreStep::Prepend::kFirst;
            else if (*p == "never") s.prepend = PreStep::Prepend::kNever;
            else return invalid_argument(fmt::format("Metaspace prepend_scheme '{}'", *p));
        }
    } else if (t == "ByteLevel") {
        s.kind = PreStep::Kind::kByteLevel;
        s.add_prefix_space = get_bool(v, "add_prefix_space", true);
        s.use_regex = get_bool(v, "use_regex", true);
    } else {
        return unimplemented(fmt::format("pre_tokenizer '{}'", t));
    }
    steps.push_back(std::move(s));
    return ok_status();
}

// The Unigram scores as the tokenizers library holds them: serde_json (without its float_roundtrip
// feature) parses a decimal as (all digits as a u64, as f64) times or divided by a power of ten, which
// is not always the nearest double; a one-ulp difference flips Viterbi ties. The digits are those of
// the file (written shortest-round-trip by serde_json or Python), recovered with to_chars.
double serde_json_f64(double v) {
    if (!std::isfinite(v) || v == 0.0) return v;
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    if (ec != std::errc()) return v;
    const char* p = buf;
    const bool positive = *p != '-';
    if (!positive) ++p;
    std::uint64_t significand = 0;
    int exponent = 0;
    bool overflowed = false;
    bool after_point = false;
    for (; p < end && *p != 'e'; ++p) {
        if (*p == '.') {
            after_point = true;
            continue;
        }
        const auto digit = static_cast<std::uint64_t>(*p - '0');
        if (overflowed || significand > (UINT64_MAX - digit) / 10) {
            overflowed = true;  // later digits are dropped; integer digits still scale by ten
            if (!after_point) ++exponent;
            continue;
        }
        significand = significand * 10 + digit;
        if (after_point) --exponent;
    }
    if (p < end && *p == 'e') exponent += std::atoi(p + 1);
    static const auto pow10 = [] {
        std::array<double, 309> t{};
        double x = 1.0;
        for (double& e : t) {
            e = x;
            x *= 10.0;
        }
        return t;
    }();
    double f = static_cast<double>(significand);
    while (true) {
        const unsigned a = static_cast<unsigned>(exponent < 0 ? -exponent : exponent);
        if (a < pow10.size()) {
            if (exponent >= 0) f *= pow10[a];
            else f /= pow10[a];
            break;
        }
        if (f == 0.0 || exponent >= 0) break;
        f /= 1e308;
        exponent += 308;
    }
    return positive ? f : -f;
}

// Ids index a table of tokens; a file may leave gaps, but an id far beyond its entry count is an
// error rather than a table of a billion empty strings.
std::size_t sparse_id_bound(std::size_t entries) { return 2 * entries + 65536; }

Result<std::int32_t> checked_id(const json::Value& v, std::string_view what) {
    if (!v.is_integer() || v.as_int() < 0 || v.as_int() >= kMaxId) {
        return invalid_argument(fmt::format("{} is not an id in [0, 2^30)", what));
    }
    return static_cast<std::int32_t>(v.as_int());
}

// Special ids of the post-processor, before and after the sequence.
Status parse_post_processor(const json::Value& v, detail::TokenizerImpl& impl, int depth = 0) {
    if (v.is_null()) return ok_status();
    if (depth > 16) return invalid_argument("post_processors nested too deeply");
    QUIVER_ASSIGN_OR_RETURN(std::string t, type_of(v, "post_processor"));
    if (t == "TemplateProcessing") {
        const json::Value* single = member(v, "single");
        if (single == nullptr || !single->is_array()) return invalid_argument("TemplateProcessing without 'single'");
        const json::Value* table = member(v, "special_tokens");
        bool seen_sequence = false;
        for (const auto& piece : single->as_array()) {
            if (const json::Value* sp = member(piece, "SpecialToken")) {
                const std::string* name = get_string(*sp, "id");
                if (name == nullptr) return invalid_argument("template special token without 'id'");
                const json::Value* entry = table != nullptr ? member(*table, *name) : nullptr;
                const json::Value* ids = entry != nullptr ? member(*entry, "ids") : nullptr;
                const json::Value* toks = entry != nullptr ? member(*entry, "tokens") : nullptr;
                if (ids == nullptr || !ids->is_array() || toks == nullptr || !toks->is_array() ||
                    ids->as_array().size() != toks->as_array().size()) {
                    return invalid_argument(fmt::format("post_processor special token '{}' has no ids and tokens", *name));
                }
                for (std::size_t i = 0; i < ids->as_array().size(); ++i) {
                    QUIVER_ASSIGN_OR_RETURN(std::int32_t id, checked_id(ids->as_array()[i], "template special token id"));
                    const json::Value& tok = toks->as_array()[i];
                    if (!tok.is_string()) return invalid_argument("template special token is not a string");
                    (seen_sequence ? impl.suffix : impl.prefix).push_back(id);
                    (seen_sequence ? impl.suffix_tokens : impl.prefix_tokens).push_back(tok.as_string());
                }
            } else if (member(piece, "Sequence") != nullptr) {
                seen_sequence = true;
            } else {
                return invalid_argument("TemplateProcessing piece is neither SpecialToken nor Sequence");
            }
        }
    } else if (t == "BertProcessing" || t == "RobertaProcessing") {
        for (const char* key : {"cls", "sep"}) {
            const json::Value* pair = member(v, key);
            if (pair == nullptr || !pair->is_array() || pair->as_array().size() != 2 || !pair->as_array()[0].is_string()) {
                return invalid_argument(fmt::format("{} without a ['{}', id] pair", t, key));
            }
            QUIVER_ASSIGN_OR_RETURN(std::int32_t id, checked_id(pair->as_array()[1], fmt::format("{} id", key)));
            const bool cls = std::string_view(key) == "cls";
            (cls ? impl.prefix : impl.suffix).push_back(id);
            (cls ? impl.prefix_tokens : impl.suffix_tokens).push_back(pair->as_array()[0].as_string());
        }
    } else if (t == "ByteLevel") {
        // Offsets only; no tokens.
    } else if (t == "Sequence") {
        const json::Value* list = member(v, "processors");
        if (list == nullptr || !list->is_array()) return invalid_argument("Sequence post_processor without 'processors'");
        for (const auto& p : list->as_array()) QUIVER_TRY(parse_post_processor(p, impl, depth + 1));
    } else {
        return unimplemented(fmt::format("post_processor '{}'", t));
    }
    return ok_status();
}

// A {token: id} vocabulary (WordPiece, BPE): fills vocab and the id -> token table.
Status parse_object_vocab(const json::Value& vocab, detail::TokenizerImpl& impl, std::string_view model) {
    if (!vocab.is_object()) return invalid_argument(fmt::format("{} vocab is not an object", model));
    const std::size_t bound = sparse_id_bound(vocab.as_object().size());
    for (const auto& [token, id] : vocab.as_object()) {
        QUIVER_ASSIGN_OR_RETURN(std::int32_t i, checked_id(id, fmt::format("{} vocab id of '{}'", model, token)));
        if (static_cast<std::size_t>(i) >= bound) {
            return invalid_argument(fmt::format("{} vocab id {} of '{}' is far outside a vocab of {} tokens", model, i,
                                                token, vocab.as_object().size()));
        }
        impl.vocab[token] = i;
        if (static_cast<std::size_t>(i) >= impl.tokens.size()) impl.tokens.resize(static_cast<std::size_t>(i) + 1);
        impl.tokens[static_cast<std::size_t>(i)] = token;
    }
    return ok_status();
}

Status parse_bpe(const json::Value& v, detail::TokenizerImpl& impl) {
    impl.kind = HfTokenizer::ModelKind::kBpe;
    impl.cache_id = detail::new_bpe_cache_id();
    QUIVER_TRY(parse_object_vocab(*member(v, "vocab"), impl, "BPE"));
    if (const json::Value* d = member(v, "dropout"); d != nullptr && !d->is_null() &&
                                                      !(d->is_number() && d->as_number() == 0.0)) {
        return unimplemented("BPE with dropout");
    }
    if (const std::string* p = get_string(v, "continuing_subword_prefix")) impl.bpe_prefix = *p;
    if (const std::string* p = get_string(v, "end_of_word_suffix")) impl.bpe_suffix = *p;
    impl.fuse_unk = get_bool(v, "fuse_unk", false);
    impl.byte_fallback = get_bool(v, "byte_fallback", false);
    impl.ignore_merges = get_bool(v, "ignore_merges", false);
    if (const std::string* u = get_string(v, "unk_token")) {
        auto it = impl.vocab.find(*u);
        if (it == impl.vocab.end()) return invalid_argument(fmt::format("BPE unk_token '{}' is not in the vocab", *u));
        impl.unk = it->second;
    }
    const json::Value* merges = member(v, "merges");
    if (merges == nullptr || !merges->is_array()) return invalid_argument("BPE model without a 'merges' list");
    const auto& list = merges->as_array();
    if (list.size() >= static_cast<std::size_t>(kMaxId)) return invalid_argument("BPE model with too many merges");
    impl.merges.reserve(list.size());
    std::string a;
    std::string b;
    for (std::size_t rank = 0; rank < list.size(); ++rank) {
        const json::Value& m = list[rank];
        if (m.is_string()) {  // "a b"
            const std::string& s = m.as_string();
            const std::size_t space = s.find(' ');
            if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
                return invalid_argument(fmt::format("BPE merge {} '{}' is not two tokens", rank, s));
            }
            a = s.substr(0, space);
            b = s.substr(space + 1);
        } else if (m.is_array() && m.as_array().size() == 2 && m.as_array()[0].is_string() && m.as_array()[1].is_string()) {
            a = m.as_array()[0].as_string();
            b = m.as_array()[1].as_string();
        } else {
            return invalid_argument(fmt::format("BPE merge {} is neither \"a b\" nor [a, b]", rank));
        }
        auto ia = impl.vocab.find(a);
        auto ib = impl.vocab.find(b);
        if (ia == impl.vocab.end() || ib == impl.vocab.end()) {
            return invalid_argument(fmt::format("BPE merge {} uses a token outside the vocab", rank));
        }
        const std::size_t skip = (!impl.bpe_prefix.empty() && b.rfind(impl.bpe_prefix, 0) == 0) ? impl.bpe_prefix.size() : 0;
        auto in = impl.vocab.find(a + b.substr(skip));
        if (in == impl.vocab.end()) return invalid_argument(fmt::format("BPE merge {} makes a token outside the vocab", rank));
        const std::uint64_t key = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(ia->second)) << 32) |
                                  static_cast<std::uint32_t>(ib->second);
        impl.merges[key] = {static_cast<std::uint32_t>(rank), in->second};
    }
    return ok_status();
}

Status parse_model(const json::Value& v, detail::TokenizerImpl& impl) {
    const json::Value* vocab = member(v, "vocab");
    if (vocab == nullptr) return invalid_argument("model without a 'vocab'");
    const std::string* type = get_string(v, "type");
    std::string t = type != nullptr ? *type : "";
    if (t.empty()) {  // an untagged model: BPE has merges, Unigram a list vocabulary, WordPiece a map
        if (member(v, "merges") != nullptr) t = "BPE";
        else if (vocab->is_array()) t = "Unigram";
        else t = "WordPiece";
    }
    if (t == "WordPiece") {
        impl.kind = HfTokenizer::ModelKind::kWordPiece;
        QUIVER_TRY(parse_object_vocab(*vocab, impl, "WordPiece"));
        if (const std::string* p = get_string(v, "continuing_subword_prefix")) impl.continuing_prefix = *p;
        if (const json::Value* m = member(v, "max_input_chars_per_word"); m != nullptr && m->is_integer()) {
            impl.max_input_chars = static_cast<std::size_t>(std::max<std::int64_t>(0, m->as_int()));
        }
        const std::string* unk = get_string(v, "unk_token");
        const std::string unk_token = unk != nullptr ? *unk : "[UNK]";
        auto it = impl.vocab.find(unk_token);
        if (it == impl.vocab.end()) return invalid_argument(fmt::format("unk_token '{}' is not in the vocab", unk_token));
        impl.unk = it->second;
    } else if (t == "BPE") {
        QUIVER_TRY(parse_bpe(v, impl));
    } else if (t == "Unigram") {
        impl.kind = HfTokenizer::ModelKind::kUnigram;
        if (!vocab->is_array()) return invalid_argument("Unigram vocab is not an array");
        impl.byte_fallback = get_bool(v, "byte_fallback", false);
        const auto& arr = vocab->as_array();
        if (arr.size() >= static_cast<std::size_t>(kMaxId)) return invalid_argument("Unigram vocab is too large");
        impl.tokens.reserve(arr.size());
        impl.scores.reserve(arr.size());
        impl.min_score = std::numeric_limits<double>::max();
        for (const auto& e : arr) {
            if (!e.is_array() || e.as_array().size() != 2 || !e.as_array()[0].is_string() || !e.as_array()[1].is_number()) {
                return invalid_argument("Unigram vocab entry is not [piece, score]");
            }
            const std::string& piece = e.as_array()[0].as_string();
            if (auto c = to_u32(piece, "Unigram piece"); !c) return std::move(c).error();
            impl.vocab.insert_or_assign(piece, static_cast<std::int32_t>(impl.tokens.size()));  // last one wins
            impl.tokens.push_back(piece);
            impl.scores.push_back(serde_json_f64(e.as_array()[1].as_number()));
            impl.min_score = std::min(impl.min_score, impl.scores.back());
        }
        if (const json::Value* u = member(v, "unk_id"); u != nullptr && !u->is_null()) {
            QUIVER_ASSIGN_OR_RETURN(impl.unk, checked_id(*u, "Unigram unk_id"));
            if (static_cast<std::size_t>(impl.unk) >= arr.size()) return invalid_argument("Unigram unk_id is out of range");
        }
    } else {
        return unimplemented(fmt::format("tokenizer model '{}'", t));
    }
    return ok_status();
}

Status parse_added_tokens(const json::Value& list, detail::TokenizerImpl& impl) {
    if (list.is_null()) return ok_status();
    if (!list.is_array()) return invalid_argument("'added_tokens' is not a list");
    const std::size_t bound = sparse_id_bound(impl.tokens.size() + list.as_array().size());
    for (const auto& e : list.as_array()) {
        const std::string* content = get_string(e, "content");
        const json::Value* id = member(e, "id");
        if (content == nullptr || id == nullptr) return invalid_argument("added token without 'id' and 'content'");
        detail::AddedToken tok;
        QUIVER_ASSIGN_OR_RETURN(tok.id, checked_id(*id, fmt::format("added token '{}' id", *content)));
        if (static_cast<std::size_t>(tok.id) >= bound) {
            return invalid_argument(fmt::format("added token '{}' id {} is far outside a vocab of {} tokens", *content,
                                                tok.id, impl.tokens.size()));
        }
        QUIVER_ASSIGN_OR_RETURN(tok.content, to_u32(*content, "added token"));
        const bool special = get_bool(e, "special", false);
        tok.single_word = get_bool(e, "single_word", false);
        tok.lstrip = get_bool(e, "lstrip", false);
        tok.rstrip = get_bool(e, "rstrip", false);
        tok.normalized = get_bool(e, "normalized", !special);
        const auto i = static_cast<std::size_t>(tok.id);
        if (i >= impl.tokens.size()) impl.tokens.resize(i + 1);
        if (impl.tokens[i].empty()) impl.tokens[i] = *content;
        impl.added.push_back(std::move(tok));
    }
    return ok_status();
}

// The longest token (in characters) and, for Unigram, the trie of the pieces.
void index_vocab(detail::TokenizerImpl& impl) {
    for (const auto& [token, id] : impl.vocab) {
        const auto chars = static_cast<std::size_t>(
            std::count_if(token.begin(), token.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
        impl.max_token_chars = std::max(impl.max_token_chars, chars);
        if (impl.kind != HfTokenizer::ModelKind::kUnigram || token.empty()) continue;
        if (impl.trie.empty()) impl.trie.emplace_back();
        std::int32_t node = 0;
        for (char ch : token) {
            const auto byte = static_cast<unsigned char>(ch);
            auto& next = impl.trie[static_cast<std::size_t>(node)].next;
            auto it = std::lower_bound(next.begin(), next.end(), byte,
                                       [](const std::pair<unsigned char, std::int32_t>& x, unsigned char v) { return x.first < v; });
            if (it != next.end() && it->first == byte) {
                node = it->second;
            } else {
                const auto child = static_cast<std::int32_t>(impl.trie.size());
                next.insert(it, {byte, child});
                impl.trie.emplace_back();
                node = child;
            }
        }
        impl.trie[static_cast<std::size_t>(node)].id = id;
    }
    if (impl.trie.empty()) impl.trie.emplace_back();
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
    index_vocab(impl);
    if (const json::Value* n = doc->find("normalizer")) {
        if (auto s = parse_normalizer(*n, impl.norm); !s) return ctx(std::move(s).error());
    }
    if (const json::Value* p = doc->find("pre_tokenizer")) {
        if (auto s = parse_pre_tokenizer(*p, impl.pre); !s) return ctx(std::move(s).error());
    }
    if (const json::Value* p = doc->find("post_processor")) {
        if (auto s = parse_post_processor(*p, impl); !s) return ctx(std::move(s).error());
    }
    if (const json::Value* a = doc->find("added_tokens")) {
        if (auto s = parse_added_tokens(*a, impl); !s) return ctx(std::move(s).error());
    }
    if (const json::Value* t = doc->find("truncation"); t != nullptr && !t->is_null()) {
        const json::Value* m = member(*t, "max_length");
        if (m == nullptr || !m->is_integer() || m->as_int() < 0) return ctx(invalid_argument("truncation without a max_length"));
        impl.truncation = static_cast<std::size_t>(m->as_int());
        const std::string* dir = get_string(*t, "direction");
        impl.truncate_left = dir != nullptr && *dir == "Left";
    }
    // Normalised added tokens match their normalised form; normalisation runs piecewise only when no
    // step could join text across a space (see TokenizerImpl::segment).
    // A charsmap may turn a character before a space into a space (U+200B becomes ' ' in nmt_nfkc) that a
    // later step joins with it, or drop a space; with one, a chunk ends only after an ASCII letter or digit
    // that no key starts with, and not at all if a key starts with a space.
    bool can_make_space = false;
    for (const NormStep& n : impl.norm) {
        if (n.kind == NormStep::Kind::kPrepend || (n.kind == NormStep::Kind::kReplace && n.from.size() > 1)) {
            impl.chunkable = false;
        }
        if ((n.kind == NormStep::Kind::kCollapseWhitespace || n.kind == NormStep::Kind::kCollapseSpaces) && can_make_space) {
            impl.chunkable = false;
        }
        if (n.kind == NormStep::Kind::kReplace &&
            std::any_of(n.to.begin(), n.to.end(), [](char32_t c) { return wu::is_whitespace(c); })) {
            can_make_space = true;
        }
        if (n.kind == NormStep::Kind::kPrecompiled) {
            if (n.charsmap->maps_ascii(' ')) impl.chunkable = false;
            if (!impl.cut_after_ascii_only) {
                for (unsigned char c = 0; c < 128; ++c) {
                    impl.cut_after[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
                }
                impl.cut_after_ascii_only = true;
            }
            for (unsigned char c = 0; c < 128; ++c) impl.cut_after[c] = impl.cut_after[c] && !n.charsmap->maps_ascii(c);
        }
    }
    for (auto& a : impl.added) {
        if (!a.normalized) continue;
        impl.normalize(a.content, true, true);
        if (std::any_of(a.content.begin(), a.content.end(), [](char32_t c) { return wu::is_whitespace(c); })) {
            impl.chunkable = false;
        }
    }
    impl.raw_matcher.build(impl.added, false);
    impl.normalized_matcher.build(impl.added, true);
    for (const auto& ids : {&impl.prefix, &impl.suffix}) {
        for (std::int32_t id : *ids) {
            if (static_cast<std::size_t>(id) >= impl.tokens.size()) {
                return ctx(invalid_argument(fmt::format("special token id {} is outside the vocab of {}", id, impl.tokens.size())));
            }
        }
    }
    for (const auto& [token, id] : impl.vocab) {
        (void)token;
        if (static_cast<std::size_t>(id) >= impl.tokens.size()) return ctx(invalid_argument("vocab id out of range"));
    }
    return tok;
}

Result<HfTokenizer> HfTokenizer::from_vocab_txt(const std::string& path, bool lowercase) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    std::size_t bad = 0;
    if (!wu::valid_utf8(text, &bad)) {
        return invalid_argument(fmt::format("'{}' is not valid UTF-8 (byte {})", path, bad));
    }
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
    index_vocab(impl);
    QUIVER_ASSIGN_OR_RETURN(impl.unk, need("[UNK]"));
    QUIVER_ASSIGN_OR_RETURN(std::int32_t cls, need("[CLS]"));
    QUIVER_ASSIGN_OR_RETURN(std::int32_t sep, need("[SEP]"));
    impl.prefix = {cls};
    impl.suffix = {sep};
    impl.prefix_tokens = {"[CLS]"};
    impl.suffix_tokens = {"[SEP]"};
    // BertTokenizer's special tokens are never split.
    for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
        if (auto it = impl.vocab.find(special); it != impl.vocab.end()) {
            detail::AddedToken a;
            a.id = it->second;
            for (const char* c = special; *c != 0; ++c) a.content.push_back(static_cast<char32_t>(*c));
            impl.added.push_back(std::move(a));
        }
    }
    impl.raw_matcher.build(impl.added, false);
    impl.normalized_matcher.build(impl.added, true);
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
    std::size_t bad = 0;
    if (!wu::valid_utf8(text, &bad)) {
        return invalid_argument(fmt::format("text is not valid UTF-8 (byte {} of {})", bad, text.size()));
    }
    detail::Sink sink{out, nullptr, max_tokens, out.size(), 0};
    return impl_->run(text, sink);
}

Result<std::vector<std::int32_t>> HfTokenizer::encode(std::string_view text, std::size_t max_length) const {
    const std::size_t specials = impl_->prefix.size() + impl_->suffix.size();
    if (max_length < specials || max_length == 0) {
        return invalid_argument(fmt::format("max_length {} leaves no room for tokens", max_length));
    }
    std::vector<std::int32_t> ids(impl_->prefix);
    const std::size_t budget = max_length - specials;
    if (budget > 0) {
        QUIVER_TRY(tokenize(text, ids, budget));
    } else {
        std::vector<std::int32_t> ignored;  // still validate the text
        QUIVER_TRY(tokenize(text, ignored, 1));
    }
    ids.insert(ids.end(), impl_->suffix.begin(), impl_->suffix.end());
    return ids;
}

Result<HfTokenizer::Encoding> HfTokenizer::encode_full(std::string_view text, bool add_special_tokens,
                                                        std::size_t max_length) const {
    const Impl& impl = *impl_;
    if (max_length == 0) max_length = impl.truncation;
    const std::size_t specials = add_special_tokens ? impl.prefix.size() + impl.suffix.size() : 0;
    if (max_length != 0 && max_length < specials) {
        return invalid_argument(fmt::format("max_length {} is below the {} special tokens", max_length, specials));
    }
    std::size_t bad = 0;
    if (!wu::valid_utf8(text, &bad)) {
        return invalid_argument(fmt::format("text is not valid UTF-8 (byte {} of {})", bad, text.size()));
    }
    Encoding enc;
    if (add_special_tokens) {
        enc.ids = impl.prefix;
        enc.tokens = impl.prefix_tokens;
    }
    const std::size_t budget = max_length == 0 ? 0 : max_length - specials;
    if (max_length == 0 || budget > 0) {
        // Left truncation keeps the last tokens, so it tokenises everything.
        detail::Sink sink{enc.ids, &enc.tokens, impl.truncate_left ? 0 : budget, enc.ids.size(), enc.tokens.size()};
        const std::size_t first = enc.ids.size();
        QUIVER_TRY(impl.run(text, sink));
        if (impl.truncate_left && budget != 0 && enc.ids.size() - first > budget) {
            const auto drop = static_cast<std::ptrdiff_t>(enc.ids.size() - first - budget);
            enc.ids.erase(enc.ids.begin() + static_cast<std::ptrdiff_t>(first), enc.ids.begin() + static_cast<std::ptrdiff_t>(first) + drop);
            enc.tokens.erase(enc.tokens.begin() + static_cast<std::ptrdiff_t>(first),
                             enc.tokens.begin() + static_cast<std::ptrdiff_t>(first) + drop);
        }
    }
    if (add_special_tokens) {
        enc.ids.insert(enc.ids.end(), impl.suffix.begin(), impl.suffix.end());
        enc.tokens.insert(enc.tokens.end(), impl.suffix_tokens.begin(), impl.suffix_tokens.end());
    }
    return enc;
}

std::size_t HfTokenizer::truncation_max_length() const noexcept { return impl_->truncation; }
HfTokenizer::ModelKind HfTokenizer::model_kind() const noexcept { return impl_->kind; }
std::size_t HfTokenizer::vocab_size() const noexcept { return impl_->tokens.size(); }
std::optional<std::int32_t> HfTokenizer::token_to_id(std::string_view token) const {
    auto it = impl_->vocab.find(std::string(token));
    if (it != impl_->vocab.end()) return it->second;
    for (const auto& a : impl_->added) {
        if (wu::to_utf8(a.content) == token) return a.id;
    }
    return std::nullopt;
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
