// WordPiece against reference tokenisations from an independent Python implementation of the
// Hugging Face BertTokenizer algorithm (scripts/make_encoder_fixtures.py; `tokenizers` is not packaged).
#include "quiver/text/wordpiece.h"

#include <gtest/gtest.h>

#include "encode/encode_testing.h"
#include "testing/testing.h"

namespace quiver::text {
namespace {

using quiver::testing::encode_fixture;
using quiver::testing::load_json;

void check_cases(const HfTokenizer& tok, const json::Value& cases) {
    std::size_t checked = 0;
    for (const auto& c : cases.as_array()) {
        const std::string& text = c.find("text")->as_string();
        const auto max_length = static_cast<std::size_t>(c.find("max_length")->as_int());
        std::vector<std::int32_t> want;
        for (const auto& id : c.find("ids")->as_array()) want.push_back(static_cast<std::int32_t>(id.as_int()));
        auto got = tok.encode(text, max_length);
        ASSERT_TRUE(got.ok()) << got.error().message();
        EXPECT_EQ(*got, want) << "text: '" << text << "' max_length " << max_length;
        ++checked;
    }
    EXPECT_GT(checked, 20u);
}

TEST(WordPiece, MatchesReferenceOnHardStringsTinyVocab) {
    const json::Value cases = load_json(encode_fixture("wordpiece_cases.json"));
    auto tok = HfTokenizer::load(encode_fixture("bert-mean/tokenizer.json"));
    ASSERT_TRUE(tok.ok()) << tok.error().message();
    check_cases(*tok, *cases.find("tiny")->find("cases"));
}

TEST(WordPiece, MatchesReferenceOnHardStringsBgeVocab) {
    QUIVER_REQUIRE_DATA(dir, "model2vec-test-fixtures");
    const json::Value cases = load_json(encode_fixture("wordpiece_cases.json"));
    auto tok = HfTokenizer::load(dir + "/test-model-float32/tokenizer.json");
    ASSERT_TRUE(tok.ok()) << tok.error().message();
    EXPECT_EQ(tok->vocab_size(), 29528u);
    check_cases(*tok, *cases.find("bge")->find("cases"));
}

TEST(WordPiece, TokenizeWithoutSpecialTokensAndLimit) {
    auto tok = HfTokenizer::load(encode_fixture("bert-mean/tokenizer.json"));
    ASSERT_TRUE(tok.ok());
    std::vector<std::int32_t> ids;
    ASSERT_TRUE(tok->tokenize("hello world, hello world", ids).ok());
    EXPECT_EQ(ids.size(), 5u);
    EXPECT_EQ(tok->id_to_token(ids[0]), "hello");
    EXPECT_EQ(tok->id_to_token(ids[2]), ",");
    ids.clear();
    ASSERT_TRUE(tok->tokenize("hello world, hello world", ids, 2).ok());
    EXPECT_EQ(ids.size(), 2u);
}

TEST(WordPiece, RejectsInvalidUtf8) {
    auto tok = HfTokenizer::load(encode_fixture("bert-mean/tokenizer.json"));
    ASSERT_TRUE(tok.ok());
    for (std::string bad : {std::string("abc\xff"), std::string("\xc3"), std::string("\xed\xa0\x80"),
                            std::string("\xc0\xaf")}) {
        auto r = tok->encode(bad, 16);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(r.error().message().find("UTF-8"), std::string::npos);
    }
}

TEST(WordPiece, RejectsUnsupportedComponentsByName) {
    auto r = HfTokenizer::from_json_text(
        R"({"normalizer": {"type": "Nmt"}, "model": {"type": "BPE", "vocab": {}, "merges": []}})", "inline");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kUnimplemented);
    EXPECT_NE(r.error().message().find("Nmt"), std::string::npos);
    // An empty charsmap is not a charsmap (the tokenizers library refuses it too).
    auto empty = HfTokenizer::from_json_text(
        R"({"normalizer": {"type": "Precompiled", "precompiled_charsmap": ""},
            "model": {"type": "BPE", "vocab": {}, "merges": []}})", "inline");
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.error().code(), ErrorCode::kDataLoss);
    EXPECT_NE(empty.error().message().find("precompiled_charsmap"), std::string::npos);
    auto r2 = HfTokenizer::from_json_text(R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})", "inline");
    ASSERT_FALSE(r2.ok());
    EXPECT_NE(r2.error().message().find("[UNK]"), std::string::npos);
    auto r3 = HfTokenizer::from_json_text("{not json", "inline");
    ASSERT_FALSE(r3.ok());
}

TEST(WordPiece, UnigramMetaspaceSegmentsWithViterbi) {
    auto r = HfTokenizer::from_json_text(R"({
      "normalizer": {"type": "Lowercase"},
      "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": true},
      "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["\u2581hello", -1.0], ["\u2581he", -2.0],
                ["llo", -2.0], ["\u2581", -3.0], ["w", -4.0], ["orld", -4.0], ["\u2581world", -1.5]]}})", "inline");
    ASSERT_TRUE(r.ok()) << r.error().message();
    std::vector<std::int32_t> ids;
    ASSERT_TRUE(r->tokenize("Hello World", ids).ok());
    EXPECT_EQ(ids, (std::vector<std::int32_t>{1, 7}));
    ids.clear();
    ASSERT_TRUE(r->tokenize("hello zz", ids).ok());  // "▁zz": ▁ then unknown z z fused into one unk
    EXPECT_EQ(ids, (std::vector<std::int32_t>{1, 4, 0}));
}

}  // namespace
}  // namespace quiver::text
