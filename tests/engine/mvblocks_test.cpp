// multi_vector fields with MUVERA's blocked FDE scan (issue 15): the field options (FDE layout, k_sim,
// d_proj, r_reps, candidates), their schema encoding (MANIFEST version 4) and rules; with as many
// candidates as documents a collection search equals brute-force MaxSim exactly through memtable,
// in-memory and persisted segments, deletes, patches, filters, reopen and optimize; with fewer, every
// hit carries its exact MaxSim; fields stored before blocked FDEs (HNSW over FDEs) keep working; a
// segment whose index file has another layout, or is damaged, is kDataLoss; on real SciFact passages
// (GloVe word vectors) recall@10 against exact MaxSim stays above a floor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "engine/codec.h"
#include "quiver/encode/encoder.h"
#include "quiver/engine/collection.h"
#include "quiver/eval/dataset.h"
#include "quiver/multivector/maxsim.h"
#include "quiver/multivector/multivector_index.h"
#include "engine_test_util.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

constexpr std::size_t kDim = 8;

Schema blocks_schema(const MuveraFieldParams& params) {
    Schema s;
    FieldSpec mv;
    mv.name = "colbert";
    mv.type = FieldType::kMultiVector;
    mv.dim = kDim;
    mv.mv_index = MultiVectorIndexKind::kMuvera;
    mv.muvera = params;
    FieldSpec tag;
    tag.name = "tag";
    tag.type = FieldType::kKeyword;
    tag.payload_index = true;
    FieldSpec note;
    note.name = "note";
    note.indexed = false;
    s.fields = {mv, tag, note};
    return s;
}

// Blocked FDEs with parameters other than the defaults (so the test sees them applied) and few
// default candidates (so the candidate stage is exercised).
MuveraFieldParams test_params() {
    MuveraFieldParams p;
    p.k_sim = 5;
    p.d_proj = 4;
    p.r_reps = 6;
    p.candidates = 40;
    return p;
}

CollectionOptions manual() {
    CollectionOptions o;
    o.background_merge = false;
    o.build_threads = 2;
    o.memtable_max_batch = 8;
    o.exact_memory_docs = 50;  // larger in-memory segments build MUVERA FDEs as persisted ones do
    return o;
}

SearchRequest one(QueryClause c, std::size_t k, std::size_t ef = 0) {
    SearchRequest r;
    r.clauses.push_back(std::move(c));
    r.k = k;
    r.ef = ef;
    r.return_fields = std::vector<std::string>{};
    return r;
}

// Word-like token vectors: unit vectors near one of 24 topic directions, so MUVERA's partitions mean
// something (as per-word embeddings of sentences do).
struct Tokens {
    std::mt19937_64 rng{20261129};
    std::normal_distribution<float> g;
    std::vector<std::vector<float>> topics;
    Tokens() {
        for (int t = 0; t < 24; ++t) topics.push_back(unit(noise(1.0f)));
    }
    std::vector<float> noise(float scale) {
        std::vector<float> v(kDim);
        for (float& x : v) x = scale * g(rng);
        return v;
    }
    static std::vector<float> unit(std::vector<float> v) {
        double n = 0;
        for (float x : v) n += double(x) * x;
        for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
        return v;
    }
    TokenVectors make(std::size_t rows) {
        TokenVectors t;
        t.dim = kDim;
        const std::size_t topic = rng() % topics.size();
        for (std::size_t r = 0; r < rows; ++r) {
            const auto& c = topics[rng() % 4 != 0 ? topic : rng() % topics.size()];
            std::vector<float> v = noise(0.35f);
            for (std::size_t j = 0; j < kDim; ++j) v[j] += c[j];
            v = unit(std::move(v));
            t.values.insert(t.values.end(), v.begin(), v.end());
        }
        return t;
    }
};

struct Want {
    std::string id;
    double score;
};

// Brute force with the library's float32 MaxSim kernel (what segments re-rank with and the memtable
// scores with, so scores agree to the bit): score descending, then id ascending.
std::vector<Want> brute(const std::map<std::string, Document>& truth, const TokenVectors& q, std::size_t k,
                        const std::string& tag = "") {
    std::vector<Want> out;
    const MatrixView<float> qv{q.values.data(), q.rows(), q.dim};
    for (const auto& [id, d] : truth) {
        if (!tag.empty() && std::get<std::string>(d.fields.at("tag")) != tag) continue;
        const auto it = d.fields.find("colbert");
        if (it == d.fields.end()) continue;
        const auto& tv = std::get<TokenVectors>(it->second);
        out.push_back({id, static_cast<double>(multivector::maxsim(qv, tv.values.data(), tv.rows()))});
    }
    std::sort(out.begin(), out.end(), [](const Want& a, const Want& b) {
        return a.score != b.score ? a.score > b.score : a.id < b.id;
    });
    if (out.size() > k) out.resize(k);
    return out;
}

double maxsim_of(const Document& d, const TokenVectors& q) {
    const auto& tv = std::get<TokenVectors>(d.fields.at("colbert"));
    return static_cast<double>(multivector::maxsim({q.values.data(), q.rows(), q.dim}, tv.values.data(), tv.rows()));
}

std::uint32_t manifest_version(const std::string& coll) {
    std::ifstream in(coll + "/MANIFEST", std::ios::binary);
    char header[16] = {};
    in.read(header, sizeof(header));
    std::uint32_t v = 0;
    std::memcpy(&v, header + 8, 4);
    return v;
}

TEST(MuveraBlocks, FieldOptionsEncodingAndRules) {
    // The defaults: blocked FDEs, k_sim 6, d_proj 8, r_reps 8, 3,200 candidates.
    FieldSpec def;
    EXPECT_EQ(def.muvera.fde, MuveraFdeKind::kBlocks);
    EXPECT_EQ(def.muvera.k_sim, 6u);
    EXPECT_EQ(def.muvera.d_proj, 8u);
    EXPECT_EQ(def.muvera.r_reps, 8u);
    EXPECT_EQ(def.muvera.candidates, 3200u);
    const MuveraFieldParams legacy = MuveraFieldParams::legacy();
    EXPECT_EQ(legacy.fde, MuveraFdeKind::kHnsw);
    EXPECT_EQ(legacy.k_sim, 4u);
    EXPECT_EQ(legacy.d_proj, 16u);
    EXPECT_EQ(legacy.r_reps, 10u);
    EXPECT_EQ(legacy.candidates, 0u);

    Schema s = blocks_schema(test_params());
    ASSERT_TRUE(s.validate()) << s.validate().error().to_string();
    EXPECT_EQ(schema_version(s), 4u);
    ByteWriter w;
    encode_schema(w, s);
    {
        ByteReader r(w.bytes());
        auto back = decode_schema(r);
        ASSERT_TRUE(back) << back.error().to_string();
        EXPECT_TRUE(r.done());
        EXPECT_EQ(back->fields[0].muvera, test_params());
        EXPECT_EQ(back->fields[0].mv_index, MultiVectorIndexKind::kMuvera);
    }
    // Fields with the legacy parameters write the bytes they wrote before the options existed (33 fewer:
    // u8 layout + four u64), MANIFEST version 2, and read back as legacy.
    Schema old = s;
    old.fields[0].muvera = legacy;
    EXPECT_EQ(schema_version(old), 2u);
    ByteWriter wo;
    encode_schema(wo, old);
    EXPECT_EQ(wo.bytes().size() + 33, w.bytes().size());
    {
        ByteReader r(wo.bytes());
        auto back = decode_schema(r);
        ASSERT_TRUE(back);
        EXPECT_EQ(back->fields[0].muvera, legacy);
    }
    // An exact field writes no MUVERA parameters whatever they hold, and reads back the defaults.
    Schema exact = s;
    exact.fields[0].mv_index = MultiVectorIndexKind::kExact;
    exact.fields[0].muvera.k_sim = 99;  // not validated: unused
    ASSERT_TRUE(exact.validate());
    EXPECT_EQ(schema_version(exact), 2u);
    {
        ByteWriter we;
        encode_schema(we, exact);
        ByteReader r(we.bytes());
        auto back = decode_schema(r);
        ASSERT_TRUE(back);
        EXPECT_EQ(back->fields[0].muvera, MuveraFieldParams{});
    }
    // Damage: the layout byte (the first of the field's last 33 bytes, before the two other fields).
    Schema only;
    only.fields = {s.fields[0]};
    ByteWriter w1;
    encode_schema(w1, only);
    const std::string bytes = w1.bytes();
    const std::size_t layout_at = bytes.size() - 33;
    ASSERT_EQ(bytes[layout_at], '\1');
    for (char b : {'\2', '\x7f'}) {
        std::string damaged = bytes;
        damaged[layout_at] = b;
        ByteReader r(damaged);
        auto dec = decode_schema(r);
        ASSERT_FALSE(dec);
        EXPECT_EQ(dec.error().code(), ErrorCode::kDataLoss) << dec.error().to_string();
    }
    // k_sim 0 (a stored schema is validated: kDataLoss), and an absurd k_sim (refused before validation).
    for (std::uint64_t k_sim : {std::uint64_t{0}, std::uint64_t{11}, std::uint64_t{1} << 40}) {
        std::string damaged = bytes;
        std::memcpy(damaged.data() + layout_at + 1, &k_sim, 8);
        ByteReader r(damaged);
        auto dec = decode_schema(r);
        ASSERT_FALSE(dec) << k_sim;
        EXPECT_EQ(dec.error().code(), ErrorCode::kDataLoss) << dec.error().to_string();
    }
    // The parameters flag (bit 6) on a field that is not a MUVERA field.
    {
        Schema ex;
        ex.fields = {exact.fields[0]};
        ByteWriter we;
        encode_schema(we, ex);
        std::string damaged = we.bytes();
        const std::size_t flags_at = 12 + 4 + ex.fields[0].name.size() + 1;
        ASSERT_EQ(damaged[flags_at], '\1');
        damaged[flags_at] = static_cast<char>(1 | 64);
        ByteReader r(damaged);
        auto dec = decode_schema(r);
        ASSERT_FALSE(dec);
        EXPECT_EQ(dec.error().code(), ErrorCode::kDataLoss);
        damaged[flags_at] = static_cast<char>(64);  // an unknown flag
        ByteReader r2(damaged);
        EXPECT_EQ(decode_schema(r2).error().code(), ErrorCode::kDataLoss);
    }
    // Rules.
    auto bad = [&](auto edit) {
        Schema b = blocks_schema(test_params());
        edit(b.fields[0].muvera);
        const Status st = b.validate();
        EXPECT_FALSE(st);
        if (!st) {
            EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
        }
    };
    bad([](MuveraFieldParams& p) { p.k_sim = 0; });
    bad([](MuveraFieldParams& p) { p.k_sim = 11; });
    bad([](MuveraFieldParams& p) { p.r_reps = 0; });
    bad([](MuveraFieldParams& p) { p.r_reps = 65; });
    bad([](MuveraFieldParams& p) { p.d_proj = 257; });
    bad([](MuveraFieldParams& p) { p.candidates = kMaxMuveraCandidates + 1; });
    bad([](MuveraFieldParams& p) {  // 8 x 1024 x 16 = 131,072 values
        p.k_sim = 10;
        p.d_proj = 16;
    });
    bad([](MuveraFieldParams& p) { p.fde = static_cast<MuveraFdeKind>(2); });
    // d_proj 0 keeps the token dimension: 8 x 64 x 8 values.
    Schema identity = blocks_schema(test_params());
    identity.fields[0].muvera.d_proj = 0;
    EXPECT_TRUE(identity.validate());
}

// As many candidates as documents (the search's ef): the blocked scan hands every allowed document to
// the exact re-rank, so the answer is brute force's, ids and scores, in every state of the collection.
// With the field's 40 candidates, hits carry exact MaxSim, in order, and most of the true top-10.
TEST(MuveraBlocks, FullCandidateDepthEqualsBruteForce) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    auto c = Collection::create(path, blocks_schema(test_params()), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    Tokens gen;
    std::map<std::string, Document> truth;
    auto put = [&](std::size_t first, std::size_t n) {
        std::vector<Document> docs;
        for (std::size_t i = first; i < first + n; ++i) {
            Document d;
            d.id = "d" + std::to_string(1000 + i);
            if (i % 17 != 3) d.fields["colbert"] = gen.make(1 + gen.rng() % 14);  // some lack the field
            d.fields["tag"] = std::string(i % 2 == 0 ? "even" : "odd");
            d.fields["note"] = std::string("n") + std::to_string(i);
            truth[d.id] = d;
            docs.push_back(std::move(d));
        }
        ASSERT_TRUE((*c)->upsert(std::move(docs)));
    };
    put(0, 300);
    ASSERT_TRUE((*c)->flush());  // a persisted segment with blocked FDEs
    put(300, 120);  // an in-memory segment above exact_memory_docs: blocked FDEs too
    put(420, 30);   // an in-memory exact segment
    for (std::size_t i = 450; i < 462; ++i) put(i, 1);  // memtable
    const std::vector<std::string> removed = {"d1004", "d1150", "d1301", "d1425", "d1455"};
    ASSERT_TRUE((*c)->remove(removed));
    for (const auto& id : removed) truth.erase(id);
    // Patches: a stored field only (tokens kept), new tokens, and the field removed.
    {
        std::vector<Document> patches(3);
        patches[0].id = "d1010";
        patches[0].fields["note"] = std::string("patched");
        patches[1].id = "d1020";
        patches[1].fields["colbert"] = gen.make(6);
        patches[2].id = "d1330";
        patches[2].fields["colbert"] = std::monostate{};
        auto n = (*c)->patch(patches);
        ASSERT_TRUE(n) << n.error().to_string();
        EXPECT_EQ(*n, 3u);
        truth["d1010"].fields["note"] = std::string("patched");
        truth["d1020"].fields["colbert"] = patches[1].fields["colbert"];
        truth["d1330"].fields.erase("colbert");
    }
    std::vector<TokenVectors> queries;
    for (int q = 0; q < 8; ++q) queries.push_back(gen.make(1 + q * 2));

    auto check = [&](const std::string& stage, bool expect_blocks) {
        std::size_t overlap_total = 0;
        bool saw_blocks = false;
        for (std::size_t q = 0; q < queries.size(); ++q) {
            const std::string where = stage + " query " + std::to_string(q);
            for (const std::string tag : {"", "odd"}) {
                SearchRequest r = one(QueryClause::of_tokens("colbert", queries[q]), 10, 100000);
                if (!tag.empty()) {
                    Filter f;
                    f.field = "tag";
                    f.values = {tag};
                    r.filter = f;
                }
                auto hits = (*c)->search(r);
                ASSERT_TRUE(hits) << hits.error().to_string();
                const auto want = brute(truth, queries[q], 10, tag);
                ASSERT_EQ(hits->size(), want.size()) << where;
                for (std::size_t j = 0; j < want.size(); ++j) {
                    EXPECT_EQ((*hits)[j].id, want[j].id) << where << " tag '" << tag << "' rank " << j;
                    EXPECT_EQ((*hits)[j].score, want[j].score) << where << " tag '" << tag << "' rank " << j;
                }
            }
            // The field's 40 candidates per segment: exact scores of the hits, in order; most of the top-10.
            SearchExplain ex;
            auto hits = (*c)->search(one(QueryClause::of_tokens("colbert", queries[q]), 10), &ex);
            ASSERT_TRUE(hits) << hits.error().to_string();
            ASSERT_EQ(hits->size(), 10u) << where;
            for (std::size_t j = 0; j < hits->size(); ++j) {
                const auto& h = (*hits)[j];
                ASSERT_TRUE(truth.count(h.id)) << where << " " << h.id;
                EXPECT_EQ(h.score, maxsim_of(truth.at(h.id), queries[q])) << where << " " << h.id;
                if (j > 0) {
                    EXPECT_GE((*hits)[j - 1].score, h.score) << where;
                }
            }
            const auto want = brute(truth, queries[q], 10);
            for (const auto& h : *hits) {
                for (const auto& w2 : want) overlap_total += w2.id == h.id ? 1 : 0;
            }
            for (const auto& p : ex.plans) saw_blocks = saw_blocks || p.strategy == "muvera_blocks";
            // A filter allowing more documents than the candidates: the scan skips the others.
            SearchRequest fr = one(QueryClause::of_tokens("colbert", queries[q]), 10, 30);
            Filter f;
            f.field = "tag";
            f.values = {std::string("odd")};
            fr.filter = f;
            SearchExplain fex;
            auto filtered = (*c)->search(fr, &fex);
            ASSERT_TRUE(filtered) << filtered.error().to_string();
            ASSERT_EQ(filtered->size(), 10u) << where;
            for (const auto& h : *filtered) {
                EXPECT_EQ(std::get<std::string>(truth.at(h.id).fields.at("tag")), "odd") << where << " " << h.id;
                EXPECT_EQ(h.score, maxsim_of(truth.at(h.id), queries[q])) << where << " " << h.id;
            }
            if (expect_blocks) {
                bool blocks = false;
                for (const auto& p : fex.plans) blocks = blocks || p.strategy == "muvera_blocks";
                EXPECT_TRUE(blocks) << where;
            }
        }
        EXPECT_EQ(saw_blocks, expect_blocks) << stage;
        // 40 candidates of ~250-450 documents per segment on clustered tokens.
        EXPECT_GE(overlap_total, 64u) << stage << ": " << overlap_total << " of 80";
    };
    check("mixed", true);
    ASSERT_TRUE((*c)->flush());
    check("flushed", true);
    (*c)->close();
    c = Collection::open(path, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    check("reopened", true);
    ASSERT_TRUE((*c)->optimize());
    check("optimized", true);
    // One persisted segment: its index file holds blocked FDEs with the field's parameters, no graph.
    const std::string seg = testutil::newest_segment(path);
    ASSERT_FALSE(seg.empty());
    EXPECT_FALSE(std::filesystem::exists(seg + "/mv_colbert.mvix.fde"));
    {
        auto mv = multivector::MultiVectorIndex::open(seg + "/mv_colbert.mvix");
        ASSERT_TRUE(mv) << mv.error().to_string();
        EXPECT_EQ((*mv)->fde_kind(), "blocks");
        ASSERT_NE((*mv)->fde_blocks(), nullptr);
        EXPECT_EQ((*mv)->size(), truth.size());
        EXPECT_EQ((*mv)->muvera()->params().k_sim, 5u);
        EXPECT_EQ((*mv)->muvera()->params().d_proj, 4u);
        EXPECT_EQ((*mv)->muvera()->params().r_reps, 6u);
        EXPECT_EQ((*mv)->fde_blocks()->dim(), 6u * 32u * 4u);
    }
    EXPECT_EQ(manifest_version(path), 4u);
    (*c)->close();
    c = Collection::open(path, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    check("optimized + reopened", true);
    EXPECT_EQ(std::get<std::string>((*c)->get("d1010")->fields.at("note")), "patched");
}

// Fields stored before blocked FDEs (MuveraFieldParams::legacy(): HNSW over FDEs) keep that layout:
// MANIFEST version 2, `.fde` graph files, answers as before; an exact field ignores the options.
TEST(MuveraBlocks, LegacyHnswFieldsStillReadAndWritten) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    auto c = Collection::create(path, blocks_schema(MuveraFieldParams::legacy()), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    Tokens gen;
    std::map<std::string, Document> truth;
    std::vector<Document> docs;
    for (std::size_t i = 0; i < 260; ++i) {
        Document d;
        d.id = "d" + std::to_string(i);
        d.fields["colbert"] = gen.make(1 + i % 9);
        d.fields["tag"] = std::string(i % 2 == 0 ? "even" : "odd");
        truth[d.id] = d;
        docs.push_back(std::move(d));
    }
    ASSERT_TRUE((*c)->upsert(docs));
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ(manifest_version(path), 2u);
    const std::string seg = testutil::newest_segment(path);
    EXPECT_TRUE(std::filesystem::exists(seg + "/mv_colbert.mvix.fde"));
    (*c)->close();
    c = Collection::open(path, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    ASSERT_TRUE((*c)->optimize());
    EXPECT_TRUE(std::filesystem::exists(testutil::newest_segment(path) + "/mv_colbert.mvix.fde"));
    for (int q = 0; q < 5; ++q) {
        const TokenVectors qt = gen.make(3 + q);
        SearchExplain ex;
        // ef beyond the segment: the graph walk reaches every document, so the answer is exact.
        auto hits = (*c)->search(one(QueryClause::of_tokens("colbert", qt), 10, 1000), &ex);
        ASSERT_TRUE(hits) << hits.error().to_string();
        const auto want = brute(truth, qt, 10);
        ASSERT_EQ(hits->size(), want.size());
        for (std::size_t j = 0; j < want.size(); ++j) {
            EXPECT_EQ((*hits)[j].id, want[j].id) << "query " << q << " rank " << j;
            EXPECT_EQ((*hits)[j].score, want[j].score);
        }
        for (const auto& p : ex.plans) {
            if (p.source != "memtable") EXPECT_EQ(p.strategy, "muvera_rerank");
        }
    }
    EXPECT_EQ(manifest_version(path), 2u);
}

// A persisted segment's index file must hold the field's layout and parameters; damage anywhere in it
// (token store or blocked FDE sections) and truncation are kDataLoss.
TEST(MuveraBlocks, MismatchedOrDamagedIndexFilesAreDataLoss) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    Tokens gen;
    {
        auto c = Collection::create(path, blocks_schema(test_params()), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        std::vector<Document> docs;
        for (std::size_t i = 0; i < 120; ++i) {
            Document d;
            d.id = "d" + std::to_string(i);
            d.fields["colbert"] = gen.make(1 + i % 7);
            d.fields["tag"] = std::string("x");
            docs.push_back(std::move(d));
        }
        ASSERT_TRUE((*c)->upsert(docs));
        ASSERT_TRUE((*c)->flush());
    }
    ASSERT_TRUE(Collection::open(path, manual())) << "the intact collection opens";
    const std::string seg = testutil::newest_segment(path);
    const std::string seg_name = std::filesystem::path(seg).filename().string();
    const std::string file = seg + "/mv_colbert.mvix";
    auto copy_of = [&](const std::string& name) {
        const std::string copy = dir.file(name);
        std::filesystem::copy(path, copy, std::filesystem::copy_options::recursive);
        return copy + "/" + seg_name + "/mv_colbert.mvix";
    };
    auto expect_data_loss = [&](const std::string& target, const std::string& what, const char* says = nullptr) {
        const std::string coll = std::filesystem::path(target).parent_path().parent_path().string();
        auto c = Collection::open(coll, manual());
        ASSERT_FALSE(c) << what;
        EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss) << what << ": " << c.error().to_string();
        if (says != nullptr) {
            EXPECT_NE(c.error().message().find(says), std::string::npos) << what << ": " << c.error().message();
        }
    };
    // Valid index files of the same documents with another layout or other parameters.
    auto opened = multivector::MultiVectorIndex::open(file);
    ASSERT_TRUE(opened) << opened.error().to_string();
    const multivector::TokenStore& store = (*opened)->store();
    auto rebuild = [&](const std::string& fde, std::size_t k_sim) {
        multivector::TokenStoreBuilder b(kDim, multivector::TokenCodec::kFloat32);
        std::vector<float> rows;
        for (std::size_t d = 0; d < store.size(); ++d) {
            rows.resize(store.tokens(d) * kDim);
            store.decode(d, rows.data());
            EXPECT_TRUE(b.add({rows.data(), store.tokens(d), kDim}));
        }
        multivector::MultiVectorBuildParams p;
        p.fde_index = fde;
        p.muvera.k_sim = k_sim;
        p.muvera.d_proj = 4;
        p.muvera.r_reps = 6;
        auto built = multivector::MultiVectorIndex::build(std::move(b).finish(), {}, p);
        EXPECT_TRUE(built) << built.error().to_string();
        return std::move(built).value();
    };
    {
        const std::string target = copy_of("hnsw_layout");
        ASSERT_TRUE(rebuild("hnsw", 5)->save(target));
        expect_data_loss(target, "an HNSW layout", "do not match the field's");
    }
    {
        const std::string target = copy_of("other_k_sim");
        ASSERT_TRUE(rebuild("blocks", 4)->save(target));
        expect_data_loss(target, "k_sim 4", "k_sim 4");
    }
    {  // the rebuild with the field's own parameters is accepted (the check is not over-strict)
        const std::string target = copy_of("same");
        ASSERT_TRUE(rebuild("blocks", 5)->save(target));
        auto c = Collection::open(std::filesystem::path(target).parent_path().parent_path().string(), manual());
        ASSERT_TRUE(c) << c.error().to_string();
    }
    const auto size = std::filesystem::file_size(file);
    for (const double at : {0.1, 0.4, 0.7, 0.9, 0.99}) {
        const std::string target = copy_of("flip" + std::to_string(at));
        std::fstream f(target, std::ios::in | std::ios::out | std::ios::binary);
        const auto pos = static_cast<std::streamoff>(static_cast<double>(size) * at);
        f.seekg(pos);
        char b = 0;
        f.read(&b, 1);
        b = static_cast<char>(b ^ 0x44);
        f.seekp(pos);
        f.write(&b, 1);
        f.close();
        expect_data_loss(target, "a flipped byte at " + std::to_string(at));
    }
    for (const std::uintmax_t cut : {std::uintmax_t{1}, std::uintmax_t{30}, size / 2}) {
        const std::string target = copy_of("cut" + std::to_string(cut));
        std::filesystem::resize_file(target, size - cut);
        expect_data_loss(target, "truncated by " + std::to_string(cut));
    }
    {
        const std::string target = copy_of("removed");
        std::filesystem::remove(target);
        expect_data_loss(target, "removed");
    }
}

// Real data: SciFact title and abstract sentences as passages, one GloVe 6B 100-d vector per known
// word (as `scripts/bench-multivector`), claims as queries. One persisted segment with blocked FDEs
// (the default k_sim 6, d_proj 8, r_reps 8) and 5% of the passages as candidates; recall@10 against
// the library's exact MaxSim brute force over the same tokens.
std::vector<std::string> sentences(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i + 2 < text.size(); ++i) {
        const char c = text[i];
        const char next = text[i + 2];
        if ((c == '.' || c == '?' || c == '!') && text[i + 1] == ' ' &&
            (std::isupper(static_cast<unsigned char>(next)) || std::isdigit(static_cast<unsigned char>(next)) || next == '(')) {
            out.push_back(text.substr(start, i + 1 - start));
            start = i + 2;
        }
    }
    out.push_back(text.substr(start));
    std::vector<std::string> kept;
    for (auto& s : out) {
        if (std::count(s.begin(), s.end(), ' ') >= 2) kept.push_back(std::move(s));
    }
    return kept;
}

TEST(MuveraBlocks, SciFactPassagesRecallFloor) {
    QUIVER_REQUIRE_DATA(scifact, "scifact");
    QUIVER_REQUIRE_DATA(glove, "glove-6b-100d");
    auto ds = eval::load_dataset(scifact);
    ASSERT_TRUE(ds) << ds.error().to_string();
    auto enc = encode::load_encoder(glove);
    ASSERT_TRUE(enc) << enc.error().to_string();
    constexpr std::size_t kPassages = 6000;
    std::vector<std::string> passages;
    for (const auto& d : ds->documents) {
        if (passages.size() >= kPassages) break;
        passages.push_back(d.title);
        for (auto& s : sentences(d.text)) passages.push_back(std::move(s));
    }
    passages.resize(std::min(passages.size(), kPassages));
    auto encode_all = [&](const std::vector<std::string>& texts, encode::EncodeRole role) {
        std::vector<std::string_view> views(texts.begin(), texts.end());
        encode::EncodeOptions o;
        o.role = role;
        o.kind = encode::OutputKind::kMultiVector;
        auto e = (*enc)->encode(views, o);
        EXPECT_TRUE(e) << e.error().to_string();
        return e ? std::move(e->multi) : std::vector<Matrix<float>>{};
    };
    const std::vector<Matrix<float>> doc_tokens = encode_all(passages, encode::EncodeRole::kDocument);
    std::vector<std::string> query_texts;
    for (std::size_t q = 0; q < ds->queries.size() && query_texts.size() < 40; q += 7) query_texts.push_back(ds->queries[q].text);
    std::vector<Matrix<float>> query_tokens = encode_all(query_texts, encode::EncodeRole::kQuery);
    ASSERT_EQ(doc_tokens.size(), passages.size());

    Schema s;
    FieldSpec mv;
    mv.name = "glove";
    mv.type = FieldType::kMultiVector;
    mv.dim = 100;
    mv.muvera.candidates = kPassages / 20;
    s.fields = {mv};
    testing::TempDir dir;
    CollectionOptions o = manual();
    o.exact_memory_docs = 1000;
    auto c = Collection::create(dir.file("scifact"), s, o);
    ASSERT_TRUE(c) << c.error().to_string();
    multivector::TokenStoreBuilder ref(100, multivector::TokenCodec::kFloat32);
    std::vector<Document> batch;
    std::size_t with_tokens = 0;
    for (std::size_t i = 0; i < doc_tokens.size(); ++i) {
        ASSERT_TRUE(ref.add(doc_tokens[i].view()));
        Document d;
        d.id = std::to_string(i);
        if (doc_tokens[i].rows > 0) {
            TokenVectors tv;
            tv.dim = 100;
            tv.values.assign(doc_tokens[i].values.begin(), doc_tokens[i].values.begin() + doc_tokens[i].rows * 100);
            d.fields["glove"] = std::move(tv);
            ++with_tokens;
        }
        batch.push_back(std::move(d));
        if (batch.size() == 1000) {
            ASSERT_TRUE((*c)->upsert(std::move(batch)));
            batch.clear();
        }
    }
    if (!batch.empty()) {
        ASSERT_TRUE((*c)->upsert(std::move(batch)));
    }
    ASSERT_TRUE((*c)->optimize());
    const multivector::TokenStore truth_store = std::move(ref).finish();
    multivector::MaxSimScratch scratch;
    // recall@10 of the collection's MUVERA search (ef 0 = the field's candidates) against brute force.
    auto recall = [&](std::size_t ef) {
        double total = 0;
        std::size_t counted = 0;
        for (const auto& q : query_tokens) {
            if (q.rows == 0) continue;
            const auto want = multivector::exact_search(truth_store, q.view(), 10, scratch);
            if (want.empty()) continue;
            TokenVectors qt;
            qt.dim = 100;
            qt.values.assign(q.values.begin(), q.values.begin() + q.rows * 100);
            SearchExplain ex;
            auto hits = (*c)->search(one(QueryClause::of_tokens("glove", qt), 10, ef), &ex);
            EXPECT_TRUE(hits) << hits.error().to_string();
            if (!hits) return 0.0;
            // Tie-aware: a hit scoring at least the exact 10th score is a true top-10 member (hits carry
            // exact MaxSim from the same kernel; duplicate passages tie).
            std::size_t found = 0;
            for (const auto& h : *hits) found += h.score >= static_cast<double>(want.back().score) ? 1 : 0;
            total += static_cast<double>(std::min(found, want.size())) / static_cast<double>(want.size());
            ++counted;
            for (const auto& p : ex.plans) {
                if (p.source != "memtable") EXPECT_EQ(p.strategy, "muvera_blocks");
            }
        }
        return counted == 0 ? 0.0 : total / static_cast<double>(counted);
    };
    const double r100 = recall(100);
    const double r_default = recall(0);
    const double r_all = recall(kPassages);
    std::printf("[ measure ] SciFact: %zu passages (%zu with known words), %zu queries, one blocked segment (k_sim 6, "
                "d_proj 8, r_reps 8): recall@10 vs exact MaxSim %.3f at 100 candidates, %.3f at %zu, %.3f at all\n",
                passages.size(), with_tokens, query_tokens.size(), r100, r_default, kPassages / 20, r_all);
    // Measured 0.680 and 0.842 (deterministic data and draws; the floors leave room for SIMD-level
    // rounding of tied MaxSim scores).
    EXPECT_EQ(r_all, 1.0);
    EXPECT_GT(r_default, r100);
    EXPECT_GE(r100, 0.65);
    EXPECT_GE(r_default, 0.82);
}

}  // namespace
}  // namespace quiver::engine
