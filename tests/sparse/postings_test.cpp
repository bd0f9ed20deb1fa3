#include "quiver/sparse/postings.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "testing/testing.h"

namespace quiver::sparse {
namespace {

using Lists = std::map<TermId, std::vector<std::pair<DocIndex, float>>>;

// Random lists with a mix of lengths (empty, < 1 block, exact blocks, many blocks) and gaps.
Lists random_lists(WeightType type, std::uint32_t num_docs, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    Lists lists;
    const std::uint32_t sizes[] = {1, 5, 127, 128, 129, 256, 1000, 3000};
    TermId t = 0;
    for (std::uint32_t size : sizes) {
        t += 2;  // leave gaps in the term id space (empty lists)
        std::vector<DocIndex> docs(num_docs);
        for (std::uint32_t i = 0; i < num_docs; ++i) docs[i] = i;
        std::shuffle(docs.begin(), docs.end(), rng);
        docs.resize(std::min(size, num_docs));
        for (DocIndex d : docs) {
            float w = type == WeightType::kFrequency ? static_cast<float>(1 + rng() % 40)
                                                     : std::uniform_real_distribution<float>(0.01f, 3.0f)(rng);
            lists[t].push_back({d, w});
        }
        std::sort(lists[t].begin(), lists[t].end());
    }
    return lists;
}

Result<PostingStore> build(const Lists& lists, WeightType type, std::uint32_t num_docs) {
    PostingsBuilder b(type);
    b.set_num_docs(num_docs);
    // Add in a scrambled order: the builder sorts.
    for (auto it = lists.rbegin(); it != lists.rend(); ++it) {
        for (auto p = it->second.rbegin(); p != it->second.rend(); ++p) b.add(it->first, p->first, p->second);
    }
    return b.build();
}

float tolerance(WeightType type, float max_weight) {
    return type == WeightType::kQuantized8 ? max_weight / 255.0f * 0.51f : 0.0f;
}

class PostingsRoundTrip : public ::testing::TestWithParam<WeightType> {};

TEST_P(PostingsRoundTrip, DecodeReturnsWhatWasAdded) {
    const WeightType type = GetParam();
    const std::uint32_t num_docs = 100000;
    const Lists lists = random_lists(type, num_docs, 7);
    auto store = build(lists, type, num_docs);
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    EXPECT_EQ(store->num_docs(), num_docs);
    std::vector<DocIndex> docs;
    std::vector<float> weights;
    for (TermId t = 0; t < store->num_terms() + 3; ++t) {
        store->decode(t, docs, weights);
        auto it = lists.find(t);
        if (it == lists.end()) {
            EXPECT_TRUE(docs.empty());
            continue;
        }
        ASSERT_EQ(docs.size(), it->second.size());
        const float tol = tolerance(type, store->term_info(t).max_weight);
        for (std::size_t i = 0; i < docs.size(); ++i) {
            EXPECT_EQ(docs[i], it->second[i].first);
            EXPECT_NEAR(weights[i], it->second[i].second, tol);
        }
    }
}

TEST_P(PostingsRoundTrip, SeekAndBlockBounds) {
    const WeightType type = GetParam();
    const std::uint32_t num_docs = 20000;
    const Lists lists = random_lists(type, num_docs, 11);
    auto store = build(lists, type, num_docs);
    ASSERT_TRUE(store.ok());
    std::mt19937 rng(3);
    for (const auto& [t, list] : lists) {
        PostingCursor c = store->cursor(t);
        EXPECT_EQ(c.doc_freq(), list.size());
        DocIndex target = 0;
        while (true) {
            target += rng() % 700;
            // Reference: first posting >= target.
            auto ref = std::lower_bound(list.begin(), list.end(), std::make_pair(target, -1.0f));
            const DocIndex last_block = c.shallow_seek(target);
            if (ref == list.end()) {
                EXPECT_EQ(last_block, kTerminated);
                EXPECT_EQ(c.seek(target), kTerminated);
                break;
            }
            EXPECT_GE(last_block, ref->first);
            EXPECT_GE(c.block_max_weight() + 1e-6f, ref->second - tolerance(type, c.max_weight()));
            ASSERT_EQ(c.seek(target), ref->first);
            EXPECT_LE(c.weight(), c.block_max_weight() + 1e-6f);
            EXPECT_LE(c.block_max_weight(), c.max_weight());
            target = c.doc() + 1;
            if (c.next() == kTerminated) break;
        }
    }
}

TEST_P(PostingsRoundTrip, WriteReadRoundTripAndCorruption) {
    const WeightType type = GetParam();
    const Lists lists = random_lists(type, 5000, 5);
    auto store = build(lists, type, 5000);
    ASSERT_TRUE(store.ok());
    testing::TempDir dir;
    const std::string path = dir.file("p.bin");
    {
        auto w = storage::FileWriter::create(path, storage::fourcc("PTST"), 1);
        ASSERT_TRUE(w.ok());
        ASSERT_TRUE(store->write(*w).ok());
        ASSERT_TRUE(w->finish().ok());
    }
    auto mapped = storage::MappedFile::open(path);
    ASSERT_TRUE(mapped.ok());
    auto file = std::make_shared<const storage::MappedFile>(std::move(mapped).value());
    auto in = storage::open_payload(*file, storage::fourcc("PTST"), 1);
    ASSERT_TRUE(in.ok());
    auto back = PostingStore::read(*in, file);
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(back->num_postings(), store->num_postings());
    EXPECT_EQ(back->weight_type(), type);
    std::vector<DocIndex> d1, d2;
    std::vector<float> w1, w2;
    for (TermId t = 0; t < store->num_terms(); ++t) {
        store->decode(t, d1, w1);
        back->decode(t, d2, w2);
        EXPECT_EQ(d1, d2);
        EXPECT_EQ(w1, w2);
    }
    // Any flipped byte in the file is rejected (checksum or structure), never a crash.
    std::string bytes = testing::read_bytes(path);
    for (std::size_t pos : {std::size_t{20}, bytes.size() / 2, bytes.size() - 30}) {
        std::string bad = bytes;
        bad[pos] = static_cast<char>(bad[pos] ^ 0x5A);
        testing::write_bytes(path, bad);
        auto m = storage::MappedFile::open(path);
        ASSERT_TRUE(m.ok());
        auto f = std::make_shared<const storage::MappedFile>(std::move(m).value());
        auto r = storage::open_payload(*f, storage::fourcc("PTST"), 1);
        if (r.ok()) {
            EXPECT_FALSE(PostingStore::read(*r, f).ok());
        } else {
            EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(WeightTypes, PostingsRoundTrip,
                         ::testing::Values(WeightType::kFrequency, WeightType::kFloat32, WeightType::kQuantized8));

TEST(PostingsBuilder, RejectsBadInput) {
    {
        PostingsBuilder b(WeightType::kFrequency);
        b.add(1, 3, 2.0f);
        b.add(1, 3, 1.0f);
        auto s = b.build();
        ASSERT_FALSE(s.ok());
        EXPECT_NE(s.error().message().find("duplicate"), std::string::npos);
    }
    {
        PostingsBuilder b(WeightType::kFrequency);
        b.add(0, 0, 1.5f);
        EXPECT_FALSE(b.build().ok());
    }
    for (float w : {0.0f, -1.0f, std::nanf(""), INFINITY}) {
        PostingsBuilder b(WeightType::kFloat32);
        b.add(0, 0, w);
        EXPECT_FALSE(b.build().ok()) << w;
    }
    {
        PostingsBuilder b(WeightType::kFloat32);
        b.set_num_docs(10);
        b.add(0, 10, 1.0f);
        EXPECT_FALSE(b.build().ok());
    }
}

TEST(PostingsBuilder, LearnedSparseDocumentsAndBlockScores) {
    PostingsBuilder b(WeightType::kFloat32);
    const TermId terms[] = {30521, 7, 100};
    const float weights[] = {0.5f, 1.25f, 2.0f};
    b.add_document(0, terms, weights);
    b.add_document(2, std::span<const TermId>(terms, 1), std::span<const float>(weights + 2, 1));
    auto s = b.build();
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->num_terms(), 30522u);
    EXPECT_EQ(s->num_docs(), 3u);
    EXPECT_EQ(s->term_info(30521).doc_freq, 2u);
    EXPECT_FLOAT_EQ(s->term_info(30521).max_score, 2.0f);
    s->compute_block_scores([](TermId, DocIndex doc, float w) { return w * static_cast<float>(doc + 1); });
    EXPECT_FLOAT_EQ(s->term_info(30521).max_score, 6.0f);
    EXPECT_FLOAT_EQ(s->term_info(7).max_score, 1.25f);
}

TEST(PostingsBuilder, ExtremeBitWidths) {
    // Full blocks (vertical layout) and tails (horizontal) at widths 0, 25 and 31.
    PostingsBuilder b(WeightType::kFrequency);
    Lists want;
    for (DocIndex i = 0; i < 128; ++i) {
        const float tf = (i % 2 == 0) ? 1.0f : 2147483648.0f;
        b.add(0, i * 33554432u, tf);
        want[0].push_back({i * 33554432u, tf});
    }
    for (DocIndex i = 0; i < 300; ++i) {
        b.add(1, i, 1.0f);
        want[1].push_back({i, 1.0f});
    }
    for (DocIndex i = 0; i < 129; ++i) {
        b.add(2, i * 30000000u + 7, static_cast<float>(1 + i * 1000));
        want[2].push_back({i * 30000000u + 7, static_cast<float>(1 + i * 1000)});
    }
    auto s = b.build();
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    std::vector<DocIndex> docs;
    std::vector<float> weights;
    for (const auto& [t, list] : want) {
        s->decode(t, docs, weights);
        ASSERT_EQ(docs.size(), list.size());
        for (std::size_t i = 0; i < docs.size(); ++i) {
            EXPECT_EQ(docs[i], list[i].first) << t << " " << i;
            EXPECT_EQ(weights[i], list[i].second) << t << " " << i;
        }
    }
}

TEST(PostingStore, EmptyStore) {
    PostingsBuilder b;
    auto s = b.build();
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->num_terms(), 0u);
    PostingCursor c = s->cursor(5);
    EXPECT_EQ(c.doc(), kTerminated);
    EXPECT_EQ(c.next(), kTerminated);
    EXPECT_EQ(c.seek(3), kTerminated);
}

}  // namespace
}  // namespace quiver::sparse
