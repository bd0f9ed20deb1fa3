// Save/open round trips and rejection of damaged files, for both index kinds.
#include <gtest/gtest.h>

#include "index/index_testing.h"
#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "testing/testing.h"

namespace quiver::index {
namespace {

std::unique_ptr<VectorIndex> build(const std::string& kind, const Matrix<float>& base) {
    std::unique_ptr<VectorIndex> idx;
    if (kind == "flat") idx = std::move(*FlatIndex::create(base.dim, Metric::kCosine));
    else idx = std::move(*HnswIndex::create(base.dim, Metric::kCosine, {.M = 8, .ef_construction = 64}));
    EXPECT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    std::vector<Label> gone = {Label{5}, Label{6}};
    EXPECT_EQ(*idx->remove(gone), 2u);
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < base.rows; ++i) ids.push_back("doc-" + std::to_string(i));
    idx->set_external_ids(ids);
    return idx;
}

class PersistenceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(PersistenceTest, RoundTripGivesIdenticalResults) {
    testing::TempDir dir;
    auto base = testing::clustered_matrix(1500, 20, 15, 51);
    auto queries = testing::clustered_matrix(30, 20, 15, 52);
    auto idx = build(GetParam(), base);
    const std::string path = dir.file("x.qvr");
    ASSERT_TRUE(idx->save(path).ok());
    auto opened = open_index(path);
    ASSERT_TRUE(opened) << opened.error().to_string();
    EXPECT_EQ((*opened)->info().kind, GetParam());
    EXPECT_EQ((*opened)->info().size, 1498u);
    EXPECT_EQ((*opened)->info().dim, 20u);
    EXPECT_EQ((*opened)->info().metric, Metric::kCosine);
    EXPECT_EQ((*opened)->label_name(Label{7}), "doc-7");
    const SearchParams p{.k = 10, .ef = 50};
    auto a = *idx->search(queries, p);
    auto b = *(*opened)->search(queries, p);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.distances, b.distances);
    // The opened (mapped) index accepts new vectors and removals.
    auto more = testing::clustered_matrix(100, 20, 15, 53);
    ASSERT_TRUE((*opened)->add(more, sequential_labels(100, 5000)).ok());
    EXPECT_EQ((*opened)->info().size, 1598u);
    auto c = *(*opened)->search(more.view().slice(0, 1), {.k = 1, .ef = 50});
    EXPECT_EQ(to_int(c.label(0, 0)), 5000u);
}

TEST_P(PersistenceTest, CorruptedAndTruncatedFilesAreRejected) {
    testing::TempDir dir;
    auto base = testing::random_matrix(300, 8, 61);
    auto idx = build(GetParam(), base);
    const std::string path = dir.file("x.qvr");
    ASSERT_TRUE(idx->save(path).ok());
    const std::string good = testing::read_bytes(path);

    std::string flipped = good;
    flipped[good.size() / 2] = static_cast<char>(flipped[good.size() / 2] ^ 0x1);
    testing::write_bytes(path, flipped);
    auto r = open_index(path);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
    EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("checksum"), std::string::npos) << r.error().message();

    for (std::size_t keep : {good.size() - 7, good.size() / 3, std::size_t{20}}) {
        testing::write_bytes(path, good.substr(0, keep));
        auto t = open_index(path);
        ASSERT_FALSE(t) << keep;
        EXPECT_EQ(t.error().code(), ErrorCode::kDataLoss) << t.error().to_string();
    }
    testing::write_bytes(path, "");
    EXPECT_FALSE(open_index(path));
    testing::write_bytes(path, "this is a text file, not an index at all");
    auto wrong = open_index(path);
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message().find("not a quiver"), std::string::npos) << wrong.error().message();
    auto missing = open_index(dir.file("missing.qvr"));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(BothKinds, PersistenceTest, ::testing::Values("flat", "hnsw"));

}  // namespace
}  // namespace quiver::index
