// Collections with learned-sparse (SPLADE) and multi-vector (ColBERT) fields (issue 15): sparse_vector
// fields with an encoder, multi_vector fields (token vectors or text through an encoder) searched by
// exact MaxSim or MUVERA + MaxSim re-ranking, fused with BM25 and dense clauses; persistence, crash
// safety and corruption of the new files. The encoders are the committed tiny fixture models
// (tests/data/encode); every answer is checked against brute force over the encoder outputs.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "engine/codec.h"
#include "quiver/encode/encoder.h"
#include "quiver/engine/collection.h"
#include "quiver/engine/fusion.h"
#include "quiver/eval/dataset.h"
#include "quiver/multivector/maxsim.h"
#include "quiver/simd/kernels.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

// EXPECT_EQ that also leaves a function returning a number.
#define EXPECT_EQ_OR_RETURN(a, b) \
    do {                          \
        EXPECT_EQ(a, b);          \
        if ((a) != (b)) return 0; \
    } while (0)

std::string fixture(const std::string& name) { return std::string(QUIVER_SOURCE_DIR) + "/tests/data/encode/" + name; }

CollectionOptions manual() {
    CollectionOptions o;
    o.background_merge = false;
    o.build_threads = 2;
    return o;
}

// title + text (stored), contents (BM25 over both), dense (bert-mean fixture, 32-d, flat cosine),
// splade (sparse_vector, SPLADE fixture), colbert (multi_vector, ColBERT fixture, 16-d), tag (keyword).
Schema encoder_schema(MultiVectorIndexKind mv_index) {
    Schema s;
    FieldSpec title;
    title.name = "title";
    title.indexed = false;
    FieldSpec text;
    text.name = "text";
    text.indexed = false;
    FieldSpec contents;
    contents.name = "contents";
    contents.sources = {"title", "text"};
    FieldSpec dense;
    dense.name = "dense";
    dense.type = FieldType::kVector;
    dense.dim = 32;
    dense.metric = simd::Metric::kCosine;
    dense.index = VectorIndexKind::kFlat;
    dense.encoder = fixture("bert-mean");
    dense.sources = {"title", "text"};
    FieldSpec splade;
    splade.name = "splade";
    splade.type = FieldType::kSparse;
    splade.encoder = fixture("splade");
    splade.sources = {"title", "text"};
    FieldSpec colbert;
    colbert.name = "colbert";
    colbert.type = FieldType::kMultiVector;
    colbert.dim = 16;
    colbert.encoder = fixture("colbert");
    colbert.sources = {"title", "text"};
    colbert.mv_index = mv_index;
    colbert.hnsw_m = 16;
    colbert.hnsw_ef_construction = 64;
    FieldSpec tag;
    tag.name = "tag";
    tag.type = FieldType::kKeyword;
    tag.payload_index = true;
    s.fields = {title, text, contents, dense, splade, colbert, tag};
    return s;
}

struct Corpus {
    std::vector<std::string> ids, titles, texts;
    std::vector<std::string> queries;
};

// Sentences over the fixture vocabulary's whole words (the tiny models know ~60 words).
const char* kWords[] = {"protein", "cell", "gene", "cancer", "study", "data", "result", "effect", "risk", "patient",
                        "science", "claim", "the", "of", "and", "in", "with", "dense", "sparse", "retrieval",
                        "search", "query", "document", "vector", "token", "model", "late", "interaction", "text",
                        "passage", "relevant", "find", "quick", "brown", "fox", "lazy", "dog", "hello", "world"};
constexpr std::size_t kWordCount = sizeof(kWords) / sizeof(kWords[0]);

Corpus synthetic_corpus(std::size_t n, std::size_t queries, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto sentence = [&](std::size_t len) {
        std::string s;
        for (std::size_t w = 0; w < len; ++w) {
            // Skewed word choice, so some words are common and others rare (as in text).
            const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
            const auto pick = static_cast<std::size_t>(u * u * static_cast<double>(kWordCount));
            s += (s.empty() ? "" : " ") + std::string(kWords[std::min(pick, kWordCount - 1)]);
        }
        return s;
    };
    Corpus c;
    for (std::size_t i = 0; i < n; ++i) {
        c.ids.push_back("d" + std::to_string(i));
        c.titles.push_back(sentence(2 + rng() % 3));
        c.texts.push_back(sentence(6 + rng() % 20));
    }
    for (std::size_t q = 0; q < queries; ++q) c.queries.push_back(sentence(2 + rng() % 4));
    return c;
}

Document corpus_doc(const Corpus& c, std::size_t i) {
    Document d;
    d.id = c.ids[i];
    d.fields["title"] = c.titles[i];
    d.fields["text"] = c.texts[i];
    d.fields["tag"] = std::string(i % 3 == 0 ? "a" : "b");
    return d;
}

void ingest(Collection& coll, const Corpus& c, std::size_t batch) {
    std::vector<Document> docs;
    for (std::size_t i = 0; i < c.ids.size(); ++i) {
        docs.push_back(corpus_doc(c, i));
        if (docs.size() == batch) {
            ASSERT_TRUE(coll.upsert(std::move(docs)));
            docs.clear();
        }
    }
    if (!docs.empty()) {
        ASSERT_TRUE(coll.upsert(std::move(docs)));
    }
}

// The test's own encoders (independent of the collection's).
struct Encoders {
    std::unique_ptr<encode::Encoder> dense, splade, colbert;
    Encoders() {
        dense = std::move(encode::load_encoder(fixture("bert-mean"))).value();
        splade = std::move(encode::load_encoder(fixture("splade"))).value();
        colbert = std::move(encode::load_encoder(fixture("colbert"))).value();
    }
    encode::Embeddings run(encode::Encoder& e, const std::string& text, encode::EncodeRole role, encode::OutputKind kind) {
        std::string_view v[1] = {text};
        encode::EncodeOptions o;
        o.role = role;
        o.kind = kind;
        auto r = e.encode(v, o);
        EXPECT_TRUE(r) << r.error().to_string();
        return std::move(r).value();
    }
    std::vector<float> dense_query(const std::string& q) {
        auto e = run(*dense, q, encode::EncodeRole::kQuery, encode::OutputKind::kDense);
        return std::vector<float>(e.dense.values.begin(), e.dense.values.end());
    }
    SparseTerms sparse(const std::string& q, encode::EncodeRole role) {
        auto e = run(*splade, q, role, encode::OutputKind::kSparse);
        std::map<std::string, float> m;
        for (std::size_t i = 0; i < e.sparse[0].ids.size(); ++i) {
            if (e.sparse[0].weights[i] > 0.0f) m[std::string(splade->term(e.sparse[0].ids[i]))] += e.sparse[0].weights[i];
        }
        return SparseTerms(m.begin(), m.end());
    }
    TokenVectors tokens(const std::string& q, encode::EncodeRole role) {
        auto e = run(*colbert, q, role, encode::OutputKind::kMultiVector);
        TokenVectors tv;
        tv.dim = e.multi[0].dim;
        tv.values = e.multi[0].values;
        return tv;
    }
};

struct Scored {
    std::string id;
    double score;
};

// Brute force over every live document's stored field values (what the encoders produced at upsert).
struct Stored {
    std::vector<std::string> ids;
    std::vector<std::vector<float>> dense;
    std::vector<SparseTerms> sparse;
    std::vector<TokenVectors> tokens;
};

Stored read_stored(const Collection& c, const std::vector<std::string>& ids) {
    Stored s;
    for (const auto& id : ids) {
        auto d = c.get(id);
        if (!d) continue;
        s.ids.push_back(id);
        auto get = [&](const char* f) -> const FieldValue* {
            auto it = d->fields.find(f);
            return it == d->fields.end() ? nullptr : &it->second;
        };
        const FieldValue* dv = get("dense");
        s.dense.push_back(dv != nullptr ? std::get<std::vector<float>>(*dv) : std::vector<float>{});
        const FieldValue* sv = get("splade");
        s.sparse.push_back(sv != nullptr ? std::get<SparseTerms>(*sv) : SparseTerms{});
        const FieldValue* tv = get("colbert");
        s.tokens.push_back(tv != nullptr ? std::get<TokenVectors>(*tv) : TokenVectors{});
    }
    return s;
}

std::vector<Scored> sorted(std::vector<Scored> v, std::size_t k) {
    std::sort(v.begin(), v.end(), [](const Scored& a, const Scored& b) {
        return a.score != b.score ? a.score > b.score : a.id < b.id;
    });
    if (v.size() > k) v.resize(k);
    return v;
}

std::vector<Scored> brute_dense(const Stored& s, std::vector<float> q, std::size_t k) {
    simd::normalize(q.data(), q.size());
    std::vector<Scored> out;
    for (std::size_t i = 0; i < s.ids.size(); ++i) {
        if (s.dense[i].empty()) continue;
        std::vector<float> d = s.dense[i];
        simd::normalize(d.data(), d.size());
        double dot = 0;
        for (std::size_t j = 0; j < d.size(); ++j) dot += static_cast<double>(q[j]) * d[j];
        out.push_back({s.ids[i], -(1.0 - dot)});
    }
    return sorted(std::move(out), k);
}

std::vector<Scored> brute_sparse(const Stored& s, const SparseTerms& q, std::size_t k) {
    std::map<std::string, float> qm(q.begin(), q.end());
    std::vector<Scored> out;
    for (std::size_t i = 0; i < s.ids.size(); ++i) {
        double score = 0;
        for (const auto& [t, w] : s.sparse[i]) {
            if (auto it = qm.find(t); it != qm.end()) score += static_cast<double>(it->second) * w;
        }
        if (score > 0) out.push_back({s.ids[i], score});
    }
    return sorted(std::move(out), k);
}

std::vector<Scored> brute_maxsim(const Stored& s, const TokenVectors& q, std::size_t k) {
    std::vector<Scored> out;
    const MatrixView<float> qv{q.values.data(), q.rows(), q.dim};
    for (std::size_t i = 0; i < s.ids.size(); ++i) {
        if (s.tokens[i].rows() == 0) continue;
        // Independent of multivector::maxsim: double accumulation of float dot products.
        double total = 0;
        for (std::size_t a = 0; a < q.rows(); ++a) {
            double best = -1e300;
            for (std::size_t b = 0; b < s.tokens[i].rows(); ++b) {
                double dot = 0;
                for (std::size_t j = 0; j < q.dim; ++j) {
                    dot += static_cast<double>(q.values[a * q.dim + j]) * s.tokens[i].values[b * q.dim + j];
                }
                best = std::max(best, dot);
            }
            total += best;
        }
        (void)qv;
        out.push_back({s.ids[i], total});
    }
    return sorted(std::move(out), k);
}

// `got` equals `want` rank by rank: scores within `tol`, and the same id unless the two ids' scores tie
// within `tol` (the order of near-ties depends on float summation order).
void expect_same_ranking(const std::vector<SearchHit>& got, const std::vector<Scored>& want, double tol,
                         const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    std::map<std::string, double> want_score;
    for (const auto& w : want) want_score[w.id] = w.score;
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i].score, want[i].score, tol * std::max(1.0, std::fabs(want[i].score))) << what << " rank " << i;
        if (got[i].id != want[i].id) {
            const auto it = want_score.find(got[i].id);
            const double other = it != want_score.end() ? it->second : -1e300;
            EXPECT_NEAR(other, want[i].score, 2 * tol * std::max(1.0, std::fabs(want[i].score)))
                << what << " rank " << i << ": " << got[i].id << " instead of " << want[i].id;
        }
    }
}

SearchRequest one(QueryClause c, std::size_t k) {
    SearchRequest r;
    r.clauses.push_back(std::move(c));
    r.k = k;
    r.return_fields = std::vector<std::string>{};
    return r;
}

QueryClause text_clause(const std::string& field, const std::string& text) { return QueryClause::of_text(field, text); }

// The fused answer computed from each clause's own top-100 list (the engine's fusion depth).
std::vector<Scored> fused_reference(const Collection& c, const std::vector<QueryClause>& clauses, const FusionSpec& spec,
                                    std::size_t k) {
    std::vector<std::vector<RankedItem>> lists;
    std::vector<std::string> names;
    std::map<std::string, std::uint64_t> key;
    for (const auto& cl : clauses) {
        auto hits = c.search(one(cl, 100));
        EXPECT_TRUE(hits) << hits.error().to_string();
        std::vector<RankedItem> list;
        for (const auto& h : *hits) {
            auto [it, fresh] = key.emplace(h.id, names.size());
            if (fresh) names.push_back(h.id);
            list.push_back({it->second, h.score});
        }
        lists.push_back(std::move(list));
    }
    FusionSpec f = spec;
    f.weights.assign(clauses.size(), 1.0);
    std::vector<Scored> out;
    for (const auto& r : fuse(lists, f)) out.push_back({names[r.key], r.score});
    return sorted(std::move(out), k);
}

// Checks every field and a fused query of `c` against brute force over the stored encoder outputs.
// `mv_exact`: the multi-vector field answers exactly (else MUVERA: recall against brute force).
// Returns the multi-vector recall@10.
double check_fields(const Collection& c, Encoders& enc, const std::vector<std::string>& ids,
                    const std::vector<std::string>& queries, bool mv_exact, const std::string& what) {
    const Stored stored = read_stored(c, ids);
    constexpr std::size_t k = 10;
    std::size_t found = 0, wanted = 0;
    for (std::size_t qi = 0; qi < queries.size(); ++qi) {
        const std::string& q = queries[qi];
        const std::string where = what + " query " + std::to_string(qi) + " '" + q + "'";
        // dense: text encoded by the collection = the test's encoding; brute force over stored vectors
        {
            auto hits = c.search(one(text_clause("dense", q), k));
            EXPECT_TRUE(hits) << hits.error().to_string();
            if (!hits) return 0;
            expect_same_ranking(*hits, brute_dense(stored, enc.dense_query(q), k), 1e-5, where + " dense");
        }
        // sparse: text through SPLADE, and the same terms given explicitly
        const SparseTerms qs = enc.sparse(q, encode::EncodeRole::kQuery);
        {
            auto by_text = c.search(one(text_clause("splade", q), k));
            EXPECT_TRUE(by_text) << by_text.error().to_string();
            if (!by_text) return 0;
            const auto want = brute_sparse(stored, qs, k);
            expect_same_ranking(*by_text, want, 1e-5, where + " splade text");
            auto by_terms = c.search(one(QueryClause::of_sparse("splade", qs), k));
            EXPECT_TRUE(by_terms);
            if (!by_terms) return 0;
            expect_same_ranking(*by_terms, want, 1e-5, where + " splade terms");
        }
        // multi-vector: text through ColBERT (query role), and the same tokens given explicitly
        const TokenVectors qt = enc.tokens(q, encode::EncodeRole::kQuery);
        {
            const auto want = brute_maxsim(stored, qt, k);
            auto by_tokens = c.search(one(QueryClause::of_tokens("colbert", qt), k));
            EXPECT_TRUE(by_tokens) << by_tokens.error().to_string();
            if (!by_tokens) return 0;
            auto by_text = c.search(one(text_clause("colbert", q), k));
            EXPECT_TRUE(by_text) << by_text.error().to_string();
            if (!by_text) return 0;
            EXPECT_EQ_OR_RETURN(by_text->size(), by_tokens->size());
            for (std::size_t i = 0; i < by_text->size(); ++i) {
                EXPECT_EQ((*by_text)[i].id, (*by_tokens)[i].id) << where;
                EXPECT_EQ((*by_text)[i].score, (*by_tokens)[i].score) << where;
            }
            if (mv_exact) {
                expect_same_ranking(*by_tokens, want, 1e-5, where + " colbert");
            } else {
                // MUVERA: every returned score is the exact MaxSim; recall against brute force.
                std::map<std::string, double> exact;
                for (const auto& s : brute_maxsim(stored, qt, stored.ids.size())) exact[s.id] = s.score;
                std::set<std::string> top;
                for (const auto& w : want) top.insert(w.id);
                for (const auto& h : *by_tokens) {
                    EXPECT_NEAR(h.score, exact.at(h.id), 1e-5 * std::max(1.0, std::fabs(h.score))) << where;
                    found += top.count(h.id);
                }
                wanted += top.size();
            }
        }
        // fused: BM25 + dense + SPLADE + ColBERT, RRF, and convex with min-max normalisation
        const std::vector<QueryClause> clauses = {text_clause("contents", q), text_clause("dense", q),
                                                  text_clause("splade", q), text_clause("colbert", q)};
        for (const FusionMethod m : {FusionMethod::kRrf, FusionMethod::kConvex}) {
            SearchRequest r;
            r.clauses = clauses;
            r.k = k;
            r.fusion.method = m;
            r.return_fields = std::vector<std::string>{};
            auto hits = c.search(r);
            EXPECT_TRUE(hits) << hits.error().to_string();
            if (!hits) return 0;
            EXPECT_FALSE(hits->empty()) << where;
            const auto want = fused_reference(c, clauses, r.fusion, k);
            // RRF depends on ranks only: exact. Convex uses the scores, and the exact sparse index sums
            // a document's term contributions in an order that depends on k (MaxScore's essential
            // lists), so a clause's scores at depth 100 (fused) and 400 (the reference's single-clause
            // search widens past ties at its cut) differ in the last float bits, which min-max
            // normalisation magnifies by max / (max - min).
            expect_same_ranking(*hits, want, m == FusionMethod::kRrf ? 1e-12 : 1e-4,
                                where + (m == FusionMethod::kRrf ? " rrf" : " convex"));
        }
    }
    return wanted == 0 ? 1.0 : static_cast<double>(found) / static_cast<double>(wanted);
}

TEST(MultiVectorFields, SchemaRulesAndEncodings) {
    Schema s = encoder_schema(MultiVectorIndexKind::kMuvera);
    ASSERT_TRUE(s.validate()) << s.validate().error().to_string();
    EXPECT_EQ(to_string(FieldType::kMultiVector), "multi_vector");
    EXPECT_EQ(*parse_field_type("multi_vector"), FieldType::kMultiVector);
    EXPECT_EQ(schema_version(s), 4u);  // MUVERA parameters (blocked FDEs by default)
    // Encoded and decoded exactly (the MANIFEST holds this), index kind included.
    ByteWriter w;
    encode_schema(w, s);
    ByteReader r(w.bytes());
    auto back = decode_schema(r);
    ASSERT_TRUE(back) << back.error().to_string();
    ASSERT_EQ(back->fields.size(), s.fields.size());
    EXPECT_EQ(back->fields[5].type, FieldType::kMultiVector);
    EXPECT_EQ(back->fields[5].mv_index, MultiVectorIndexKind::kMuvera);
    EXPECT_EQ(back->fields[5].dim, 16u);
    EXPECT_EQ(back->fields[4].encoder, fixture("splade"));
    EXPECT_TRUE(r.done());
    // A schema without the new kinds still writes MANIFEST version 1 (older readers open it).
    Schema old;
    old.fields = {s.fields[0], s.fields[1], s.fields[2], s.fields[3]};
    EXPECT_EQ(schema_version(old), 1u);
    // Unhappy schemas.
    auto bad = [&](auto edit) {
        Schema b = encoder_schema(MultiVectorIndexKind::kExact);
        edit(b);
        const Status st = b.validate();
        EXPECT_FALSE(st);
        if (!st) {
            EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
        }
    };
    bad([](Schema& b) { b.fields[5].dim = 0; });
    bad([](Schema& b) { b.fields[5].dim = kMaxTokenDim + 1; });
    bad([](Schema& b) { b.fields[5].hnsw_m = 1; });
    bad([](Schema& b) { b.fields[4].encoder = "hashing"; });   // hashing gives dense vectors only
    bad([](Schema& b) { b.fields[6].encoder = fixture("splade"); });  // keyword fields have no encoder
    bad([](Schema& b) { b.fields[5].encoder.clear(); });       // sources need an encoder
    bad([](Schema& b) { b.fields[5].payload_index = true; });
    // An unknown index kind byte in a stored schema is damage.
    Schema exact = encoder_schema(MultiVectorIndexKind::kExact);
    exact.fields = {exact.fields[0], exact.fields[1], exact.fields[5]};
    exact.fields[2].sources = {"title", "text"};
    ByteWriter ew;
    encode_schema(ew, exact);
    std::string damaged = ew.bytes();
    ASSERT_EQ(damaged.back(), '\0');  // the last byte is the exact field's index kind
    damaged.back() = 7;
    ByteReader dr(damaged);
    auto dec = decode_schema(dr);
    ASSERT_FALSE(dec);
    EXPECT_EQ(dec.error().code(), ErrorCode::kDataLoss);
}

TEST(MultiVectorFields, TokenValuesEncodeAndRejectDamage) {
    TokenVectors tv;
    tv.dim = 3;
    tv.values = {1, 2, 3, 4, 5, 6};
    ByteWriter w;
    encode_value(w, FieldValue{tv});
    {
        ByteReader r(w.bytes());
        auto v = decode_value(r);
        ASSERT_TRUE(v);
        EXPECT_EQ(std::get<TokenVectors>(*v), tv);
        EXPECT_TRUE(r.done());
    }
    for (std::size_t cut = 1; cut < w.bytes().size(); ++cut) {  // every truncation
        ByteReader r(std::string_view(w.bytes()).substr(0, cut));
        auto v = decode_value(r);
        ASSERT_FALSE(v) << cut;
        EXPECT_EQ(v.error().code(), ErrorCode::kDataLoss);
    }
    std::string zero_dim = w.bytes();
    std::memset(zero_dim.data() + 1, 0, 4);  // dim 0
    ByteReader r0(zero_dim);
    EXPECT_EQ(decode_value(r0).error().code(), ErrorCode::kDataLoss);
    std::string many = w.bytes();
    const std::uint32_t rows = 1u << 30;
    std::memcpy(many.data() + 5, &rows, 4);
    ByteReader r1(many);
    EXPECT_EQ(decode_value(r1).error().code(), ErrorCode::kDataLoss);
}

// Token vectors given directly (no encoder): memtable, in-memory and persisted segments, deletes,
// filters and reopen all answer exactly as brute-force MaxSim; MUVERA segments re-rank exactly.
TEST(MultiVectorFields, TokenVectorsWithoutEncoder) {
    for (const auto kind : {MultiVectorIndexKind::kExact, MultiVectorIndexKind::kMuvera}) {
        SCOPED_TRACE(kind == MultiVectorIndexKind::kExact ? "exact" : "muvera");
        Schema s;
        FieldSpec mv;
        mv.name = "colbert";
        mv.type = FieldType::kMultiVector;
        mv.dim = 8;
        mv.mv_index = kind;
        FieldSpec tag;
        tag.name = "tag";
        tag.type = FieldType::kKeyword;
        s.fields = {mv, tag};
        testing::TempDir dir;
        CollectionOptions o = manual();
        o.memtable_max_batch = 8;
        auto c = Collection::create(dir.file("c"), s, o);
        ASSERT_TRUE(c) << c.error().to_string();
        std::mt19937_64 rng(7);
        std::normal_distribution<float> g;
        auto tokens = [&](std::size_t rows) {
            TokenVectors t;
            t.dim = 8;
            for (std::size_t i = 0; i < rows * 8; ++i) t.values.push_back(g(rng));
            return t;
        };
        std::map<std::string, Document> truth;
        auto put = [&](std::size_t first, std::size_t n) {
            std::vector<Document> docs;
            for (std::size_t i = first; i < first + n; ++i) {
                Document d;
                d.id = "d" + std::to_string(i);
                if (i % 11 != 5) d.fields["colbert"] = tokens(1 + rng() % 12);  // some documents lack the field
                d.fields["tag"] = std::string(i % 2 == 0 ? "even" : "odd");
                truth[d.id] = d;
                docs.push_back(std::move(d));
            }
            ASSERT_TRUE((*c)->upsert(std::move(docs)));
        };
        put(0, 300);  // its own in-memory segment
        ASSERT_TRUE((*c)->flush());  // persisted (MUVERA when asked)
        put(300, 100);  // another segment
        for (std::size_t i = 400; i < 420; ++i) put(i, 1);  // memtable
        ASSERT_TRUE((*c)->remove({"d3", "d310", "d405", "d12"}));
        for (const char* id : {"d3", "d310", "d405", "d12"}) truth.erase(id);
        auto check = [&](const std::string& stage) {
            for (int q = 0; q < 6; ++q) {
                const TokenVectors qt = tokens(1 + q * 3);
                const bool filtered = q % 2 == 1;
                Stored st;
                for (const auto& [id, d] : truth) {
                    if (filtered && std::get<std::string>(d.fields.at("tag")) != "odd") continue;
                    st.ids.push_back(id);
                    auto it = d.fields.find("colbert");
                    st.tokens.push_back(it == d.fields.end() ? TokenVectors{} : std::get<TokenVectors>(it->second));
                }
                SearchRequest r = one(QueryClause::of_tokens("colbert", qt), 10);
                if (filtered) {
                    Filter f;
                    f.field = "tag";
                    f.values = {std::string("odd")};
                    r.filter = f;
                }
                SearchExplain ex;
                auto hits = (*c)->search(r, &ex);
                ASSERT_TRUE(hits) << hits.error().to_string();
                const auto want = brute_maxsim(st, qt, 10);
                if (kind == MultiVectorIndexKind::kExact || filtered) {
                    expect_same_ranking(*hits, want, 1e-5, stage + " query " + std::to_string(q));
                } else {
                    std::size_t overlap = 0;
                    for (const auto& h : *hits) {
                        for (const auto& w2 : want) overlap += w2.id == h.id ? 1 : 0;
                    }
                    EXPECT_GE(overlap, 8u) << stage << " query " << q;  // MUVERA recall@10 on 420 docs
                    EXPECT_NEAR((*hits)[0].score, want[0].score, 1e-4) << stage;
                }
                for (const auto& p : ex.plans) {
                    if (p.source == "memtable") continue;
                    EXPECT_TRUE(p.strategy == "maxsim_exact" || p.strategy == "muvera_blocks" || p.strategy == "muvera_rerank")
                        << p.strategy;
                }
            }
        };
        check("mixed");
        ASSERT_TRUE((*c)->flush());
        check("flushed");
        (*c)->close();
        c = Collection::open(dir.file("c"), o);
        ASSERT_TRUE(c) << c.error().to_string();
        check("reopened");
        ASSERT_TRUE((*c)->optimize());
        check("optimized");
        // get returns the token vectors as given
        auto d = (*c)->get("d7");
        ASSERT_TRUE(d);
        EXPECT_EQ(std::get<TokenVectors>(d->fields.at("colbert")), std::get<TokenVectors>(truth["d7"].fields.at("colbert")));
        // Unhappy requests.
        auto err = [&](QueryClause cl) {
            auto h = (*c)->search(one(std::move(cl), 5));
            EXPECT_FALSE(h);
            if (!h) {
                EXPECT_EQ(h.error().code(), ErrorCode::kInvalidArgument);
            }
        };
        TokenVectors wrong;
        wrong.dim = 4;
        wrong.values.assign(8, 1.0f);
        err(QueryClause::of_tokens("colbert", wrong));
        err(QueryClause::of_text("colbert", "no encoder"));
        err(QueryClause::of_vector("colbert", std::vector<float>(8, 1.0f)));
        TokenVectors nan = tokens(2);
        nan.values[3] = std::nanf("");
        err(QueryClause::of_tokens("colbert", nan));
        Document bad;
        bad.id = "bad";
        bad.fields["colbert"] = wrong;
        EXPECT_EQ((*c)->upsert({bad}).error().code(), ErrorCode::kInvalidArgument);
        bad.fields["colbert"] = TokenVectors{8, {}};
        EXPECT_EQ((*c)->upsert({bad}).error().code(), ErrorCode::kInvalidArgument);
        bad.fields["colbert"] = std::string("text without an encoder");
        EXPECT_EQ((*c)->upsert({bad}).error().code(), ErrorCode::kInvalidArgument);
    }
}

// The fixture encoders end to end: text in documents and queries, every field and fused queries equal
// brute force over the encoder outputs, through memtable, segments, persistence and reopen.
TEST(MultiVectorFields, FixtureEncodersEndToEnd) {
    Encoders enc;
    const Corpus corpus = synthetic_corpus(240, 6, 11);
    testing::TempDir dir;
    CollectionOptions o = manual();
    auto c = Collection::create(dir.file("c"), encoder_schema(MultiVectorIndexKind::kExact), o);
    ASSERT_TRUE(c) << c.error().to_string();
    // Batches of 100 (their own segments), then single documents (memtable).
    Corpus head = corpus;
    head.ids.resize(200);
    head.titles.resize(200);
    head.texts.resize(200);
    ingest(**c, head, 100);
    for (std::size_t i = 200; i < corpus.ids.size(); ++i) ASSERT_TRUE((*c)->upsert({corpus_doc(corpus, i)}));
    EXPECT_GE((*c)->stats().segments, 2u);
    // The stored fields are the encoders' document outputs.
    for (std::size_t i = 0; i < corpus.ids.size(); i += 37) {
        auto d = (*c)->get(corpus.ids[i]);
        ASSERT_TRUE(d);
        const std::string text = corpus.titles[i] + " " + corpus.texts[i];
        const TokenVectors want = enc.tokens(text, encode::EncodeRole::kDocument);
        const auto& got = std::get<TokenVectors>(d->fields.at("colbert"));
        ASSERT_EQ(got.dim, 16u);
        ASSERT_EQ(got.rows(), want.rows());
        for (std::size_t j = 0; j < want.values.size(); ++j) EXPECT_NEAR(got.values[j], want.values[j], 1e-4);
        const SparseTerms sw = enc.sparse(text, encode::EncodeRole::kDocument);
        const auto& sg = std::get<SparseTerms>(d->fields.at("splade"));
        ASSERT_EQ(sg.size(), sw.size());
        for (std::size_t j = 0; j < sw.size(); ++j) {
            EXPECT_EQ(sg[j].first, sw[j].first);
            EXPECT_NEAR(sg[j].second, sw[j].second, 1e-4);
        }
    }
    EXPECT_EQ(check_fields(**c, enc, corpus.ids, corpus.queries, true, "mixed"), 1.0);
    ASSERT_TRUE((*c)->remove({"d1", "d150", "d210"}));
    ASSERT_TRUE((*c)->flush());
    check_fields(**c, enc, corpus.ids, corpus.queries, true, "flushed");
    (*c)->close();
    c = Collection::open(dir.file("c"), o);
    ASSERT_TRUE(c) << c.error().to_string();
    check_fields(**c, enc, corpus.ids, corpus.queries, true, "reopened");
    // Patching a source re-encodes every field that follows it.
    Document p;
    p.id = "d5";
    p.fields["text"] = std::string("protein cell gene cancer");
    ASSERT_TRUE((*c)->patch({p}));
    auto d5 = (*c)->get("d5");
    ASSERT_TRUE(d5);
    const TokenVectors want = enc.tokens(corpus.titles[5] + " protein cell gene cancer", encode::EncodeRole::kDocument);
    EXPECT_EQ(std::get<TokenVectors>(d5->fields.at("colbert")).rows(), want.rows());
    check_fields(**c, enc, corpus.ids, corpus.queries, true, "patched");
}

// SciFact through the three fixture encoders (a few hundred documents in the suite; set
// QUIVER_MVFIELDS_DOCS=0 for the whole corpus): each field and fused queries against brute force,
// the multi-vector field through MUVERA after optimize.
TEST(MultiVectorFields, SciFactDenseSparseMultiVector) {
    QUIVER_REQUIRE_DATA(data, "scifact");
    auto ds = eval::load_dataset(data);
    ASSERT_TRUE(ds) << ds.error().to_string();
    std::size_t n = 300;
    if (const char* env = std::getenv("QUIVER_MVFIELDS_DOCS")) n = static_cast<std::size_t>(std::atol(env));
    if (n == 0 || n > ds->documents.size()) n = ds->documents.size();
    Corpus corpus;
    for (std::size_t i = 0; i < n; ++i) {
        corpus.ids.push_back(ds->documents[i].id);
        corpus.titles.push_back(ds->documents[i].title);
        corpus.texts.push_back(ds->documents[i].text);
    }
    for (std::size_t q = 0; q < ds->queries.size() && corpus.queries.size() < 12; q += 25) {
        corpus.queries.push_back(ds->queries[q].text);
    }
    Encoders enc;
    testing::TempDir dir;
    CollectionOptions o = manual();
    auto c = Collection::create(dir.file("scifact"), encoder_schema(MultiVectorIndexKind::kMuvera), o);
    ASSERT_TRUE(c) << c.error().to_string();
    const auto t0 = std::chrono::steady_clock::now();
    ingest(**c, corpus, 100);
    ASSERT_TRUE((*c)->flush());
    const double ingest_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ((*c)->stats().documents, n);
    check_fields(**c, enc, corpus.ids, corpus.queries, false, "scifact segments");
    ASSERT_TRUE((*c)->optimize());
    const double recall = check_fields(**c, enc, corpus.ids, corpus.queries, false, "scifact optimized");
    std::printf("[ measure ] SciFact %zu docs (dense + SPLADE + ColBERT fixtures): ingest + flush %.1f s (provisional); "
                "MUVERA recall@10 vs exact MaxSim %.3f over %zu queries\n",
                n, ingest_s, recall, corpus.queries.size());
    EXPECT_GE(recall, 0.9);
    (*c)->close();
    c = Collection::open(dir.file("scifact"), o);
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ((*c)->stats().documents, n);
    EXPECT_EQ(check_fields(**c, enc, corpus.ids, corpus.queries, false, "scifact reopened"), recall);
}

// Damage to the multi-vector files of a persisted segment (the MVIX token store and its MUVERA graph)
// fails open with kDataLoss naming the file. Both FDE layouts: blocked FDEs inside the MVIX file (the
// default) and the HNSW graph beside it (fields stored before blocked FDEs).
TEST(MultiVectorFields, CorruptMultiVectorFilesAreDataLoss) {
    for (const bool legacy : {false, true}) {
        SCOPED_TRACE(legacy ? "hnsw FDEs" : "blocked FDEs");
        testing::TempDir dir;
        const std::string path = dir.file("c");
        const Corpus corpus = synthetic_corpus(60, 0, 3);
        {
            Schema schema = encoder_schema(MultiVectorIndexKind::kMuvera);
            if (legacy) schema.fields[5].muvera = MuveraFieldParams::legacy();
            auto c = Collection::create(path, schema, manual());
            ASSERT_TRUE(c) << c.error().to_string();
            ingest(**c, corpus, 60);
            ASSERT_TRUE((*c)->flush());
        }
        std::string seg;
        for (const auto& e : std::filesystem::directory_iterator(path)) {
            if (e.path().filename().string().rfind("seg_", 0) == 0) seg = e.path().string();
        }
        ASSERT_FALSE(seg.empty());
        ASSERT_TRUE(std::filesystem::exists(seg + "/mv_colbert.mvix"));
        ASSERT_EQ(std::filesystem::exists(seg + "/mv_colbert.mvix.fde"), legacy);
        {
            auto ok = Collection::open(path, manual());
            ASSERT_TRUE(ok) << ok.error().to_string();
        }
        const std::string seg_name = std::filesystem::path(seg).filename().string();
        std::vector<std::string> files = {"mv_colbert.mvix", "docs.qvr"};
        if (legacy) files.push_back("mv_colbert.mvix.fde");
        for (const std::string& file : files) {
            const auto size = std::filesystem::file_size(seg + "/" + file);
            for (const std::string how : {"flip", "truncate", "remove"}) {
                const std::string copy = dir.file("copy_" + file + "_" + how);
                std::filesystem::copy(path, copy, std::filesystem::copy_options::recursive);
                const std::string target = copy + "/" + seg_name + "/" + file;
                if (how == "flip") {
                    std::fstream f(target, std::ios::in | std::ios::out | std::ios::binary);
                    f.seekg(static_cast<std::streamoff>(size / 2));
                    char b = 0;
                    f.read(&b, 1);
                    b = static_cast<char>(b ^ 0x5a);
                    f.seekp(static_cast<std::streamoff>(size / 2));
                    f.write(&b, 1);
                } else if (how == "truncate") {
                    std::filesystem::resize_file(target, size - 9);
                } else {
                    std::filesystem::remove(target);
                }
                auto c = Collection::open(copy, manual());
                ASSERT_FALSE(c) << file << " " << how;
                EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss) << file << " " << how << ": " << c.error().to_string();
            }
        }
    }
}

// Crash safety with encoders: a child upserts (text encoded at upsert) and deletes, flushing and
// optimising now and then; SIGKILL at random moments; every acknowledged write is there after reopen,
// with the token vectors and term weights its text encodes to, and searchable by them.
// QUIVER_CRASH_ROUNDS sets the rounds (6 here; scripts/crash-test runs more of the main crash test).
constexpr int kCrashIds = 200;

CollectionOptions crash_options() {
    CollectionOptions o;
    o.flush_docs = 120;
    o.max_segments = 3;
    o.build_threads = 1;
    return o;
}

std::string crash_text(std::uint64_t id, std::int64_t version) {
    return "protein " + std::string(kWords[id % kWordCount]) + " cell " + std::string(kWords[(id / 7) % kWordCount]) +
           " gene v" + std::to_string(version);
}

void log_line(int fd, const std::string& line) {
    const std::string l = line + "\n";
    if (::write(fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) _exit(3);
}

[[noreturn]] void crash_child(const std::string& dir, const std::string& log_path, std::uint64_t seed,
                              std::int64_t first_version) {
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) _exit(2);
    auto c = Collection::open(dir, crash_options());
    if (!c) _exit(4);
    std::mt19937_64 rng(seed);
    std::int64_t version = first_version;
    for (std::uint64_t op = 0;; ++op) {
        std::ostringstream intent;
        const std::uint64_t dice = rng() % 30;
        if (dice == 0 || dice == 1) {
            log_line(fd, "B " + std::to_string(op) + " M");
            if (!(dice == 0 ? (*c)->flush() : (*c)->optimize())) _exit(7);
        } else if (dice % 4 != 0) {
            std::vector<Document> docs;
            intent << "B " << op << " U";
            for (int i = 0; i < 10; ++i) {
                const std::uint64_t id = rng() % kCrashIds;
                ++version;
                Document d;
                d.id = "d" + std::to_string(id);
                d.fields["title"] = std::string("v") + std::to_string(version);
                d.fields["text"] = crash_text(id, version);
                docs.push_back(std::move(d));
                intent << " " << id << ":" << version;
            }
            log_line(fd, intent.str());
            if (!(*c)->upsert(std::move(docs))) _exit(5);
        } else {
            std::vector<std::string> ids;
            intent << "B " << op << " D";
            for (int i = 0; i < 5; ++i) {
                const std::uint64_t id = rng() % kCrashIds;
                ids.push_back("d" + std::to_string(id));
                intent << " " << id;
            }
            log_line(fd, intent.str());
            if (!(*c)->remove(ids)) _exit(6);
        }
        log_line(fd, "A " + std::to_string(op));
    }
}

void apply_line(const std::string& line, std::map<std::uint64_t, std::optional<std::int64_t>>& into) {
    std::istringstream in(line);
    std::string b, kind;
    std::uint64_t op;
    in >> b >> op >> kind;
    std::string tok;
    while (in >> tok) {
        if (kind == "U") {
            const auto colon = tok.find(':');
            into[std::stoull(tok.substr(0, colon))] = std::stoll(tok.substr(colon + 1));
        } else if (kind == "D") {
            into[std::stoull(tok)] = std::nullopt;
        }
    }
}

TEST(MultiVectorFields, AcknowledgedWritesSurviveSigkill) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    {
        auto c = Collection::create(path, encoder_schema(MultiVectorIndexKind::kMuvera), crash_options());
        ASSERT_TRUE(c) << c.error().to_string();
    }
    Encoders enc;
    std::map<std::uint64_t, std::optional<std::int64_t>> state, alternative;
    std::mt19937_64 rng(20261129);
    const char* env_rounds = std::getenv("QUIVER_CRASH_ROUNDS");
    const int rounds = env_rounds != nullptr ? std::atoi(env_rounds) : 6;
    std::size_t acked = 0, checked = 0, interrupted = 0;
    for (int round = 0; round < rounds; ++round) {
        const std::string log_path = dir.file("ops_" + std::to_string(round) + ".log");
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) crash_child(path, log_path, rng(), static_cast<std::int64_t>(round + 1) * 10000000);
        std::this_thread::sleep_for(std::chrono::milliseconds(400 + rng() % 800));
        ASSERT_EQ(::kill(pid, SIGKILL), 0);
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited early with status " << WEXITSTATUS(status);
        {
            std::ifstream in(log_path);
            std::string line, pending;
            while (std::getline(in, line)) {
                if (line.rfind("B ", 0) == 0) {
                    pending = line;
                } else if (line.rfind("A ", 0) == 0 && !pending.empty()) {
                    apply_line(pending, state);
                    pending.clear();
                    ++acked;
                }
            }
            alternative.clear();
            if (!pending.empty()) apply_line(pending, alternative);
            interrupted += pending.empty() ? 0 : 1;
        }
        auto c = Collection::open(path, crash_options());
        ASSERT_TRUE(c) << "round " << round << ": " << c.error().to_string();
        std::size_t live = 0;
        for (std::uint64_t id = 0; id < kCrashIds; ++id) {
            const std::string sid = "d" + std::to_string(id);
            const auto doc = (*c)->get(sid);
            std::optional<std::int64_t> have;
            if (doc) {
                have = std::stoll(std::get<std::string>(doc->fields.at("title")).substr(1));
                ASSERT_EQ(std::get<std::string>(doc->fields.at("text")), crash_text(id, *have)) << sid;
            } else {
                ASSERT_EQ(doc.error().code(), ErrorCode::kNotFound);
            }
            const auto it = state.find(id);
            const std::int64_t want = it == state.end() ? -1 : it->second.value_or(-1);
            const std::int64_t got = have.value_or(-1);
            if (got != want) {
                const auto alt = alternative.find(id);
                ASSERT_TRUE(alt != alternative.end() && alt->second.value_or(-1) == got)
                    << "round " << round << " " << sid << ": have " << got << ", acknowledged " << want;
            }
            state[id] = have;
            if (!have) continue;
            ++live;
            if (id % 9 != 0) continue;
            // The stored encodings are the text's, and the document answers its own tokens and terms.
            ++checked;
            const std::string text = "v" + std::to_string(*have) + " " + crash_text(id, *have);
            const TokenVectors want_tokens = enc.tokens(text, encode::EncodeRole::kDocument);
            const auto& tv = std::get<TokenVectors>(doc->fields.at("colbert"));
            ASSERT_EQ(tv.rows(), want_tokens.rows()) << sid;
            for (std::size_t j = 0; j < tv.values.size(); ++j) ASSERT_NEAR(tv.values[j], want_tokens.values[j], 1e-4) << sid;
            auto hits = (*c)->search(one(QueryClause::of_tokens("colbert", tv), 10));
            ASSERT_TRUE(hits) << hits.error().to_string();
            const float self = multivector::maxsim({tv.values.data(), tv.rows(), tv.dim}, tv.values.data(), tv.rows());
            bool seen = false;
            for (const auto& h : *hits) {
                if (h.id != sid) continue;
                seen = true;
                EXPECT_EQ(h.score, static_cast<double>(self)) << sid;
            }
            EXPECT_TRUE(seen) << sid;
            auto sp = (*c)->search(one(QueryClause::of_sparse("splade", std::get<SparseTerms>(doc->fields.at("splade"))), 200));
            ASSERT_TRUE(sp);
            bool found = false;
            for (const auto& h : *sp) found = found || h.id == sid;
            EXPECT_TRUE(found) << sid;
        }
        EXPECT_EQ((*c)->stats().documents, live) << "round " << round;
    }
    std::printf("[ measure ] %d SIGKILL rounds with SPLADE + ColBERT + dense encoders: %zu acknowledged ops, %zu "
                "encoding checks, %zu rounds killed inside an op; 0 acknowledged writes lost\n",
                rounds, acked, checked, interrupted);
    EXPECT_GT(acked, static_cast<std::size_t>(rounds));
}

}  // namespace
}  // namespace quiver::engine
