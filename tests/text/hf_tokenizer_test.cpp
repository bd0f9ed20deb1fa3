// The Hugging Face tokenizer pipeline (quiver/text/wordpiece.h): the behaviours review found wrong,
// hand-checked BPE and Unigram cases, truncation that stops early, and malformed files. The id-for-id
// comparison with the tokenizers library itself is tests/text/hf_reference_test.js.
#include "quiver/text/wordpiece.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "quiver/storage/file_format.h"
#include "testing/testing.h"
#include "text/precompiled.h"
#include "text/wordpiece_unicode.h"

namespace quiver::text {
namespace {

std::string source_file(const std::string& rel) { return std::string(QUIVER_SOURCE_DIR) + "/" + rel; }

HfTokenizer load(const std::string& rel) {
    auto t = HfTokenizer::load(source_file(rel));
    EXPECT_TRUE(t.ok()) << rel << ": " << (t.ok() ? "" : t.error().message());
    return t.ok() ? std::move(*t) : HfTokenizer();
}

std::vector<std::int32_t> ids_of(const HfTokenizer& tok, std::string_view text, std::size_t limit = 0) {
    std::vector<std::int32_t> ids;
    auto s = tok.tokenize(text, ids, limit);
    EXPECT_TRUE(s.ok()) << s.error().message();
    return ids;
}

std::vector<std::string> fixtures() {
    std::vector<std::string> out{"tests/data/encode/bert-mean/tokenizer.json"};
    for (const auto& e : std::filesystem::directory_iterator(source_file("tests/data/text"))) {
        if (e.path().extension() == ".json") out.push_back("tests/data/text/" + e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

TEST(HfTokenizer, SpecialTokensInTheTextAreNotSplit) {
    const HfTokenizer tok = load("tests/data/encode/bert-mean/tokenizer.json");
    // [CLS]=4 hello=130 [MASK]=6 world=131 [SEP]=5: the added token is matched before normalisation.
    auto enc = tok.encode("hello [MASK] world", 16);
    ASSERT_TRUE(enc.ok());
    EXPECT_EQ(*enc, (std::vector<std::int32_t>{4, 130, 6, 131, 5}));
    EXPECT_EQ(ids_of(tok, "hello[MASK]world"), (std::vector<std::int32_t>{130, 6, 131}));
    EXPECT_EQ(ids_of(tok, "[MASK][MASK]"), (std::vector<std::int32_t>{6, 6}));
    // normalized=false: matched in the raw text only, so the lower-cased spelling is plain text.
    const auto lower = ids_of(tok, "[mask]");  // [ m ##a ##s ##k ]
    ASSERT_EQ(lower.size(), 6u);
    EXPECT_EQ(tok.id_to_token(lower.front()), "[");
    EXPECT_EQ(tok.id_to_token(lower.back()), "]");
    auto full = tok.encode_full("a [MASK] b", true);
    ASSERT_TRUE(full.ok());
    EXPECT_EQ(full->tokens, (std::vector<std::string>{"[CLS]", "a", "[MASK]", "b", "[SEP]"}));
}

TEST(HfTokenizer, AddedTokenOptionsLstripRstripSingleWordNormalized) {
    auto tok = HfTokenizer::from_json_text(R"({
      "added_tokens": [
        {"id": 10, "content": "<mask>", "lstrip": true, "rstrip": false, "single_word": false, "normalized": false, "special": true},
        {"id": 11, "content": "<sw>", "lstrip": false, "rstrip": true, "single_word": true, "normalized": false, "special": true},
        {"id": 12, "content": "Jet", "lstrip": false, "rstrip": false, "single_word": false, "normalized": true, "special": false}],
      "normalizer": {"type": "Lowercase"},
      "pre_tokenizer": {"type": "WhitespaceSplit"},
      "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "a": 1, "b": 2, "jet": 3, "<": 4, "##s": 5}}})",
                                         "inline");
    ASSERT_TRUE(tok.ok()) << tok.error().message();
    auto enc = tok->encode_full("a   <mask> b", false);
    ASSERT_TRUE(enc.ok());
    EXPECT_EQ(enc->ids, (std::vector<std::int32_t>{1, 10, 2}));
    EXPECT_EQ(enc->tokens[1], "   <mask>");  // lstrip takes the spaces into the token
    EXPECT_EQ(ids_of(*tok, "a <sw>  b"), (std::vector<std::int32_t>{1, 11, 2}));
    // Inside a word <sw> is not matched: "a<sw>b" stays one word, which the vocabulary cannot segment.
    EXPECT_EQ(ids_of(*tok, "a<sw>b"), (std::vector<std::int32_t>{0}));
    // normalized=true: "Jet" is matched in the lower-cased text as "jet".
    EXPECT_EQ(ids_of(*tok, "JET b"), (std::vector<std::int32_t>{12, 2}));
}

TEST(HfTokenizer, StripAccentsWithoutNfdDoesNotDecompose) {
    const std::string vocab = R"("vocab": {"[UNK]": 0, "\u00e9": 1, "e": 2})";
    auto alone = HfTokenizer::from_json_text(R"({"normalizer": {"type": "StripAccents"}, "pre_tokenizer": {"type": "WhitespaceSplit"},
      "model": {"type": "WordPiece", )" + vocab + "}}", "inline");
    auto nfd = HfTokenizer::from_json_text(R"({"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}]},
      "pre_tokenizer": {"type": "WhitespaceSplit"}, "model": {"type": "WordPiece", )" + vocab + "}}", "inline");
    ASSERT_TRUE(alone.ok()) << alone.error().message();
    ASSERT_TRUE(nfd.ok()) << nfd.error().message();
    EXPECT_EQ(ids_of(*alone, "\u00e9"), (std::vector<std::int32_t>{1}));   // precomposed é stays
    EXPECT_EQ(ids_of(*alone, "e\u0301"), (std::vector<std::int32_t>{2}));  // the combining mark goes
    EXPECT_EQ(ids_of(*nfd, "\u00e9"), (std::vector<std::int32_t>{2}));
}

TEST(HfTokenizer, BpeMergesByRank) {
    auto tok = HfTokenizer::from_json_text(R"({"model": {"type": "BPE",
      "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5}, "merges": ["b c", ["a", "b"], "a bc"]}})", "inline");
    ASSERT_TRUE(tok.ok()) << tok.error().message();
    EXPECT_EQ(tok->model_kind(), HfTokenizer::ModelKind::kBpe);
    EXPECT_EQ(ids_of(*tok, "abc"), (std::vector<std::int32_t>{5}));     // b+c (rank 0) before a+b (rank 1)
    EXPECT_EQ(ids_of(*tok, "abab"), (std::vector<std::int32_t>{3, 3}));
    EXPECT_EQ(ids_of(*tok, "cab"), (std::vector<std::int32_t>{2, 3}));
    EXPECT_EQ(ids_of(*tok, "axb"), (std::vector<std::int32_t>{3}));  // no unk_token: x is dropped, a+b merge
}

TEST(HfTokenizer, ByteLevelBpeKeepsEveryByte) {
    const HfTokenizer tok = load("tests/data/text/bpe-gpt2.json");
    for (std::string text : {"héllo wörld", "中文 😀 \t\n", "naïve\u00a0café"}) {
        auto enc = tok.encode_full(text, false);
        ASSERT_TRUE(enc.ok());
        std::string joined;
        for (const auto& t : enc->tokens) joined += t;
        // Every byte becomes one symbol of the byte alphabet: the token characters cover all bytes.
        std::size_t chars = 0;
        for (unsigned char c : joined) chars += (c & 0xC0) != 0x80;
        EXPECT_EQ(chars, text.size()) << text;
    }
}

TEST(HfTokenizer, UnigramFusesUnknownsAndFallsBackToBytes) {
    auto tok = HfTokenizer::from_json_text(R"({"pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": true},
      "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": true, "vocab": [["<unk>", 0.0], ["\u2581", -1.0], ["a", -1.0],
                ["<0xC3>", -5.0], ["<0xA9>", -5.0]]}})", "inline");
    ASSERT_TRUE(tok.ok()) << tok.error().message();
    auto enc = tok->encode_full("a\u00e9", false);
    ASSERT_TRUE(enc.ok());
    EXPECT_EQ(enc->ids, (std::vector<std::int32_t>{1, 2, 3, 4}));
    EXPECT_EQ(enc->tokens, (std::vector<std::string>{"\u2581", "a", "<0xC3>", "<0xA9>"}));
    // Without byte pieces the two unknown characters fuse into one [UNK] whose text is both.
    auto enc2 = tok->encode_full("a\u4e2d\u6587", false);
    ASSERT_TRUE(enc2.ok());
    EXPECT_EQ(enc2->ids, (std::vector<std::int32_t>{1, 2, 0}));
    EXPECT_EQ(enc2->tokens.back(), "\u4e2d\u6587");
}

// The truncated tokenisation is the prefix of the full one for every fixture, at every limit,
// though long texts are normalised and pre-tokenised in chunks.
TEST(HfTokenizer, TruncationEqualsPrefixOfFullTokenization) {
    std::string text;
    std::mt19937 rng(16);
    const std::vector<std::string> words{"aerodynamic", "flow", "Café", "naïve", "中文", "😀", "[MASK]", "<mask>", "don't",
                                         "1957", "3.5", "  ", "\n", "\t", "-", "...", "<|endoftext|>", "Aerofoil", "jet"};
    while (text.size() < 200000) text += words[rng() % words.size()] + (rng() % 3 == 0 ? "" : " ");
    for (const std::string& f : fixtures()) {
        const HfTokenizer tok = load(f);
        const auto all = ids_of(tok, text);
        ASSERT_GT(all.size(), 15000u) << f;
        for (std::size_t limit : {std::size_t{1}, std::size_t{7}, std::size_t{100}, std::size_t{2000}, all.size() - 1,
                                  all.size(), all.size() + 10}) {
            const auto part = ids_of(tok, text, limit);
            ASSERT_EQ(part.size(), std::min(limit, all.size())) << f << " limit " << limit;
            EXPECT_TRUE(std::equal(part.begin(), part.end(), all.begin())) << f << " limit " << limit;
        }
        auto enc = tok.encode_full(text, true, 64);
        ASSERT_TRUE(enc.ok());
        EXPECT_EQ(enc->ids.size(), 64u) << f;
        EXPECT_EQ(enc->tokens.size(), 64u) << f;
    }
}

TEST(HfTokenizer, RejectsBadUtf8AndMaxLengthBelowSpecials) {
    const HfTokenizer tok = load("tests/data/text/unigram.json");
    auto bad = tok.encode_full(std::string("ab\xff"), true);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
    auto tiny = tok.encode_full("abc", true, 1);  // <s> and </s> need two ids
    ASSERT_FALSE(tiny.ok());
    EXPECT_EQ(tiny.error().code(), ErrorCode::kInvalidArgument);
}

// Extended grapheme clusters (UAX #29), which the Precompiled normalizer works on.
TEST(Precompiled, GraphemeClusters) {
    auto ends = [](std::u32string_view s) {
        std::vector<std::size_t> out;
        for (std::size_t i = 0; i < s.size(); i = out.back()) out.push_back(wordpiece_unicode::grapheme_end(s, i));
        return out;
    };
    using V = std::vector<std::size_t>;
    EXPECT_EQ(ends(U"abc"), (V{1, 2, 3}));
    EXPECT_EQ(ends(U"e\u0301x"), (V{2, 3}));                            // GB9: Extend
    EXPECT_EQ(ends(U"\r\n\r\r"), (V{2, 3, 4}));                          // GB3, GB4
    EXPECT_EQ(ends(U"\u0001\u0301"), (V{1, 2}));                         // GB4: no Extend after a control
    EXPECT_EQ(ends(U"\U0001F469\u200D\U0001F469\u200D\U0001F467!"), (V{5, 6}));  // GB11
    EXPECT_EQ(ends(U"a\u200D\U0001F469"), (V{2, 3}));                     // GB11 needs a pictograph first
    EXPECT_EQ(ends(U"\U0001F1FA\U0001F1F8\U0001F1E9\U0001F1EA\U0001F1EB"), (V{2, 4, 5}));  // GB12, GB13
    EXPECT_EQ(ends(U"\u1100\u1161\u11A8\uAC00\u11A8\u1100"), (V{3, 5, 6}));  // GB6-GB8
    EXPECT_EQ(ends(U"\u0600 x"), (V{2, 3}));                              // GB9b: Prepend joins the space
    EXPECT_EQ(ends(U"\u0915\u0903k"), (V{2, 3}));                         // GB9a: SpacingMark
}

// A charsmap built by hand (one key, "A" -> "b"): one 256-unit block of darts-clone units, the root at
// unit 0 with base 0, the label unit at 0 ^ 'A' = 65 with offset 1 and a leaf, the leaf at 65 ^ 1 = 64
// with value 0.
std::string one_key_charsmap(std::string blob = std::string("b\0", 2), std::uint32_t leaf_value = 0,
                             std::uint32_t offset = 1) {
    std::vector<std::uint32_t> units(256, 0);
    units[65] = (offset << 10) | (1U << 8) | 'A';
    units[64] = 0x80000000U | leaf_value;
    std::string bytes;
    auto put = [&](std::uint32_t u) {
        for (int k = 0; k < 4; ++k) bytes.push_back(static_cast<char>((u >> (8 * k)) & 0xFF));
    };
    put(static_cast<std::uint32_t>(units.size() * 4));
    for (std::uint32_t u : units) put(u);
    return bytes + blob;
}

TEST(Precompiled, ShortestKeyReplacesAShortClusterWhole) {
    auto map = detail::Charsmap::parse(one_key_charsmap());
    ASSERT_TRUE(map.ok()) << map.error().message();
    EXPECT_EQ((*map)->replacements(), 1u);
    EXPECT_TRUE((*map)->maps_ascii('A'));
    EXPECT_FALSE((*map)->maps_ascii('b'));
    auto norm = [&](std::u32string_view s) {
        std::u32string out;
        (*map)->normalize(s, out);
        return out;
    };
    EXPECT_EQ(norm(U"xAyA"), U"xbyb");
    // "A" + U+0301 is a 3-byte cluster: its first key ("A") replaces all of it, the mark is dropped.
    EXPECT_EQ(norm(U"A\u0301 A"), U"b b");
    // A cluster of 6 bytes or more is replaced character by character.
    EXPECT_EQ(norm(U"A\u0301\u0301\u0301!"), U"b\u0301\u0301\u0301!");
    // A NUL is kept (it ends a key search).
    EXPECT_EQ(norm(std::u32string(U"a\0A", 3)), std::u32string(U"a\0b", 3));
}

// The XLM-R and T5 shaped fixtures (SentencePiece-built charsmaps; the figures are the tokenizers
// library's): fullwidth letters fold, the ligature before a combining accent becomes "fi" with the
// accent dropped, U+200B becomes a space that Replace(" {2,}") (XLM-R) or WhitespaceSplit (T5) merges,
// and "½" + U+20DD takes the replacement of its shortest key, "½".
TEST(Precompiled, XlmRAndT5ShapedFixtures) {
    using S = std::vector<std::string>;
    using I = std::vector<std::int32_t>;
    const HfTokenizer xlmr = load("tests/data/text/unigram-precompiled.json");
    const HfTokenizer t5 = load("tests/data/text/unigram-precompiled-t5.json");
    auto a = xlmr.encode_full("\uFF21\uFF22\uFF23  \uFB01le\u200B  x", true);
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ(a->tokens, (S{"<s>", "\u2581", "ABC", "\u2581", "f", "i", "le", "\u2581x", "</s>"}));
    EXPECT_EQ(a->ids, (I{2500, 4, 0, 4, 241, 347, 701, 333, 2501}));
    auto b = xlmr.encode_full("\uFB01\u0301le \u00BD\u20DD", true);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->tokens, (S{"<s>", "\u2581", "f", "i", "le", "\u25811", "\u2044", "2", "</s>"}));
    EXPECT_EQ(b->ids, (I{2500, 4, 241, 347, 701, 248, 0, 513, 2501}));
    auto c = t5.encode_full("\uFF21\uFF22\uFF23  \uFB01le\u200B  x", true);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->ids, (I{4, 0, 4, 241, 347, 701, 333, 2501}));
    auto d = t5.encode_full("\uFB01\u0301le \u00BD\u20DD", true);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->ids, (I{4, 241, 347, 701, 248, 0, 513, 2501}));
}

TEST(Precompiled, MalformedCharsmapsAreDataLoss) {
    auto expect_loss = [](const std::string& bytes, const char* needle) {
        auto r = detail::Charsmap::parse(bytes);
        ASSERT_FALSE(r.ok()) << needle;
        EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << r.error().message();
        EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
    };
    const std::string good = one_key_charsmap();
    expect_loss("", "no trie size");
    expect_loss(good.substr(0, 100), "trie of 1024 bytes");
    expect_loss(one_key_charsmap(std::string("b\xff\0", 3)), "not UTF-8");
    expect_loss(one_key_charsmap(std::string("b\0", 2), 7), "replacement offset 7");
    expect_loss(one_key_charsmap(std::string("\xc3\xa9\0", 3), 1), "replacement offset 1");  // inside a UTF-8 sequence
    expect_loss(one_key_charsmap(std::string("b\0", 2), 0, 300), "outside the trie");  // leaf at 65 ^ 300
    for (const char* b64 : {"QUJD=", "QU*D", "QQ==QQ=="}) {
        auto r = detail::Charsmap::from_base64(b64);
        ASSERT_FALSE(r.ok()) << b64;
        EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
    }
    auto r = HfTokenizer::from_json_text(R"({"normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"},
        "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})", "case");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
    EXPECT_NE(r.error().message().find("precompiled_charsmap"), std::string::npos);
}

TEST(HfTokenizer, MalformedFilesAreNamedErrors) {
    struct Case {
        const char* json;
        ErrorCode code;
        const char* needle;
    };
    const Case cases[] = {
        {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})", ErrorCode::kInvalidArgument, "merge 0"},
        {R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}})", ErrorCode::kInvalidArgument, "outside"},
        {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}})", ErrorCode::kInvalidArgument, "merge 0"},
        {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}})", ErrorCode::kUnimplemented, "dropout"},
        {R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": -1}}})", ErrorCode::kInvalidArgument, "id"},
        {R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 1000000000}}})", ErrorCode::kInvalidArgument, "far outside"},
        {R"({"added_tokens": [{"id": 900000000, "content": "x"}], "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})",
         ErrorCode::kInvalidArgument, "far outside"},
        {R"({"model": {"type": "Unigram", "unk_id": 5, "vocab": [["a", -1.0]]}})", ErrorCode::kInvalidArgument, "unk_id"},
        {R"({"model": {"type": "Unigram", "vocab": [["a"]]}})", ErrorCode::kInvalidArgument, "[piece, score]"},
        {R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"},
             "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})", ErrorCode::kUnimplemented, "regex"},
        {R"({"pre_tokenizer": {"type": "UnicodeScripts"}, "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})",
         ErrorCode::kUnimplemented, "UnicodeScripts"},
        {R"({"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]"}}],
             "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [7], "tokens": ["[CLS]"]}}},
             "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})", ErrorCode::kInvalidArgument, "outside the vocab"},
        {R"({"model": {"type": "Mystery", "vocab": {}}})", ErrorCode::kUnimplemented, "Mystery"},
        {R"({"normalizer": {"type": "Precompiled"}, "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})",
         ErrorCode::kInvalidArgument, "precompiled_charsmap"},
        {R"({"normalizer": {"type": "Replace", "pattern": {"Regex": " +"}, "content": " "},
             "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})", ErrorCode::kUnimplemented, "regex"},
        {R"([1, 2])", ErrorCode::kInvalidArgument, "JSON object"},
    };
    for (const Case& c : cases) {
        auto r = HfTokenizer::from_json_text(c.json, "case");
        ASSERT_FALSE(r.ok()) << c.json;
        EXPECT_EQ(r.error().code(), c.code) << c.json << ": " << r.error().message();
        EXPECT_NE(r.error().message().find(c.needle), std::string::npos) << r.error().message();
        EXPECT_NE(r.error().message().find("case"), std::string::npos) << r.error().message();
    }
}

// Random byte flips, truncations, deletions and duplications of every fixture tokenizer.json and of a
// vocab.txt: loading is an error or a tokenizer, and a loaded tokenizer only ever yields ids inside
// its vocabulary. (A crash fails the whole binary.)
TEST(HfTokenizer, FuzzedFilesNeverCrash) {
    std::mt19937_64 rng(1616);
    const std::vector<std::string> probes{"", "hello [MASK] world", "naïve café 中文 😀", "<mask> <s> </s> <|endoftext|>",
                                          std::string(300, 'a'), "a\tb\nc  d", "'s 'LL 123 4567"};
    auto mutate = [&](std::string s) {
        const int kind = static_cast<int>(rng() % 5);
        if (s.empty()) return s;
        const std::size_t at = rng() % s.size();
        switch (kind) {
            case 0: for (int i = 0; i < 1 + static_cast<int>(rng() % 8); ++i) s[rng() % s.size()] = static_cast<char>(rng()); break;
            case 1: s.resize(at); break;
            case 2: s.erase(at, rng() % 200); break;
            case 3: s.insert(at, s.substr(rng() % s.size(), rng() % 200)); break;
            default: {
                // Swap a digit for another, which keeps the JSON valid but breaks ids and shapes.
                for (std::size_t i = at; i < s.size(); ++i) {
                    if (s[i] >= '0' && s[i] <= '9') {
                        s[i] = static_cast<char>('0' + rng() % 10);
                        if (rng() % 2 == 0) s.insert(i, std::to_string(rng() % 100000));
                        break;
                    }
                }
            }
        }
        return s;
    };
    std::size_t loaded = 0;
    std::size_t rejected = 0;
    for (const std::string& f : fixtures()) {
        auto text = storage::read_file(source_file(f));
        ASSERT_TRUE(text.ok());
        for (int i = 0; i < 60; ++i) {
            const std::string bad = mutate(*text);
            auto tok = HfTokenizer::from_json_text(bad, f);
            if (!tok.ok()) {
                ++rejected;
                EXPECT_FALSE(tok.error().message().empty());
                continue;
            }
            ++loaded;
            for (const std::string& p : probes) {
                auto enc = tok->encode_full(p, true);
                if (!enc.ok()) continue;  // e.g. a Unigram vocabulary that lost its unk piece
                for (std::int32_t id : enc->ids) ASSERT_LT(static_cast<std::size_t>(id), tok->vocab_size()) << f;
                ASSERT_EQ(enc->ids.size(), enc->tokens.size());
            }
        }
    }
    EXPECT_GT(rejected, 0u);
    EXPECT_GT(loaded, 0u);
    testing::TempDir dir;
    const std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n";
    for (int i = 0; i < 200; ++i) {
        testing::write_bytes(dir.file("vocab.txt"), mutate(vocab));
        auto tok = HfTokenizer::from_vocab_txt(dir.file("vocab.txt"), true);
        if (!tok.ok()) continue;
        for (const std::string& p : probes) {
            std::vector<std::int32_t> ids;
            ASSERT_TRUE(tok->tokenize(p, ids).ok());
            for (std::int32_t id : ids) ASSERT_LT(static_cast<std::size_t>(id), tok->vocab_size());
        }
    }
}

}  // namespace
}  // namespace quiver::text
