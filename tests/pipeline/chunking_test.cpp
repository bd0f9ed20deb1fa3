// Chunking windows by hand; aggregation against a brute-force reference on random hits.
#include "quiver/pipeline/chunking.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

namespace quiver::pipeline {
namespace {

TEST(Chunking, TokenWindowsWithOverlapAndSituatedText) {
    ChunkingSpec spec = *parse_chunking("tokens:size=4,overlap=2");
    auto c = chunk_document("T", "a b c d e f g", spec);
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[0], "a b c d");
    EXPECT_EQ(c[1], "c d e f");
    EXPECT_EQ(c[2], "e f g");
    EXPECT_EQ(chunk_document("T", "a  b\n", spec), (std::vector<std::string>{"a b"}));
    EXPECT_EQ(chunk_document("T", "", spec), (std::vector<std::string>{""}));
    EXPECT_EQ(chunk_document("", "a b c d e f", spec).size(), 2u);  // the second window reaches the end
    spec = *parse_chunking("tokens:size=3,overlap=0,situated=1,context=2");
    c = chunk_document("Title here", "a b c d e f g", spec);
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[0], "Title here a b c");
    EXPECT_EQ(c[1], "Title here b c d e f");
    EXPECT_EQ(c[2], "Title here e f g");
}

TEST(Chunking, SentencesAndParsing) {
    ChunkingSpec spec = *parse_chunking("sentences:size=2,overlap=1");
    auto c = chunk_document("", "One. Two! Three? Four 4.5 five.", spec);
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[0], "One. Two!");
    EXPECT_EQ(c[1], "Two! Three?");
    EXPECT_EQ(c[2], "Three? Four 4.5 five.");
    EXPECT_EQ(parse_chunking("sentences")->size, 3u);
    EXPECT_EQ(parse_chunking("tokens:aggregate=sump")->aggregation, ChunkAggregation::kSumP);
    EXPECT_FALSE(parse_chunking("words:size=3"));
    EXPECT_FALSE(parse_chunking("tokens:size=0"));
    EXPECT_FALSE(parse_chunking("tokens:size=4,overlap=4"));
    EXPECT_FALSE(parse_chunking("tokens:aggregate=avgp"));
    EXPECT_FALSE(parse_chunking("tokens:size=x"));
    EXPECT_FALSE(parse_chunking("tokens:stride=2"));
}

TEST(Chunking, SpecStringRoundTrips) {
    for (const char* text : {"tokens", "sentences", "tokens:size=7,overlap=0,aggregate=firstp",
                             "sentences:size=4,overlap=2,situated=1,context=3,aggregate=sump"}) {
        const ChunkingSpec spec = *parse_chunking(text);
        const std::string back = to_string(spec);
        auto again = parse_chunking(back);
        ASSERT_TRUE(again) << back;
        EXPECT_EQ(*again, spec) << text << " -> " << back;
        EXPECT_TRUE(validate_chunking(spec));
    }
    EXPECT_EQ(to_string(*parse_chunking("tokens:size=5,overlap=1")),
              "tokens:size=5,overlap=1,aggregate=maxp,situated=0,context=0");
    ChunkingSpec bad;
    bad.overlap = bad.size;
    EXPECT_EQ(validate_chunking(bad).error().code(), ErrorCode::kInvalidArgument);
}

TEST(ChunkAggregation, EqualsBruteForce) {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 300; ++trial) {
        // Random chunk hits: documents 0..9, chunks 0..4 each, every (doc, chunk) at most once.
        std::vector<ChunkHit> hits;
        for (std::uint32_t d = 0; d < 10; ++d) {
            for (std::uint32_t c = 0; c < 5; ++c) {
                if (rng() % 3 == 0) hits.push_back({d, c, static_cast<double>(rng() % 7) / 2.0});
            }
        }
        std::shuffle(hits.begin(), hits.end(), rng);
        for (auto agg : {ChunkAggregation::kMaxP, ChunkAggregation::kFirstP, ChunkAggregation::kSumP}) {
            std::map<std::uint32_t, double> want;
            for (std::uint32_t d = 0; d < 10; ++d) {
                bool any = false;
                double s = 0.0;
                for (const ChunkHit& h : hits) {
                    if (h.doc != d) continue;
                    if (agg == ChunkAggregation::kFirstP) {
                        if (h.chunk == 0) {
                            s = h.score;
                            any = true;
                        }
                    } else if (agg == ChunkAggregation::kMaxP) {
                        s = any ? std::max(s, h.score) : h.score;
                        any = true;
                    } else {
                        s += h.score;
                        any = true;
                    }
                }
                if (any) want[d] = s;
            }
            const auto got = aggregate_chunks(hits, agg);
            ASSERT_EQ(got.size(), want.size());
            for (std::size_t i = 0; i < got.size(); ++i) {
                EXPECT_EQ(got[i].score, want.at(got[i].doc));
                // The best chunk: highest score, lowest index on ties (firstp: chunk 0).
                std::uint32_t best = 0;
                double best_score = -1.0;
                for (const ChunkHit& h : hits) {
                    if (h.doc != got[i].doc) continue;
                    if (h.score > best_score || (h.score == best_score && h.chunk < best)) {
                        best = h.chunk;
                        best_score = h.score;
                    }
                }
                EXPECT_EQ(got[i].chunk, agg == ChunkAggregation::kFirstP ? 0u : best);
                if (i > 0) {
                    EXPECT_TRUE(got[i - 1].score > got[i].score ||
                                (got[i - 1].score == got[i].score && got[i - 1].doc < got[i].doc));
                }
            }
        }
    }
}

}  // namespace
}  // namespace quiver::pipeline
