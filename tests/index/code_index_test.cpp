// Flat and IVF indexes over codes: recall against brute force (exact figures on fixed seeds), rescore,
// removal, filters, persistence and rejection of damaged files.
#include "quiver/index/code_index.h"

#include <gtest/gtest.h>

#include <cstring>

#include "index/index_testing.h"
#include "index/reseal.h"
#include "quiver/storage/file_format.h"
#include "testing/testing.h"

namespace quiver::index {
namespace {

std::unique_ptr<CodeIndex> build(const std::string& codec, std::size_t nlist, const Matrix<float>& base,
                                 Metric metric = Metric::kL2) {
    CodeIndexParams p;
    p.codec = *CodecSpec::parse(codec);
    p.nlist = nlist;
    p.seed = 3;
    auto idx = CodeIndex::create(base.dim, metric, p);
    EXPECT_TRUE(idx.ok()) << codec;
    auto st = (*idx)->add(base, sequential_labels(base.rows));
    EXPECT_TRUE(st.ok()) << codec << ": " << (st.ok() ? "" : st.error().message());
    return std::move(*idx);
}

double recall(const VectorIndex& idx, const Matrix<float>& base, const Matrix<float>& queries, Metric metric,
              const SearchParams& p) {
    const auto truth = testing::brute_force(base, queries, p.k, metric);
    auto r = idx.search(queries, p);
    EXPECT_TRUE(r.ok());
    return testing::recall_at_k(testing::result_labels(*r), truth, p.k);
}

TEST(CodeIndex, FloatCodesAreExactFlatAndIvfAtFullProbe) {
    const auto base = testing::clustered_matrix(2000, 24, 20, 1);
    const auto queries = testing::clustered_matrix(40, 24, 20, 2);
    for (Metric metric : {Metric::kL2, Metric::kCosine, Metric::kInnerProduct}) {
        auto flat = build("none", 0, base, metric);
        EXPECT_EQ(flat->info().kind, "flat-codes");
        EXPECT_EQ(recall(*flat, base, queries, metric, {.k = 10}), 1.0) << simd::to_string(metric);
        auto ivf = build("none", 16, base, metric);
        EXPECT_EQ(ivf->info().kind, "ivf");
        EXPECT_EQ(recall(*ivf, base, queries, metric, {.k = 10, .nprobe = 16}), 1.0) << simd::to_string(metric);
        // Distances are the true ones.
        auto r = *ivf->search(queries.view().slice(0, 1), {.k = 3, .nprobe = 16});
        const auto truth = testing::brute_force(base, queries.view().slice(0, 1), 3, metric);
        for (std::size_t j = 0; j < 3; ++j) {
            EXPECT_NEAR(r.distance(0, j),
                        testing::reference_distance(queries.row_ptr(0), base.row_ptr(truth[0][j]), 24, metric), 1e-4);
        }
    }
}

// IVF recall floors (fixed seeds): fewer probes lose neighbours, all probes with a rescore find them.
TEST(CodeIndex, IvfRecallFloorsAndRescore) {
    const auto base = testing::clustered_matrix(5000, 32, 40, 11);
    const auto queries = testing::clustered_matrix(100, 32, 40, 12);
    auto ivf = build("sq8", 32, base);
    const double r1 = recall(*ivf, base, queries, Metric::kL2, {.k = 10, .nprobe = 1, .rescore = 100});
    const double r8 = recall(*ivf, base, queries, Metric::kL2, {.k = 10, .nprobe = 8, .rescore = 100});
    const double r32 = recall(*ivf, base, queries, Metric::kL2, {.k = 10, .nprobe = 32, .rescore = 100});
    std::printf("[ info ] ivf32 sq8 recall@10: nprobe 1 %.3f, 8 %.3f, 32 %.3f\n", r1, r8, r32);
    EXPECT_LE(r1, r8);
    EXPECT_GE(r8, 0.9);
    EXPECT_EQ(r32, 1.0);
    // No rescore: code distances only (SQ8 is close but not exact).
    const double raw = recall(*ivf, base, queries, Metric::kL2, {.k = 10, .nprobe = 32, .rescore = 0});
    EXPECT_GE(raw, 0.9);
    auto r = *ivf->search(queries.view().slice(0, 1), {.k = 1, .nprobe = 32, .rescore = 0});
    const auto truth = testing::brute_force(base, queries.view().slice(0, 1), 1, Metric::kL2);
    EXPECT_NE(r.distance(0, 0),
              static_cast<float>(testing::reference_distance(queries.row_ptr(0), base.row_ptr(truth[0][0]), 32,
                                                             Metric::kL2)));
}

TEST(CodeIndex, RemoveReplaceAndFilter) {
    const auto base = testing::clustered_matrix(1000, 16, 10, 21);
    for (std::size_t nlist : {0, 8}) {
        auto idx = build("sq8", nlist, base);
        const SearchParams p{.k = 1, .nprobe = 8};
        auto self = *idx->search(base.view().slice(7, 1), p);
        EXPECT_EQ(to_int(self.label(0, 0)), 7u);
        std::vector<Label> gone = {Label{7}, Label{99999}};
        EXPECT_EQ(*idx->remove(gone), 1u);
        EXPECT_EQ(idx->info().size, 999u);
        auto after = *idx->search(base.view().slice(7, 1), p);
        EXPECT_NE(to_int(after.label(0, 0)), 7u);
        // Replace label 3 by the vector of row 500: searching row 500 now finds 3 or 500 at distance 0.
        std::vector<Label> three = {Label{3}};
        ASSERT_TRUE(idx->add(base.view().slice(500, 1), three).ok());
        EXPECT_EQ(idx->info().size, 999u);
        auto two = *idx->search(base.view().slice(500, 1), {.k = 2, .nprobe = 8});
        std::vector<std::uint64_t> got = {to_int(two.label(0, 0)), to_int(two.label(0, 1))};
        std::sort(got.begin(), got.end());
        EXPECT_EQ(got, (std::vector<std::uint64_t>{3, 500}));
        auto old3 = *idx->search(base.view().slice(3, 1), {.k = 1, .nprobe = 8});
        EXPECT_NE(to_int(old3.label(0, 0)), 3u);
        // A filter that allows only even labels.
        struct Even final : LabelFilter {
            bool allows(Label l) const noexcept override { return to_int(l) % 2 == 0; }
        } even;
        auto f = *idx->search(base.view().slice(11, 1), {.k = 5, .filter = &even, .nprobe = 8});
        for (std::size_t j = 0; j < f.count(0); ++j) EXPECT_EQ(to_int(f.label(0, j)) % 2, 0u);
        std::vector<Label> reserved = {kNoLabel};
        EXPECT_EQ(idx->add(base.view().slice(0, 1), reserved).error().code(), ErrorCode::kInvalidArgument);
    }
}

TEST(CodeIndex, TrainingNeedsEnoughVectors) {
    CodeIndexParams p;
    p.codec = *CodecSpec::parse("sq8");
    p.nlist = 64;
    auto idx = *CodeIndex::create(8, Metric::kL2, p);
    const auto few = testing::random_matrix(10, 8, 1);
    auto st = idx->add(few, sequential_labels(10));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(idx->info().size, 0u);
}

std::string recompute_checksum(std::string bytes) {
    testing::reseal(bytes);
    return bytes;
}

class CodeIndexFiles : public ::testing::TestWithParam<std::pair<const char*, std::size_t>> {};

TEST_P(CodeIndexFiles, RoundTripAndDamage) {
    const auto [codec, nlist] = GetParam();
    testing::TempDir dir;
    const auto base = testing::clustered_matrix(1200, 16, 12, 31);
    const auto queries = testing::clustered_matrix(20, 16, 12, 32);
    auto idx = build(codec, nlist, base, Metric::kCosine);
    std::vector<Label> gone = {Label{5}};
    ASSERT_EQ(*idx->remove(gone), 1u);
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < base.rows; ++i) ids.push_back("d" + std::to_string(i));
    idx->set_external_ids(ids);
    const std::string path = dir.file("c.qvr");
    ASSERT_TRUE(idx->save(path).ok());
    auto opened = open_index(path);
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    EXPECT_EQ((*opened)->info().size, 1199u);
    EXPECT_EQ((*opened)->label_name(Label{9}), "d9");
    const SearchParams p{.k = 10, .nprobe = 4};
    auto a = *idx->search(queries, p);
    auto b = *(*opened)->search(queries, p);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.distances, b.distances);
    // The opened index takes more vectors (the mapped floats are copied first).
    const auto more = testing::clustered_matrix(40, 16, 12, 33);
    ASSERT_TRUE((*opened)->add(more, sequential_labels(40, 5000)).ok());
    auto c = *(*opened)->search(more.view().slice(3, 1), {.k = 1, .nprobe = nlist > 0 ? nlist : 1});
    EXPECT_EQ(to_int(c.label(0, 0)), 5003u);

    const std::string good = testing::read_bytes(path);
    std::string flipped = good;
    flipped[good.size() / 2] = static_cast<char>(flipped[good.size() / 2] ^ 0x10);
    testing::write_bytes(path, flipped);
    auto bad = open_index(path, {.verify = true});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
    // Lazily: refused at open (codes, lists, header) or at the first search (the float vectors' section).
    for (bool on_disk : {false, true}) {
        auto lazy = open_index(path, {.vectors_on_disk = on_disk});
        if (lazy.ok()) {
            const auto vecs = testing::section_named(good, "VECS");
            EXPECT_GE(good.size() / 2, vecs.offset);
            EXPECT_LT(good.size() / 2, vecs.offset + vecs.length);
            auto s = (*lazy)->search(queries, p);
            ASSERT_FALSE(s.ok());
            EXPECT_EQ(s.error().code(), ErrorCode::kDataLoss);
            EXPECT_NE(s.error().message().find("section 'VECS'"), std::string::npos) << s.error().message();
        } else {
            EXPECT_EQ(lazy.error().code(), ErrorCode::kDataLoss);
        }
    }
    for (std::size_t keep : {good.size() - 1, good.size() / 2, std::size_t{40}, std::size_t{3}}) {
        testing::write_bytes(path, good.substr(0, keep));
        auto t = open_index(path);
        ASSERT_FALSE(t.ok()) << keep;
        EXPECT_EQ(t.error().code(), ErrorCode::kDataLoss) << keep << " " << t.error().message();
    }
    // Crafted files with valid checksums: every header field and the codec header, damaged one at a time,
    // must be rejected (or, for fields that do not change the structure, open to a working index).
    // Offsets: 16-byte container header, then u64 dim (16), u32 metric (24), u32 flags (28), u64 nlist (32),
    // nprobe (40), seed (48), train_rows (56), slots (64), live (72), codec kind (80), m (84), bits (88),
    // metric (92), dim (96).
    for (std::size_t off : {16u, 24u, 28u, 32u, 64u, 72u, 80u, 84u, 88u, 92u, 96u}) {
        for (std::uint32_t value : {0u, 1u, 3u, 0xFFFFFFFFu}) {
            std::string crafted = good;
            std::memcpy(crafted.data() + off, &value, 4);
            if (crafted == good) continue;
            testing::write_bytes(path, recompute_checksum(crafted));
            auto o = open_index(path);
            if (!o.ok()) {
                EXPECT_TRUE(o.error().code() == ErrorCode::kDataLoss || o.error().code() == ErrorCode::kInvalidArgument)
                    << off << " " << o.error().message();
                continue;
            }
            // Accepted: must still search safely.
            auto s = (*o)->search(queries, p);
            EXPECT_TRUE(s.ok()) << off;
        }
    }
}

// Vectors on disk: the rescore reads them with pread and answers exactly as the mapped index; they
// are not resident; save() copies them from the file; add() loads them first.
TEST(CodeIndex, VectorsOnDiskRescoreEqualsInMemory) {
    testing::TempDir dir;
    const auto base = testing::clustered_matrix(1500, 24, 12, 41);
    const auto queries = testing::clustered_matrix(30, 24, 12, 42);
    const std::vector<std::pair<const char*, std::size_t>> cases = {{"rabitq2", 0}, {"pq6x8", 8}, {"sq4", 0}};
    for (const auto& [codec, nlist] : cases) {
        SCOPED_TRACE(codec);
        auto idx = build(codec, nlist, base, Metric::kCosine);
        ASSERT_EQ(*idx->remove(std::vector<Label>{Label{7}}), 1u);
        const std::string path = dir.file(std::string(codec) + ".qvr");
        ASSERT_TRUE(idx->save(path).ok());
        auto mapped = CodeIndex::open(path);
        auto disk = CodeIndex::open(path, {.vectors_on_disk = true});
        ASSERT_TRUE(mapped.ok() && disk.ok());
        EXPECT_FALSE((*mapped)->vectors_on_disk());
        EXPECT_TRUE((*disk)->vectors_on_disk());
        EXPECT_TRUE((*disk)->has_vectors());
        const auto fm = (*mapped)->footprint();
        const auto fd = (*disk)->footprint();
        EXPECT_TRUE(fm.floats_mapped);
        EXPECT_FALSE(fm.floats_on_disk);
        EXPECT_TRUE(fd.floats_on_disk);
        EXPECT_EQ(fd.float_bytes, base.rows * 24 * sizeof(float));
        EXPECT_EQ((*disk)->memory_bytes(), fd.code_bytes + fd.id_bytes + fd.parameter_bytes);
        for (std::size_t rescore : {std::size_t{0}, std::size_t{50}, SearchParams::kRescoreDefault}) {
            const SearchParams p{.k = 10, .nprobe = 4, .rescore = rescore};
            auto a = *idx->search(queries, p);
            auto b = *(*mapped)->search(queries, p);
            auto c = *(*disk)->search(queries, p);
            EXPECT_EQ(a.labels, c.labels) << rescore;
            EXPECT_EQ(a.distances, c.distances) << rescore;
            EXPECT_EQ(b.labels, c.labels) << rescore;
        }
        // Saved from the on-disk index (floats streamed from the file): the same index again.
        const std::string copy = dir.file(std::string(codec) + "_copy.qvr");
        ASSERT_TRUE((*disk)->save(copy).ok());
        EXPECT_EQ(testing::read_bytes(copy), testing::read_bytes(path));
        // add() loads the vectors into memory, then inserts.
        const auto more = testing::clustered_matrix(10, 24, 12, 43);
        ASSERT_TRUE((*disk)->add(more, sequential_labels(10, 9000)).ok());
        EXPECT_FALSE((*disk)->vectors_on_disk());
        auto hit = *(*disk)->search(more.view().slice(4, 1), {.k = 1, .nprobe = nlist > 0 ? nlist : 1});
        EXPECT_EQ(to_int(hit.label(0, 0)), 9004u);
        EXPECT_NEAR(hit.distance(0, 0), 0.0f, 1e-5f);
    }
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodeIndexFiles,
                         ::testing::Values(std::make_pair("sq8", 0), std::make_pair("sq4", 8),
                                           std::make_pair("none", 8)),
                         [](const auto& info) {
                             return std::string(info.param.first) + "_nlist" + std::to_string(info.param.second);
                         });

}  // namespace
}  // namespace quiver::index
