#include "quiver/text/analyzer.h"

#include "sorted_counts.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace quiver::text {
namespace {

using Tokens = std::vector<std::string>;

Tokens tokens(std::string_view s, std::uint32_t max_len = 255) {
    Tokens out;
    tokenize_standard(s, max_len, out);
    return out;
}

TEST(StandardTokenizer, SplitsOnSpaceAndPunctuation) {
    EXPECT_EQ(tokens("Hello, world! (foo) bar-baz"), (Tokens{"Hello", "world", "foo", "bar", "baz"}));
    EXPECT_EQ(tokens(""), Tokens{});
    EXPECT_EQ(tokens("  ...  --- "), Tokens{});
}

TEST(StandardTokenizer, KeepsWordInternalPunctuation) {
    // UAX #29: apostrophes and periods between letters, commas and periods between digits.
    EXPECT_EQ(tokens("don't U.S.A. 3.14 1,000,000 e.g. abc123 x_y"),
              (Tokens{"don't", "U.S.A", "3.14", "1,000,000", "e.g", "abc123", "x_y"}));
    EXPECT_EQ(tokens("end. Next"), (Tokens{"end", "Next"}));
    EXPECT_EQ(tokens("a,b 1,a"), (Tokens{"a", "b", "1", "a"}));
}

TEST(StandardTokenizer, UnicodeLettersIdeographsAndMarks) {
    EXPECT_EQ(tokens("café naïve Ärger"), (Tokens{"café", "naïve", "Ärger"}));
    EXPECT_EQ(tokens("cafe\xCC\x81 x"), (Tokens{"cafe\xCC\x81", "x"}));  // combining acute stays attached
    EXPECT_EQ(tokens("日本語"), (Tokens{"日", "本", "語"}));
    EXPECT_EQ(tokens("αβγ δ"), (Tokens{"αβγ", "δ"}));
    EXPECT_EQ(tokens("word\xE2\x80\x94word"), (Tokens{"word", "word"}));  // em dash separates
}

TEST(StandardTokenizer, InvalidUtf8ActsAsSeparator) {
    EXPECT_EQ(tokens("ab\xFF" "cd \xC3"), (Tokens{"ab", "cd"}));
}

TEST(StandardTokenizer, SplitsOverlongTokens) {
    EXPECT_EQ(tokens("abcdefg", 3), (Tokens{"abc", "def", "g"}));
}

TEST(Analyzer, LuceneEnglishChain) {
    auto a = Analyzer::create({});
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->config().describe(), "lucene-english");
    // Possessive removed, lower-cased, stop words dropped, Porter-stemmed.
    EXPECT_EQ(a->analyze("The Dog's running AND jumping into the Lakes"), (Tokens{"dog", "run", "jump", "lake"}));
    EXPECT_EQ(a->analyze("relational generalizations"), (Tokens{"relat", "gener"}));
    EXPECT_EQ(a->analyze("O\xE2\x80\x99Neill\xE2\x80\x99s"), (Tokens{"o\xE2\x80\x99neil"}));
    EXPECT_EQ(a->analyze("ÉCOLE"), (Tokens{"école"}));
    EXPECT_EQ(a->analyze("the a an of"), Tokens{});
}

TEST(Analyzer, Configurable) {
    AnalyzerConfig c;
    c.stemmer = "";
    c.stop_words = StopWords::kNone;
    c.lowercase = false;
    auto a = Analyzer::create(c);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->analyze("The Dogs"), (Tokens{"The", "Dogs"}));
    EXPECT_NE(c.describe(), "lucene-english");
}

TEST(Analyzer, RejectsUnknownStemmer) {
    AnalyzerConfig c;
    c.stemmer = "klingon";
    auto a = Analyzer::create(c);
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(a.error().message().find("klingon"), std::string::npos);
    c.stemmer = "porter";
    c.max_token_length = 0;
    EXPECT_FALSE(Analyzer::create(c).ok());
}

// Each thread memoises the filters after the possessive one (its memo starts empty, so a fresh thread's
// first analysis computes every term). Analysers with other settings alternating in one thread, repeated
// text (memo hits) and more distinct words than the memo holds (cleared on the way) give exactly the
// terms a fresh thread computes.
TEST(Analyzer, PerThreadTermMemoGivesTheChainsTerms) {
    std::vector<AnalyzerConfig> configs(5);
    configs[1].stemmer = "english";
    configs[2].stemmer = "";
    configs[3].lowercase = false;
    configs[4].stop_words = StopWords::kNone;
    configs[4].english_possessive = false;
    std::string text = "The Dog's running AND jumping into the Lakes; generalizations of THE relational Dogs' owners";
    std::string many;
    for (int i = 0; i < 40000; ++i) many += "Word" + std::to_string(i) + "ing ";
    auto fresh = [](const AnalyzerConfig& c, const std::string& t) {
        Tokens out;
        std::thread th([&] {
            auto a = Analyzer::create(c);
            if (a.ok()) out = a->analyze(t);
        });
        th.join();
        return out;
    };
    std::vector<Tokens> want;
    for (const auto& c : configs) want.push_back(fresh(c, text));
    EXPECT_EQ(want[0], (Tokens{"dog", "run", "jump", "lake", "gener", "relat", "dog", "owner"}));
    EXPECT_NE(want[0], want[1]);
    EXPECT_NE(want[0], want[2]);
    EXPECT_NE(want[0], want[3]);
    EXPECT_NE(want[0], want[4]);
    const Tokens many_want = fresh(configs[0], many);
    ASSERT_EQ(many_want.size(), 40000u);
    EXPECT_EQ(many_want[7], "word7");
    std::vector<Analyzer> analyzers;
    for (const auto& c : configs) analyzers.push_back(std::move(Analyzer::create(c)).value());
    for (int round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i < configs.size(); ++i) {
            EXPECT_EQ(analyzers[i].analyze(text), want[i]) << "config " << i << " round " << round;
            EXPECT_EQ(analyzers[i].analyze(text), want[i]) << "config " << i << " round " << round;
        }
        EXPECT_EQ(analyzers[0].analyze(many), many_want) << round;
        EXPECT_EQ(analyzers[0].analyze(text), want[0]) << round;
    }
}

// ASCII text is tokenized byte by byte, other text through decoded characters; both run one grammar.
// Random strings over the grammar's ASCII classes (letters, digits, '_', ':', ',', ';', '.', '\'',
// separators) give the same tokens on both paths: the decoded path is forced by a last word "é"
// (a letter, so a token of its own after the space), at two token length caps.
TEST(StandardTokenizer, AsciiPathEqualsTheDecodedPath) {
    const std::string alphabet = "aZ9_:,;.' -";
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        std::string s;
        const int len = static_cast<int>(rng() % 24);
        for (int j = 0; j < len; ++j) s += alphabet[rng() % alphabet.size()];
        for (const std::uint32_t max_len : {255u, 3u}) {
            Tokens decoded = tokens(s + " \xC3\xA9", max_len);
            ASSERT_FALSE(decoded.empty());
            EXPECT_EQ(decoded.back(), "\xC3\xA9");
            decoded.pop_back();
            ASSERT_EQ(tokens(s, max_len), decoded) << "'" << s << "' max " << max_len;
        }
    }
}

// analyze_counts gives what sorting analyze()'s terms of the texts (in order) and counting the runs
// gives: tokens that share a term ("Cells", "cells"), possessives, stop words, Unicode, invalid bytes,
// overlong tokens, no text and empty texts; in one thread whose memo is fresh, warm, or fills up in the
// middle of a call (40,000 distinct words: the terms met once it is full are counted aside).
TEST(Analyzer, AnalyzeCountsEqualsSortedAnalyze) {
    std::string many;
    for (int i = 0; i < 40000; ++i) many += "Word" + std::to_string(i % 37000) + "ing ";
    const std::string overlong(600, 'x');
    const std::vector<std::vector<std::string_view>> cases = {
        {},
        {""},
        {"", ""},
        {"Cells cells CELL cell's the The a", "Cells and the cells' dogs"},
        {"Dog's running AND jumping into the Lakes", ""},
        {"caf\xC3\xA9 Caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E na\xC3\xAFve", "bad \xFF bytes \xC3 here"},
        {overlong, "x"},
        {many, "word5ing Word5ing"},
        {"word5ing", many},
    };
    for (const AnalyzerConfig& config : {AnalyzerConfig{}, AnalyzerConfig{.lowercase = false, .stemmer = ""}}) {
        std::thread th([&] {  // a fresh thread: its memo starts empty
            auto a = Analyzer::create(config);
            ASSERT_TRUE(a.ok());
            std::vector<std::pair<std::string, std::uint32_t>> got = {{"stale", 1}};
            for (int round = 0; round < 2; ++round) {
                for (std::size_t c = 0; c < cases.size(); ++c) {
                    const auto [want, want_length] = testing::sorted_counts(*a, cases[c]);
                    const std::uint64_t length = a->analyze_counts(cases[c], got);
                    EXPECT_EQ(got, want) << "case " << c << " round " << round;
                    EXPECT_EQ(length, want_length) << "case " << c << " round " << round;
                }
            }
        });
        th.join();
    }
}

TEST(Analyzer, StopSet) {
    EXPECT_TRUE(is_stop_word(StopWords::kLuceneEnglish, "the"));
    EXPECT_TRUE(is_stop_word(StopWords::kLuceneEnglish, "with"));
    EXPECT_FALSE(is_stop_word(StopWords::kLuceneEnglish, "about"));
    EXPECT_FALSE(is_stop_word(StopWords::kNone, "the"));
}

}  // namespace
}  // namespace quiver::text
