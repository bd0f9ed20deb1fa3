// Format compatibility and validation of the learned-sparse index files (SEIS, SPEX).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "quiver/sparse/exact_sparse.h"
#include "quiver/sparse/seismic.h"
#include "quiver/sparse/synthetic.h"
#include "quiver/storage/file_format.h"
#include "testing/testing.h"

namespace quiver::sparse {
namespace {

const SyntheticData& tiny() {
    static const SyntheticData d = [] {
        SyntheticParams p;
        p.docs = 300;
        p.queries = 20;
        p.vocab = 400;
        p.topics = 8;
        p.topic_terms = 40;
        p.min_doc_nnz = 10;
        p.max_doc_nnz = 25;
        p.min_query_nnz = 5;
        p.max_query_nnz = 10;
        p.seed = 3;
        p.threads = 1;
        auto r = generate_synthetic(p);
        EXPECT_TRUE(r);
        return std::move(*r);
    }();
    return d;
}

SeismicBuildParams tiny_params() {
    SeismicBuildParams p;
    p.n_postings = 10;
    p.knn = 3;
    p.threads = 1;
    p.summary_min_postings = 8;  // some lists without a summary, some blocked
    p.summary_max_entries = 12;
    return p;
}

std::string golden(const char* name) { return std::string(QUIVER_SOURCE_DIR) + "/tests/seismic/data/" + name; }

// A file written by format version 2 must keep opening with the same results. Regenerate (only on a
// deliberate format change, with a version bump) with QUIVER_WRITE_GOLDEN=1.
TEST(SeismicFormat, OpensGoldenV2) {
    auto fresh = SeismicIndex::build(tiny().docs, tiny_params());
    ASSERT_TRUE(fresh);
    if (std::getenv("QUIVER_WRITE_GOLDEN") != nullptr) {
        ASSERT_TRUE(fresh->save(golden("seismic_v2.seis")));
    }
    auto old = SeismicIndex::open(golden("seismic_v2.seis"));
    ASSERT_TRUE(old) << old.error().to_string();
    EXPECT_EQ(old->size(), 300u);
    EXPECT_EQ(old->params().knn, 3u);
    EXPECT_EQ(old->params().summary_min_postings, 8u);
    EXPECT_EQ(old->params().summary_max_entries, 12u);
    const SeismicStats a = fresh->stats(), b = old->stats();
    EXPECT_EQ(a.blocks, b.blocks);
    EXPECT_EQ(a.summary_entries, b.summary_entries);
    EXPECT_EQ(a.unsummarised_blocks, b.unsummarised_blocks);
    EXPECT_GT(b.unsummarised_blocks, 0u);
    EXPECT_LT(b.unsummarised_blocks, b.blocks);
    SeismicSearchParams sp;
    sp.query_cut = 3;
    sp.n_knn = 2;
    for (const SparseVector& q : tiny().queries.vectors) {
        const auto a = fresh->search(q.view(), sp), b = old->search(q.view(), sp);
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            EXPECT_EQ(fresh->doc_id(a[i].doc), old->doc_id(b[i].doc));
            EXPECT_FLOAT_EQ(a[i].score, b[i].score);
        }
    }
}

// Version 1 (the inverted summary layout) is refused with a message that says what to do.
TEST(SeismicFormat, Version1IsRefusedClearly) {
    auto r = SeismicIndex::open(golden("seismic_v1.seis"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition) << r.error().to_string();
    EXPECT_NE(r.error().message().find("version 1"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("rebuild"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("seismic_v1.seis"), std::string::npos) << r.error().message();
}

TEST(SeismicFormat, ExactOpensGoldenV1) {
    auto fresh = ExactSparseIndex::build(tiny().docs);
    ASSERT_TRUE(fresh);
    if (std::getenv("QUIVER_WRITE_GOLDEN") != nullptr) {
        ASSERT_TRUE(fresh->save(golden("exact_v1.spex")));
    }
    auto old = ExactSparseIndex::open(golden("exact_v1.spex"));
    ASSERT_TRUE(old) << old.error().to_string();
    for (const SparseVector& q : tiny().queries.vectors) {
        const auto a = fresh->search(q.view(), 10), b = old->search(q.view(), 10);
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].doc, b[i].doc);
    }
}

TEST(SeismicFormat, NewerVersionIsFailedPrecondition) {
    testing::TempDir dir;
    std::string bytes = testing::read_bytes(golden("seismic_v2.seis"));
    ASSERT_GT(bytes.size(), 64u);
    const std::uint32_t v3 = 3;
    std::memcpy(bytes.data() + 8, &v3, 4);                 // header version
    std::memcpy(bytes.data() + bytes.size() - 8, &v3, 4);  // footer version
    // A real newer file carries a valid checksum (a stale one reads as damage, kDataLoss).
    const std::uint32_t crc = storage::crc32(0, bytes.data(), bytes.size() - storage::kFooterBytes);
    std::memcpy(bytes.data() + bytes.size() - 16, &crc, 4);
    testing::write_bytes(dir.file("v3.seis"), bytes);
    auto r = SeismicIndex::open(dir.file("v3.seis"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition) << r.error().to_string();
}

// Bytes changed behind a valid checksum (a buggy or malicious writer) must be rejected with kDataLoss
// or give a usable index, never a crash: this exercises the structural validation, not the CRC.
TEST(SeismicFormat, StructuralValidationBehindValidChecksum) {
    testing::TempDir dir;
    const std::string good = testing::read_bytes(golden("seismic_v2.seis"));
    ASSERT_GT(good.size(), storage::kHeaderBytes + storage::kFooterBytes);
    const std::size_t payload_end = good.size() - storage::kFooterBytes;
    std::mt19937_64 rng(11);
    std::size_t rejected = 0;
    for (int trial = 0; trial < 400; ++trial) {
        std::string bytes = good;
        const std::size_t at =
            std::uniform_int_distribution<std::size_t>(storage::kHeaderBytes, payload_end - 1)(rng);
        bytes[at] = static_cast<char>(bytes[at] ^ static_cast<char>(1 + rng() % 255));
        const std::uint32_t crc = storage::crc32(0, bytes.data(), payload_end);
        std::memcpy(bytes.data() + payload_end + 8, &crc, 4);
        const std::string path = dir.file("m.seis");
        testing::write_bytes(path, bytes);
        auto r = SeismicIndex::open(path);
        if (!r) {
            EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << r.error().to_string();
            ++rejected;
            continue;
        }
        SeismicSearchParams sp;
        sp.n_knn = 3;
        for (const SparseVector& q : tiny().queries.vectors) (void)r->search(q.view(), sp);
    }
    EXPECT_GT(rejected, 0u);
}

// A strided sweep over the whole v2 payload (every section, the summary layout included): each byte
// changed behind a valid checksum is rejected with kDataLoss or opens into an index that searches
// without crashing.
TEST(SeismicFormat, StridedSweepOverEverySection) {
    testing::TempDir dir;
    const std::string good = testing::read_bytes(golden("seismic_v2.seis"));
    const std::size_t payload_end = good.size() - storage::kFooterBytes;
    const std::size_t stride = std::max<std::size_t>(1, (payload_end - storage::kHeaderBytes) / 1500);
    std::size_t rejected = 0, trials = 0;
    for (std::size_t at = storage::kHeaderBytes; at < payload_end; at += stride, ++trials) {
        std::string bytes = good;
        bytes[at] = static_cast<char>(~bytes[at]);
        const std::uint32_t crc = storage::crc32(0, bytes.data(), payload_end);
        std::memcpy(bytes.data() + payload_end + 8, &crc, 4);
        const std::string path = dir.file("s.seis");
        testing::write_bytes(path, bytes);
        auto r = SeismicIndex::open(path);
        if (!r) {
            EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << "byte " << at << ": " << r.error().to_string();
            ++rejected;
            continue;
        }
        SeismicSearchParams sp;
        sp.n_knn = 3;
        sp.query_cut = 5;
        for (const SparseVector& q : tiny().queries.vectors) (void)r->search(q.view(), sp);
    }
    EXPECT_GT(trials, 1000u);
    EXPECT_GT(rejected, trials / 10);
}

}  // namespace
}  // namespace quiver::sparse
