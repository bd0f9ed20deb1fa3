// Collections with quantized and on-disk vector fields: recall against brute force, exact float32 scores
// after the rescore, merges (codes rebuilt or continued), resident-memory stats, damaged files, schema
// rules and encodings. GloVe runs when ../shared/data is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "engine_test_util.h"
#include "quiver/index/code_index.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/storage/file_format.h"
#include "quiver/storage/vector_io.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

using index::CodecSpec;

// One vector field per storage configuration; every field of a document holds the same vector.
struct Config {
    const char* name;
    VectorIndexKind kind;
    simd::Metric metric;
    const char* codec;
    std::size_t rescore;
    std::size_t nlist;
    std::size_t nprobe;
    bool on_disk;
    double floor;  // recall@10 floor on the generated data
};

const std::vector<Config>& configs() {
    static const std::vector<Config> c = {
        {"h_sq8", VectorIndexKind::kHnsw, simd::Metric::kCosine, "sq8", 0, 0, 0, false, 0.95},
        {"h_sq8_disk", VectorIndexKind::kHnsw, simd::Metric::kL2, "sq8", 96, 0, 0, true, 0.95},
        {"h_rabitq_disk", VectorIndexKind::kHnsw, simd::Metric::kCosine, "rabitq4", 0, 0, 0, true, 0.95},
        {"f_pq8", VectorIndexKind::kFlat, simd::Metric::kCosine, "pq8x8", 100, 0, 0, false, 0.9},
        {"f_pq4_disk", VectorIndexKind::kFlat, simd::Metric::kInnerProduct, "pq16x4", 200, 0, 0, true, 0.95},
        {"i_rabitq_disk", VectorIndexKind::kFlat, simd::Metric::kL2, "rabitq4", 0, 16, 12, true, 0.9},
        {"f_binary", VectorIndexKind::kFlat, simd::Metric::kCosine, "binary4", 400, 0, 0, false, 0.95},
    };
    return c;
}

constexpr std::size_t kDim = 32;

Schema quant_schema() {
    Schema s;
    FieldSpec tag;
    tag.name = "tag";
    tag.type = FieldType::kKeyword;
    tag.payload_index = true;
    s.fields.push_back(tag);
    for (const Config& c : configs()) {
        FieldSpec f;
        f.name = c.name;
        f.type = FieldType::kVector;
        f.dim = kDim;
        f.metric = c.metric;
        f.index = c.kind;
        f.hnsw_m = 12;
        f.hnsw_ef_construction = 64;
        f.quantization.codec = *CodecSpec::parse(c.codec);
        f.quantization.rescore = c.rescore;
        f.quantization.nlist = c.nlist;
        f.quantization.nprobe = c.nprobe;
        f.on_disk = c.on_disk;
        s.fields.push_back(f);
    }
    return s;
}

CollectionOptions quiet_options() {
    CollectionOptions o;
    o.background_merge = false;
    o.build_threads = 2;
    return o;
}

std::vector<float> row(const Matrix<float>& m, std::size_t i) { return {m.row_ptr(i), m.row_ptr(i) + m.dim}; }

Document vec_doc(std::size_t id, const std::vector<float>& v) {
    Document d;
    d.id = "v" + std::to_string(id);
    d.fields["tag"] = std::string(id % 2 == 0 ? "even" : "odd");
    for (const Config& c : configs()) d.fields[c.name] = v;
    return d;
}

// The exact distance of the field's metric (cosine on normalised copies), in double precision.
double exact_distance(simd::Metric m, const std::vector<float>& q, const std::vector<float>& x) {
    double dot = 0, qq = 0, xx = 0, l2 = 0;
    for (std::size_t j = 0; j < q.size(); ++j) {
        dot += double(q[j]) * x[j];
        qq += double(q[j]) * q[j];
        xx += double(x[j]) * x[j];
        l2 += (double(q[j]) - x[j]) * (double(q[j]) - x[j]);
    }
    if (m == simd::Metric::kL2) return l2;
    if (m == simd::Metric::kInnerProduct) return 1.0 - dot;
    return 1.0 - dot / std::sqrt(qq * xx);
}

// Brute force over the live documents (id -> vector): the k nearest ids.
std::vector<std::string> brute_force(simd::Metric m, const std::vector<float>& q,
                                     const std::map<std::string, std::vector<float>>& live, std::size_t k,
                                     const std::string& tag = "") {
    std::vector<std::pair<double, std::string>> all;
    for (const auto& [id, v] : live) {
        if (!tag.empty() && ((std::stoul(id.substr(1)) % 2 == 0) != (tag == "even"))) continue;
        all.emplace_back(exact_distance(m, q, v), id);
    }
    const std::size_t n = std::min(k, all.size());
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end());
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(all[i].second);
    return out;
}

struct FieldRun {
    double recall = 0;
    std::vector<std::vector<SearchHit>> hits;
};

// Searches every query on `field`; checks that every hit's score is its exact float32 distance (the
// rescore ran) and that no hit is outside `live`; returns recall@10 against brute force.
FieldRun run_field(Collection& c, const Config& cfg, const Matrix<float>& queries,
                   const std::map<std::string, std::vector<float>>& live, const std::string& tag = "") {
    FieldRun out;
    std::size_t found = 0, wanted = 0;
    for (std::size_t qi = 0; qi < queries.rows; ++qi) {
        const auto q = row(queries, qi);
        SearchRequest r;
        r.clauses.push_back(QueryClause::of_vector(cfg.name, q));
        r.k = 10;
        r.return_fields = std::vector<std::string>{};
        if (!tag.empty()) {
            Filter f;
            f.op = Filter::Op::kEq;
            f.field = "tag";
            f.values = {FieldValue{tag}};
            r.filter = f;
        }
        auto hits = c.search(r);
        EXPECT_TRUE(hits.ok()) << cfg.name << ": " << hits.error().message();
        if (!hits.ok()) return out;
        const auto truth = brute_force(cfg.metric, q, live, 10, tag);
        const std::set<std::string> truth_set(truth.begin(), truth.end());
        for (const SearchHit& h : *hits) {
            const auto it = live.find(h.id);
            EXPECT_TRUE(it != live.end()) << cfg.name << " returned " << h.id << ", which is not live";
            if (it == live.end()) continue;
            if (!tag.empty()) {
                EXPECT_EQ(std::stoul(h.id.substr(1)) % 2 == 0, tag == "even") << cfg.name << " " << h.id;
            }
            const double exact = exact_distance(cfg.metric, q, it->second);
            EXPECT_NEAR(h.score, -exact, 1e-4 * std::max(1.0, std::fabs(exact))) << cfg.name << " " << h.id;
            found += truth_set.count(h.id);
        }
        wanted += truth.size();
        out.hits.push_back(std::move(*hits));
    }
    out.recall = wanted == 0 ? 1.0 : static_cast<double>(found) / static_cast<double>(wanted);
    return out;
}

// Queries near the data: base rows plus a little noise.
Matrix<float> near_queries(const Matrix<float>& base, std::size_t n, std::uint64_t seed) {
    const auto noise = testing::random_matrix(n, base.dim, seed);
    Matrix<float> q(n, base.dim);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t src = (i * 7919) % base.rows;
        for (std::size_t j = 0; j < base.dim; ++j) q.row_ptr(i)[j] = base.row_ptr(src)[j] + 0.05f * noise.row_ptr(i)[j];
    }
    return q;
}

std::vector<std::string> segment_dirs(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.is_directory() && e.path().filename().string().rfind("seg_", 0) == 0) out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Every persisted vector file of a quantized field holds the schema's codes (HNSW on codes, or a code
// index with the schema's codec and at most nlist lists).
void expect_codes_match_schema(const std::string& dir) {
    for (const std::string& seg : segment_dirs(dir)) {
        for (const Config& cfg : configs()) {
            const std::string path = seg + "/vec_" + cfg.name + ".qvr";
            auto idx = index::open_index(path);
            ASSERT_TRUE(idx.ok()) << path << ": " << idx.error().message();
            const CodecSpec want = *CodecSpec::parse(cfg.codec);
            if (cfg.kind == VectorIndexKind::kHnsw) {
                const auto* h = dynamic_cast<const index::HnswIndex*>(idx->get());
                ASSERT_NE(h, nullptr) << path;
                EXPECT_EQ(h->params().codec, want) << path;
            } else {
                const auto* ci = dynamic_cast<const index::CodeIndex*>(idx->get());
                ASSERT_NE(ci, nullptr) << path;
                EXPECT_EQ(ci->codec()->spec(), want) << path;
                EXPECT_LE(ci->nlist(), cfg.nlist) << path;
                if (cfg.nlist > 0) {
                    EXPECT_GE(ci->nlist(), 2u) << path;
                }
                EXPECT_TRUE(ci->has_vectors()) << path;
            }
        }
    }
}

TEST(QuantizedCollection, RecallFloorsExactScoresAndStats) {
    testing::TempDir tmp;
    const std::string dir = tmp.file("c");
    const std::size_t n = 4000;
    const auto base = testing::clustered_matrix(n, kDim, 24, 7);
    const auto queries = near_queries(base, 60, 8);
    std::map<std::string, std::vector<float>> live;
    auto c = Collection::create(dir, quant_schema(), quiet_options());
    ASSERT_TRUE(c.ok()) << c.error().message();
    for (std::size_t b = 0; b < n; b += 1000) {
        std::vector<Document> docs;
        for (std::size_t i = b; i < b + 1000; ++i) {
            docs.push_back(vec_doc(i, row(base, i)));
            live["v" + std::to_string(i)] = row(base, i);
        }
        ASSERT_TRUE((*c)->upsert(std::move(docs)).ok());
    }
    // In memory (exact float32 segments): recall 1.
    for (const Config& cfg : configs()) EXPECT_EQ(run_field(**c, cfg, queries, live).recall, 1.0) << cfg.name;
    const auto mem_stats = (*c)->stats();
    EXPECT_EQ(mem_stats.vector_disk_bytes, 0u);

    ASSERT_TRUE((*c)->flush().ok());
    const auto st = (*c)->stats();
    ASSERT_EQ(st.memory_segments, 0u);
    ASSERT_GE(st.segments, 1u);
    std::size_t disk_fields = 0;
    for (const Config& cfg : configs()) disk_fields += cfg.on_disk ? 1 : 0;
    const std::uint64_t float_bytes = n * kDim * sizeof(float);
    EXPECT_EQ(st.vector_disk_bytes, disk_fields * float_bytes);
    // Resident: at least the float32 vectors of the fields that keep them in memory (plus codes, graphs
    // and ids of every field).
    EXPECT_GT(st.vector_memory_bytes, (configs().size() - disk_fields) * float_bytes);
    expect_codes_match_schema(dir);

    std::map<std::string, FieldRun> before;
    for (const Config& cfg : configs()) {
        FieldRun r = run_field(**c, cfg, queries, live);
        std::printf("[ measure ] %s (%s%s): recall@10 %.3f\n", cfg.name, cfg.codec, cfg.on_disk ? ", on disk" : "",
                    r.recall);
        EXPECT_GE(r.recall, cfg.floor) << cfg.name;
        // Filtered (half the documents): only matching hits, exact scores.
        FieldRun f = run_field(**c, cfg, queries, live, "even");
        EXPECT_GE(f.recall, cfg.floor - 0.05) << cfg.name << " filtered";
        before.emplace(cfg.name, std::move(r));
    }
    c->reset();
    // Reopened: the same answers from the files (on-disk fields read their vectors with pread).
    auto again = Collection::open(dir, quiet_options());
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ((*again)->schema().fields.size(), quant_schema().fields.size());
    for (std::size_t i = 0; i < quant_schema().fields.size(); ++i) {
        EXPECT_EQ((*again)->schema().fields[i].quantization, quant_schema().fields[i].quantization);
        EXPECT_EQ((*again)->schema().fields[i].on_disk, quant_schema().fields[i].on_disk);
    }
    const auto st2 = (*again)->stats();
    EXPECT_EQ(st2.vector_disk_bytes, st.vector_disk_bytes);
    // The reopened collection's figure is the sum over its index files opened as the schema says.
    std::uint64_t resident = 0;
    for (const std::string& seg : segment_dirs(dir)) {
        for (const Config& cfg : configs()) {
            auto idx = index::open_index(seg + "/vec_" + cfg.name + ".qvr", {.vectors_on_disk = cfg.on_disk});
            ASSERT_TRUE(idx.ok());
            resident += (*idx)->memory_bytes();
        }
    }
    EXPECT_EQ(st2.vector_memory_bytes, resident);
    for (const Config& cfg : configs()) {
        FieldRun r = run_field(**again, cfg, queries, live);
        const FieldRun& b = before.at(cfg.name);
        ASSERT_EQ(r.hits.size(), b.hits.size());
        for (std::size_t q = 0; q < r.hits.size(); ++q) {
            ASSERT_EQ(r.hits[q].size(), b.hits[q].size()) << cfg.name;
            for (std::size_t j = 0; j < r.hits[q].size(); ++j) {
                EXPECT_EQ(r.hits[q][j].id, b.hits[q][j].id) << cfg.name << " query " << q;
                EXPECT_EQ(r.hits[q][j].score, b.hits[q][j].score) << cfg.name << " query " << q;
            }
        }
    }
}

TEST(QuantizedCollection, MergesKeepCodesConsistent) {
    testing::TempDir tmp;
    const std::string dir = tmp.file("c");
    const auto base = testing::clustered_matrix(5000, kDim, 24, 11);
    const auto queries = near_queries(base, 40, 12);
    std::map<std::string, std::vector<float>> live;
    auto c = Collection::create(dir, quant_schema(), quiet_options());
    ASSERT_TRUE(c.ok()) << c.error().message();
    auto put = [&](std::size_t from, std::size_t to, std::size_t src_offset) {
        std::vector<Document> docs;
        for (std::size_t i = from; i < to; ++i) {
            const auto v = row(base, (i + src_offset) % base.rows);
            docs.push_back(vec_doc(i, v));
            live["v" + std::to_string(i)] = v;
        }
        ASSERT_TRUE((*c)->upsert(std::move(docs)).ok());
    };
    put(0, 1500, 0);
    ASSERT_TRUE((*c)->flush().ok());
    // Only new documents, nothing deleted: the merge continues the persisted graphs on their codes.
    put(1500, 2500, 0);
    ASSERT_TRUE((*c)->optimize().ok());
    expect_codes_match_schema(dir);
    for (const Config& cfg : configs()) EXPECT_GE(run_field(**c, cfg, queries, live).recall, cfg.floor) << cfg.name;

    // Replacements (new vectors), deletions and new documents: the merge rebuilds the codes.
    put(2000, 2300, 2500);
    std::vector<std::string> gone;
    for (std::size_t i = 0; i < 2500; i += 9) {
        if (i >= 2000 && i < 2300) continue;
        gone.push_back("v" + std::to_string(i));
        live.erase("v" + std::to_string(i));
    }
    ASSERT_EQ(*(*c)->remove(gone), gone.size());
    put(2500, 3500, 0);
    ASSERT_TRUE((*c)->optimize().ok());
    EXPECT_EQ((*c)->stats().deleted_pending, 0u);
    EXPECT_EQ((*c)->stats().documents, live.size());
    expect_codes_match_schema(dir);
    for (const Config& cfg : configs()) {
        const FieldRun r = run_field(**c, cfg, queries, live);
        std::printf("[ measure ] after merges %s: recall@10 %.3f\n", cfg.name, r.recall);
        EXPECT_GE(r.recall, cfg.floor) << cfg.name;
    }
    // Every replaced document is found by its new vector, at distance 0, on every field (but the
    // inner-product one, where a longer vector can beat a vector's own score).
    for (std::size_t i = 2000; i < 2300; i += 13) {
        const std::string id = "v" + std::to_string(i);
        for (const Config& cfg : configs()) {
            if (cfg.metric == simd::Metric::kInnerProduct) continue;
            SearchRequest r;
            r.clauses.push_back(QueryClause::of_vector(cfg.name, live.at(id)));
            r.k = 3;
            r.ef = 128;
            auto hits = (*c)->search(r);
            ASSERT_TRUE(hits.ok());
            ASSERT_FALSE(hits->empty());
            EXPECT_EQ((*hits)[0].id, id) << cfg.name;
            EXPECT_NEAR((*hits)[0].score, 0.0, 1e-4) << cfg.name;
        }
    }
    EXPECT_EQ((*c)->stats().vector_disk_bytes, 4 * live.size() * kDim * sizeof(float));
}

// A segment too small to train its codec (PQ needs one vector per centroid) stays float32 and exact.
TEST(QuantizedCollection, SmallSegmentsStayFloat) {
    testing::TempDir tmp;
    const std::string dir = tmp.file("c");
    const auto base = testing::clustered_matrix(100, kDim, 4, 21);
    std::map<std::string, std::vector<float>> live;
    auto c = Collection::create(dir, quant_schema(), quiet_options());
    ASSERT_TRUE(c.ok());
    std::vector<Document> docs;
    for (std::size_t i = 0; i < base.rows; ++i) {
        docs.push_back(vec_doc(i, row(base, i)));
        live["v" + std::to_string(i)] = row(base, i);
    }
    ASSERT_TRUE((*c)->upsert(std::move(docs)).ok());
    ASSERT_TRUE((*c)->flush().ok());
    const auto segs = segment_dirs(dir);
    ASSERT_EQ(segs.size(), 1u);
    auto pq = index::open_index(segs[0] + "/vec_f_pq8.qvr");
    ASSERT_TRUE(pq.ok());
    EXPECT_EQ((*pq)->info().kind, "flat");
    auto sq = index::open_index(segs[0] + "/vec_h_sq8.qvr");
    ASSERT_TRUE(sq.ok());
    EXPECT_EQ(dynamic_cast<const index::HnswIndex&>(**sq).params().codec, *CodecSpec::parse("sq8"));
    const auto queries = near_queries(base, 10, 22);
    for (const Config& cfg : configs()) EXPECT_GE(run_field(**c, cfg, queries, live).recall, 0.9) << cfg.name;
    EXPECT_EQ(run_field(**c, configs()[3], queries, live).recall, 1.0);  // f_pq8: float32 flat, exact
}

// Damaged vector files of quantized and on-disk fields fail open with kDataLoss.
TEST(QuantizedCollection, DamagedCodeFilesAreDataLoss) {
    testing::TempDir tmp;
    const std::string dir = tmp.file("c");
    const auto base = testing::clustered_matrix(1200, kDim, 8, 31);
    {
        auto c = Collection::create(dir, quant_schema(), quiet_options());
        ASSERT_TRUE(c.ok());
        std::vector<Document> docs;
        for (std::size_t i = 0; i < base.rows; ++i) docs.push_back(vec_doc(i, row(base, i)));
        ASSERT_TRUE((*c)->upsert(std::move(docs)).ok());
        ASSERT_TRUE((*c)->flush().ok());
    }
    const auto segs = segment_dirs(dir);
    ASSERT_EQ(segs.size(), 1u);
    ASSERT_TRUE(Collection::open(dir, quiet_options()).ok());
    for (const char* field : {"h_sq8_disk", "h_rabitq_disk", "f_pq8", "i_rabitq_disk", "f_pq4_disk"}) {
        const std::string path = segs[0] + "/vec_" + std::string(field) + ".qvr";
        const std::string good = testing::read_bytes(path);
        ASSERT_GT(good.size(), 1000u) << field;
        // Truncated anywhere (in the float section at the end, in the codes, in the header).
        for (std::size_t keep : {good.size() - 1, good.size() - kDim * 4 * 10, good.size() / 2, std::size_t{20}}) {
            testing::write_bytes(path, good.substr(0, keep));
            auto o = Collection::open(dir, quiet_options());
            ASSERT_FALSE(o.ok()) << field << " truncated to " << keep;
            EXPECT_EQ(o.error().code(), ErrorCode::kDataLoss) << field << ": " << o.error().message();
        }
        // One flipped bit in the float vectors (read only by the rescore) or in the codes.
        for (std::size_t at : {good.size() - storage::kFooterBytes - 200, good.size() / 3}) {
            std::string bad = good;
            bad[at] = static_cast<char>(bad[at] ^ 0x04);
            testing::write_bytes(path, bad);
            auto o = Collection::open(dir, quiet_options());
            ASSERT_FALSE(o.ok()) << field << " flipped at " << at;
            EXPECT_EQ(o.error().code(), ErrorCode::kDataLoss) << field << ": " << o.error().message();
        }
        // Missing.
        std::filesystem::remove(path);
        auto o = Collection::open(dir, quiet_options());
        ASSERT_FALSE(o.ok());
        EXPECT_EQ(o.error().code(), ErrorCode::kDataLoss) << field << ": " << o.error().message();
        testing::write_bytes(path, good);
        ASSERT_TRUE(Collection::open(dir, quiet_options()).ok()) << field;
    }
}

std::uint32_t manifest_version(const std::string& dir) {
    const std::string bytes = testing::read_bytes(dir + "/MANIFEST");
    std::uint32_t v = 0;
    std::memcpy(&v, bytes.data() + 8, 4);
    return v;
}

TEST(QuantizedCollection, SchemaRulesAndVersions) {
    auto with = [](auto edit) {
        Schema s = testutil::small_schema(VectorIndexKind::kHnsw);
        edit(s.fields[3]);
        return s.validate();
    };
    // 0 = accepted, 1 = kInvalidArgument, 2 = another error.
    auto code = [](const Status& st) { return st.ok() ? 0 : st.error().code() == ErrorCode::kInvalidArgument ? 1 : 2; };
    EXPECT_EQ(code(with([](FieldSpec& f) { f.quantization.codec = *CodecSpec::parse("sq8"); })), 0);
    EXPECT_EQ(code(with([](FieldSpec& f) {
                  f.quantization.codec = *CodecSpec::parse("rabitq1");
                  f.on_disk = true;
              })),
              0);
    // on_disk without codes: a float32 graph walk needs its vectors in memory.
    EXPECT_EQ(code(with([](FieldSpec& f) { f.on_disk = true; })), 1);
    // PQ's M must divide the dimension (8).
    EXPECT_EQ(code(with([](FieldSpec& f) { f.quantization.codec = *CodecSpec::parse("pq3x8"); })),
              1);
    // Fast-scan PQ keeps codes in blocks of 32: flat fields only.
    EXPECT_EQ(code(with([](FieldSpec& f) { f.quantization.codec = *CodecSpec::parse("pq4x4"); })), 1);
    EXPECT_EQ(code(with([](FieldSpec& f) {
                  f.index = VectorIndexKind::kFlat;
                  f.quantization.codec = *CodecSpec::parse("pq4x4");
              })),
              0);
    // IVF lists only on flat fields; nprobe at most nlist; options without a codec.
    EXPECT_EQ(code(with([](FieldSpec& f) {
                  f.quantization.codec = *CodecSpec::parse("sq8");
                  f.quantization.nlist = 4;
              })),
              1);
    EXPECT_EQ(code(with([](FieldSpec& f) {
                  f.index = VectorIndexKind::kFlat;
                  f.quantization.codec = *CodecSpec::parse("sq8");
                  f.quantization.nlist = 4;
                  f.quantization.nprobe = 5;
              })),
              1);
    EXPECT_EQ(code(with([](FieldSpec& f) { f.quantization.rescore = 10; })), 1);
    {
        Schema s = testutil::small_schema();
        s.fields[0].on_disk = true;  // a text field
        EXPECT_EQ(code(s.validate()), 1);
    }
    // A schema without storage options keeps MANIFEST version 1 (older builds open it); one with
    // them writes version 2 and reads back equal.
    testing::TempDir tmp;
    {
        auto c = Collection::create(tmp.file("plain"), testutil::small_schema(), quiet_options());
        ASSERT_TRUE(c.ok());
    }
    EXPECT_EQ(manifest_version(tmp.file("plain")), 1u);
    ASSERT_TRUE(Collection::open(tmp.file("plain"), quiet_options()).ok());
    {
        auto c = Collection::create(tmp.file("quant"), quant_schema(), quiet_options());
        ASSERT_TRUE(c.ok());
    }
    EXPECT_EQ(manifest_version(tmp.file("quant")), 2u);
    auto q = Collection::open(tmp.file("quant"), quiet_options());
    ASSERT_TRUE(q.ok());
    for (std::size_t i = 0; i < quant_schema().fields.size(); ++i) {
        EXPECT_EQ((*q)->schema().fields[i].quantization, quant_schema().fields[i].quantization) << i;
        EXPECT_EQ((*q)->schema().fields[i].on_disk, quant_schema().fields[i].on_disk) << i;
    }
}

// GloVe (cosine, 100-d): 20,000 documents in a collection whose fields walk SQ8 codes with the float32
// vectors on disk, or scan RaBitQ codes in IVF lists; recall@10 against brute force over 100 queries.
TEST(QuantizedCollection, GloveRecallFloors) {
    QUIVER_REQUIRE_DATA(data, "glove-6b-100d");
    auto base = storage::read_vectors(data + "/base.fvecs", {.max_rows = 20000});
    auto queries = storage::read_vectors(data + "/query.fvecs", {.max_rows = 100});
    ASSERT_TRUE(base.ok() && queries.ok());
    const Matrix<float>& b = base->vectors;
    Schema s;
    FieldSpec hnsw;
    hnsw.name = "hnsw_sq8";
    hnsw.type = FieldType::kVector;
    hnsw.dim = 100;
    hnsw.metric = simd::Metric::kCosine;
    hnsw.hnsw_m = 16;
    hnsw.hnsw_ef_construction = 100;
    hnsw.quantization.codec = *CodecSpec::parse("sq8");
    hnsw.quantization.rescore = 256;
    hnsw.on_disk = true;
    FieldSpec ivf = hnsw;
    ivf.name = "ivf_rabitq";
    ivf.index = VectorIndexKind::kFlat;
    ivf.quantization.codec = *CodecSpec::parse("rabitq4");
    ivf.quantization.rescore = 0;
    ivf.quantization.nlist = 64;
    ivf.quantization.nprobe = 32;
    s.fields = {hnsw, ivf};
    testing::TempDir tmp;
    auto c = Collection::create(tmp.file("g"), s, quiet_options());
    ASSERT_TRUE(c.ok()) << c.error().message();
    std::map<std::string, std::vector<float>> live;
    for (std::size_t from = 0; from < b.rows; from += 5000) {
        std::vector<Document> docs;
        for (std::size_t i = from; i < std::min(b.rows, from + 5000); ++i) {
            Document d;
            d.id = "v" + std::to_string(i);
            d.fields["hnsw_sq8"] = row(b, i);
            d.fields["ivf_rabitq"] = row(b, i);
            live[d.id] = row(b, i);
            docs.push_back(std::move(d));
        }
        ASSERT_TRUE((*c)->upsert(std::move(docs)).ok());
    }
    ASSERT_TRUE((*c)->optimize().ok());
    ASSERT_EQ((*c)->stats().segments, 1u);
    const auto st = (*c)->stats();
    EXPECT_EQ(st.vector_disk_bytes, 2 * b.rows * 100 * sizeof(float));
    std::printf("[ measure ] GloVe-20k: resident vector bytes %.1f per document and field (float32: 400)\n",
                static_cast<double>(st.vector_memory_bytes) / (2.0 * static_cast<double>(b.rows)));
    EXPECT_LT(st.vector_memory_bytes, 2 * b.rows * 100 * sizeof(float));  // below the fields' float32 vectors
    // Floors below the figures measured (0.951 and 0.962 on 2 build threads, whose graph varies a little).
    const Config hc{"hnsw_sq8", VectorIndexKind::kHnsw, simd::Metric::kCosine, "sq8", 256, 0, 0, true, 0.93};
    const Config ic{"ivf_rabitq", VectorIndexKind::kFlat, simd::Metric::kCosine, "rabitq4", 0, 64, 32, true, 0.95};
    for (const Config& cfg : {hc, ic}) {
        const FieldRun r = run_field(**c, cfg, queries->vectors, live);
        std::printf("[ measure ] GloVe-20k %s: recall@10 %.3f\n", cfg.name, r.recall);
        EXPECT_GE(r.recall, cfg.floor) << cfg.name;
    }
}

}  // namespace
}  // namespace quiver::engine
