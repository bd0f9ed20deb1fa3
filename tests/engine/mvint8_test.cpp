// multi_vector fields with int8 token stores (issue 15, `token_codec`): the schema rule and its
// encoding; memtable and small segments float32, persisted segments int8 (their index files say so);
// answers through memtable, segments, flush, reopen and optimize checked against brute force with the
// library's int8 kernel (same scores to the bit once everything is persisted) and against float32
// MaxSim; an index file of the wrong codec or damaged is kDataLoss.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "engine/codec.h"
#include "quiver/engine/collection.h"
#include "quiver/multivector/maxsim.h"
#include "quiver/multivector/multivector_index.h"
#include "engine_test_util.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

constexpr std::size_t kDim = 12;

Schema int8_schema(MultiVectorIndexKind kind) {
    Schema s;
    FieldSpec mv;
    mv.name = "colbert";
    mv.type = FieldType::kMultiVector;
    mv.dim = kDim;
    mv.mv_index = kind;
    mv.token_codec = multivector::TokenCodec::kInt8;
    mv.hnsw_ef_construction = 64;
    mv.muvera.candidates = 150;  // of ~460 documents: the candidate stage matters
    FieldSpec tag;
    tag.name = "tag";
    tag.type = FieldType::kKeyword;
    s.fields = {mv, tag};
    return s;
}

CollectionOptions manual() {
    CollectionOptions o;
    o.background_merge = false;
    o.build_threads = 2;
    o.memtable_max_batch = 8;
    o.exact_memory_docs = 200;  // the first batch below stays an in-memory float32 segment
    return o;
}

SearchRequest one(QueryClause c, std::size_t k) {
    SearchRequest r;
    r.clauses.push_back(std::move(c));
    r.k = k;
    r.return_fields = std::vector<std::string>{};
    return r;
}

struct Scores {
    double f32 = 0;  // float32 MaxSim (double reference)
    float i8 = 0;    // the library's int8 MaxSim
};

// Both scores of every live document with tokens, for query `q`.
std::map<std::string, Scores> reference(const std::map<std::string, Document>& truth, const TokenVectors& q) {
    std::map<std::string, Scores> out;
    const MatrixView<float> qv{q.values.data(), q.rows(), q.dim};
    multivector::Int8Query iq;
    multivector::quantize_query(qv, iq);
    for (const auto& [id, d] : truth) {
        const auto it = d.fields.find("colbert");
        if (it == d.fields.end()) continue;
        const auto& tv = std::get<TokenVectors>(it->second);
        double total = 0;
        for (std::size_t a = 0; a < q.rows(); ++a) {
            double best = -1e300;
            for (std::size_t b = 0; b < tv.rows(); ++b) {
                double dot = 0;
                for (std::size_t j = 0; j < kDim; ++j) dot += double(q.values[a * kDim + j]) * tv.values[b * kDim + j];
                best = std::max(best, dot);
            }
            total += best;
        }
        multivector::TokenStoreBuilder b(kDim, multivector::TokenCodec::kInt8);
        EXPECT_TRUE(b.add({tv.values.data(), tv.rows(), kDim}));
        const multivector::TokenStore s = std::move(b).finish();
        std::vector<float> maxima(q.rows());
        out[id] = {total, multivector::maxsim_int8(iq, s.int8_codes(0), s.int8_scales(0), s.tokens(0), maxima.data())};
    }
    return out;
}

std::vector<std::pair<std::string, double>> top(const std::map<std::string, Scores>& ref, bool int8, std::size_t k) {
    std::vector<std::pair<std::string, double>> v;
    for (const auto& [id, s] : ref) v.emplace_back(id, int8 ? double(s.i8) : s.f32);
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
    if (v.size() > k) v.resize(k);
    return v;
}

TEST(MultiVectorInt8, SchemaRuleAndEncoding) {
    Schema s = int8_schema(MultiVectorIndexKind::kMuvera);
    ASSERT_TRUE(s.validate());
    ByteWriter w;
    encode_schema(w, s);
    ByteReader r(w.bytes());
    auto back = decode_schema(r);
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_TRUE(r.done());
    EXPECT_EQ(back->fields[0].token_codec, multivector::TokenCodec::kInt8);
    EXPECT_EQ(back->fields[1].token_codec, multivector::TokenCodec::kFloat32);
    // A float32 field writes exactly the bytes it wrote before token codecs existed (one byte less).
    Schema f32 = s;
    f32.fields[0].token_codec = multivector::TokenCodec::kFloat32;
    ByteWriter w32;
    encode_schema(w32, f32);
    EXPECT_EQ(w32.bytes().size() + 1, w.bytes().size());
    // Only multi_vector fields take a token codec.
    Schema bad = s;
    bad.fields[1].token_codec = multivector::TokenCodec::kInt8;
    EXPECT_EQ(bad.validate().error().code(), ErrorCode::kInvalidArgument);
    // A damaged codec byte (the field's last byte here) is kDataLoss.
    Schema only;
    only.fields = {s.fields[0]};
    only.fields[0].muvera = MuveraFieldParams::legacy();  // no MUVERA parameters follow the codec byte
    ByteWriter wo;
    encode_schema(wo, only);
    std::string damaged = wo.bytes();
    ASSERT_EQ(damaged.back(), '\1');
    for (char b : {'\0', '\2', '\x7f'}) {
        damaged.back() = b;
        ByteReader dr(damaged);
        auto dec = decode_schema(dr);
        ASSERT_FALSE(dec);
        EXPECT_EQ(dec.error().code(), ErrorCode::kDataLoss);
    }
}

TEST(MultiVectorInt8, MemtableSegmentsReopenOptimize) {
    for (const auto kind : {MultiVectorIndexKind::kExact, MultiVectorIndexKind::kMuvera}) {
        SCOPED_TRACE(kind == MultiVectorIndexKind::kExact ? "exact" : "muvera");
        testing::TempDir dir;
        const std::string path = dir.file("c");
        auto c = Collection::create(path, int8_schema(kind), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        std::mt19937_64 rng(21);
        std::normal_distribution<float> g;
        auto tokens = [&](std::size_t rows) {
            TokenVectors t;
            t.dim = kDim;
            for (std::size_t i = 0; i < rows * kDim; ++i) t.values.push_back(g(rng));
            return t;
        };
        std::map<std::string, Document> truth;
        auto put = [&](std::size_t first, std::size_t n) {
            std::vector<Document> docs;
            for (std::size_t i = first; i < first + n; ++i) {
                Document d;
                d.id = "d" + std::to_string(1000 + i);
                if (i % 13 != 4) d.fields["colbert"] = tokens(1 + rng() % 10);
                d.fields["tag"] = std::string(i % 2 == 0 ? "even" : "odd");
                truth[d.id] = d;
                docs.push_back(std::move(d));
            }
            ASSERT_TRUE((*c)->upsert(std::move(docs)));
        };
        put(0, 150);  // an in-memory float32 segment (exact_memory_docs)
        put(150, 300);  // an in-memory segment above exact_memory_docs: int8 tokens
        for (std::size_t i = 450; i < 462; ++i) put(i, 1);  // memtable
        ASSERT_TRUE((*c)->remove({"d1003", "d1160", "d1455"}));
        for (const char* id : {"d1003", "d1160", "d1455"}) truth.erase(id);
        std::vector<TokenVectors> queries;
        for (int q = 0; q < 8; ++q) queries.push_back(tokens(1 + q));
        // `persisted`: every document is in int8 segments, so scores equal the int8 reference.
        auto check = [&](const std::string& stage, bool persisted) {
            std::size_t total8 = 0, total32 = 0;
            for (std::size_t q = 0; q < queries.size(); ++q) {
                const auto ref = reference(truth, queries[q]);
                auto hits = (*c)->search(one(QueryClause::of_tokens("colbert", queries[q]), 10));
                ASSERT_TRUE(hits) << hits.error().to_string();
                ASSERT_EQ(hits->size(), 10u) << stage;
                for (const auto& h : *hits) {
                    const Scores& s = ref.at(h.id);
                    // Each hit scores either float32 MaxSim (memtable, small segments) or the int8 kernel's.
                    const bool as_int8 = h.score == double(s.i8);
                    const bool as_f32 = std::abs(h.score - s.f32) <= 1e-5 * std::max(1.0, std::abs(s.f32));
                    EXPECT_TRUE(persisted ? as_int8 : (as_int8 || as_f32))
                        << stage << " query " << q << " " << h.id << ": " << h.score << " (float " << s.f32 << ", int8 "
                        << s.i8 << ")";
                }
                const auto want8 = top(ref, true, 10);
                const auto want32 = top(ref, false, 10);
                std::size_t overlap8 = 0, overlap32 = 0;
                for (const auto& h : *hits) {
                    for (const auto& w : want8) overlap8 += w.first == h.id;
                    for (const auto& w : want32) overlap32 += w.first == h.id;
                }
                if (persisted && kind == MultiVectorIndexKind::kExact) {
                    for (std::size_t j = 0; j < 10; ++j) {
                        EXPECT_EQ((*hits)[j].id, want8[j].first) << stage << " query " << q << " rank " << j;
                        EXPECT_EQ((*hits)[j].score, want8[j].second);
                    }
                } else {
                    EXPECT_GE(overlap8, 6u) << stage << " query " << q;  // MUVERA: 150 candidates of ~460
                }
                EXPECT_GE(overlap32, 6u) << stage << " query " << q;
                total8 += overlap8;
                total32 += overlap32;
            }
            // Over the queries: exact fields keep (nearly) the whole float32 top-10 with int8 tokens;
            // MUVERA's candidate stage loses a little more.
            const std::size_t floor = kind == MultiVectorIndexKind::kExact ? 76 : 68;  // of 80
            EXPECT_GE(total8, floor) << stage;
            EXPECT_GE(total32, floor) << stage;
        };
        check("mixed", false);
        ASSERT_TRUE((*c)->flush());
        check("flushed", false);
        ASSERT_TRUE((*c)->optimize());
        check("optimized", true);
        const std::string seg = testutil::newest_segment(path);
        ASSERT_FALSE(seg.empty());
        {
            auto mv = multivector::MultiVectorIndex::open(seg + "/mv_colbert.mvix");
            ASSERT_TRUE(mv) << mv.error().to_string();
            EXPECT_EQ((*mv)->store().codec(), multivector::TokenCodec::kInt8);
            EXPECT_EQ((*mv)->store().size(), truth.size());
        }
        (*c)->close();
        c = Collection::open(path, manual());
        ASSERT_TRUE(c) << c.error().to_string();
        check("reopened", true);
        for (std::size_t i = 462; i < 470; ++i) put(i, 1);  // memtable again, float32 beside int8
        check("reopened + memtable", false);
        // get returns the float32 tokens as given.
        auto d = (*c)->get("d1007");
        ASSERT_TRUE(d);
        EXPECT_EQ(std::get<TokenVectors>(d->fields.at("colbert")), std::get<TokenVectors>(truth["d1007"].fields.at("colbert")));
    }
}

TEST(MultiVectorInt8, WrongCodecOrDamagedTokenFilesAreDataLoss) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    std::mt19937_64 rng(5);
    std::normal_distribution<float> g;
    std::vector<Document> docs;
    for (int i = 0; i < 40; ++i) {
        Document d;
        d.id = "d" + std::to_string(i);
        TokenVectors t;
        t.dim = kDim;
        for (std::size_t j = 0; j < (1 + i % 5) * kDim; ++j) t.values.push_back(g(rng));
        d.fields["colbert"] = t;
        docs.push_back(std::move(d));
    }
    {
        auto c = Collection::create(path, int8_schema(MultiVectorIndexKind::kExact), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        ASSERT_TRUE((*c)->upsert(docs));
        ASSERT_TRUE((*c)->flush());
    }
    const std::string seg = testutil::newest_segment(path);
    const std::string file = seg + "/mv_colbert.mvix";
    ASSERT_TRUE(std::filesystem::exists(file));
    ASSERT_TRUE(Collection::open(path, manual())) << "the intact collection opens";
    const std::string seg_name = std::filesystem::path(seg).filename().string();
    auto copy_of = [&](const std::string& name) {
        const std::string copy = dir.file(name);
        std::filesystem::copy(path, copy, std::filesystem::copy_options::recursive);
        return copy;
    };
    // A valid float32 index of the same documents in place of the int8 one: the codec does not match.
    {
        const std::string copy = copy_of("float_codec");
        auto mv = multivector::MultiVectorIndex::open(file);
        ASSERT_TRUE(mv);
        multivector::TokenStoreBuilder b(kDim, multivector::TokenCodec::kFloat32);
        std::vector<float> rows;
        for (std::size_t d = 0; d < (*mv)->store().size(); ++d) {
            rows.resize((*mv)->store().tokens(d) * kDim);
            (*mv)->store().decode(d, rows.data());
            ASSERT_TRUE(b.add({rows.data(), (*mv)->store().tokens(d), kDim}));
        }
        multivector::MultiVectorBuildParams p;
        p.method = multivector::SearchMethod::kExact;
        auto f32 = multivector::MultiVectorIndex::build(std::move(b).finish(), {}, p);
        ASSERT_TRUE(f32);
        ASSERT_TRUE((*f32)->save(copy + "/" + seg_name + "/mv_colbert.mvix"));
        auto c = Collection::open(copy, manual());
        ASSERT_FALSE(c);
        EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss) << c.error().to_string();
        EXPECT_NE(c.error().message().find("float32 tokens"), std::string::npos) << c.error().message();
    }
    // Damaged bytes across the int8 codes and scales (the CRC), and a truncation.
    const auto size = std::filesystem::file_size(file);
    for (const double at : {0.3, 0.6, 0.9}) {
        const std::string copy = copy_of("flip" + std::to_string(at));
        const std::string target = copy + "/" + seg_name + "/mv_colbert.mvix";
        std::fstream f(target, std::ios::in | std::ios::out | std::ios::binary);
        const auto pos = static_cast<std::streamoff>(static_cast<double>(size) * at);
        f.seekg(pos);
        char b = 0;
        f.read(&b, 1);
        b = static_cast<char>(b ^ 0x21);
        f.seekp(pos);
        f.write(&b, 1);
        f.close();
        auto c = Collection::open(copy, manual());
        ASSERT_FALSE(c) << at;
        EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss) << c.error().to_string();
    }
    {
        const std::string copy = copy_of("truncated");
        std::filesystem::resize_file(copy + "/" + seg_name + "/mv_colbert.mvix", size - 5);
        auto c = Collection::open(copy, manual());
        ASSERT_FALSE(c);
        EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss) << c.error().to_string();
    }
}

}  // namespace
}  // namespace quiver::engine
