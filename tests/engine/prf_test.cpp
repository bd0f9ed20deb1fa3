// Collection search with pseudo-relevance feedback (QueryClause::prf) and a calibrated cut-off
// (SearchRequest::cutoff): RM3 and lexical Rocchio equal the `quiver eval --prf` path (one Bm25Index
// over the live documents, pipeline/prf.h) on a segmented collection; vector Rocchio equals a brute-force
// reference; the cut-off keeps exactly the hits whose calibrated probability reaches the threshold.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "quiver/engine/collection.h"
#include "quiver/pipeline/calibration.h"
#include "quiver/pipeline/prf.h"
#include "quiver/sparse/bm25_index.h"
#include "quiver/text/analyzer.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

CollectionOptions manual() {
    CollectionOptions o;
    o.background_merge = false;
    return o;
}

// title + text indexed together as "contents" (as `quiver ingest` lays out BEIR, TREC and SMART).
Schema contents_schema() {
    Schema s;
    FieldSpec title, text, contents;
    title.name = "title";
    title.indexed = false;
    text.name = "text";
    text.indexed = false;
    contents.name = "contents";
    contents.sources = {"title", "text"};
    FieldSpec sp;
    sp.name = "sp";
    sp.type = FieldType::kSparse;
    FieldSpec vec;
    vec.name = "vec";
    vec.type = FieldType::kVector;
    vec.dim = 6;
    vec.metric = simd::Metric::kCosine;
    vec.index = VectorIndexKind::kFlat;
    s.fields = {title, text, contents, sp, vec};
    return s;
}

// Zipf-like words (some in more than 10% of the documents, which Anserini's filter drops), a few with
// digits or one letter or upper case (dropped or lowered by the analyzer), lengths varying by document.
std::string words(std::mt19937& rng, std::size_t n) {
    static const std::vector<std::string> vocab = [] {
        std::vector<std::string> v;
        for (int i = 0; i < 300; ++i) {
            std::string w;
            for (int x = i + 27; x > 0; x /= 26) w += static_cast<char>('a' + x % 26);
            v.push_back(w + (i % 37 == 0 ? "9" : i % 53 == 0 ? "-x" : ""));
        }
        v.push_back("x");
        return v;
    }();
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
        const auto k = static_cast<std::size_t>(std::pow(u, 2.5) * static_cast<double>(vocab.size() - 1));
        out += vocab[k] + " ";
    }
    return out;
}

struct Corpus {
    std::vector<Document> docs;  // ids d000.. in order, so doc-number ties break like id ties
};

Corpus make_corpus(std::size_t n, std::uint64_t seed) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed));
    Corpus c;
    for (std::size_t i = 0; i < n; ++i) {
        Document d;
        char id[16];
        std::snprintf(id, sizeof id, "d%03zu", i);
        d.id = id;
        d.fields["title"] = words(rng, 2 + rng() % 4);
        d.fields["text"] = words(rng, 10 + rng() % (20 + 40 * (i % 3)));
        std::vector<float> v(6);
        for (float& x : v) x = std::normal_distribution<float>(0.0f, 1.0f)(rng);
        d.fields["vec"] = v;
        d.fields["sp"] = SparseTerms{{"a", 1.0f}};
        c.docs.push_back(std::move(d));
    }
    return c;
}

// Upserted as two segments and a memtable, so statistics must be collection-wide.
std::shared_ptr<Collection> segmented(const std::string& dir, const Corpus& corpus) {
    auto c = Collection::create(dir, contents_schema(), manual());
    EXPECT_TRUE(c) << c.error().to_string();
    const std::size_t n = corpus.docs.size();
    std::vector<Document> a(corpus.docs.begin(), corpus.docs.begin() + n / 2);
    std::vector<Document> b(corpus.docs.begin() + n / 2, corpus.docs.end() - 30);
    EXPECT_TRUE((*c)->upsert(a));
    EXPECT_TRUE((*c)->flush());
    EXPECT_TRUE((*c)->upsert(b));
    for (std::size_t i = n - 30; i < n; i += 10) {
        EXPECT_TRUE((*c)->upsert(std::vector<Document>(corpus.docs.begin() + static_cast<std::ptrdiff_t>(i),
                                                       corpus.docs.begin() + static_cast<std::ptrdiff_t>(i + 10))));
    }
    EXPECT_GE((*c)->stats().segments, 2u);
    return *c;
}

const std::string& text_of(const Document& d, const char* f) { return std::get<std::string>(d.fields.at(f)); }

// What `quiver eval --retriever bm25 --prf SPEC` computes for one query (cli/eval_bm25.cpp).
std::vector<sparse::Bm25Hit> eval_prf_search(const sparse::Bm25Index& index, const Corpus& corpus,
                                             const std::string& query, const pipeline::PrfSpec& spec, std::size_t k) {
    auto analyzer = text::Analyzer::create(index.analyzer_config());
    EXPECT_TRUE(analyzer);
    const std::vector<std::string> query_tokens = analyzer->analyze(query);
    const auto first = index.search_terms(query_tokens, std::max(k, spec.fb_docs));
    const std::size_t n = std::min(first.size(), spec.fb_docs);
    std::vector<std::vector<std::string>> tokens(n);
    std::vector<pipeline::FeedbackDoc> fb(n);
    for (std::size_t i = 0; i < n; ++i) {
        const Document& d = corpus.docs[first[i].doc];
        sparse::Bm25Index::document_tokens(*analyzer, text_of(d, "title"), text_of(d, "text"), tokens[i]);
        fb[i] = {tokens[i], first[i].score};
    }
    const auto keep = [&](std::string_view t) {
        return pipeline::anserini_feedback_term(t, index.doc_freq(index.find_term(t)), index.num_docs());
    };
    const auto expanded = pipeline::expand_query(query_tokens, fb, spec, keep);
    std::vector<std::string> terms;
    for (const auto& t : expanded) terms.push_back(t.term);
    sparse::Bm25QueryStats stats = index.query_stats(terms);
    for (std::size_t j = 0; j < stats.terms.size(); ++j) {
        for (const auto& t : expanded) {
            if (t.term == stats.terms[j]) stats.boosts[j] = static_cast<float>(t.weight);
        }
    }
    return index.search_with_stats(stats, k);
}

TEST(CollectionPrf, TextFeedbackEqualsTheEvalPath) {
    testing::TempDir dir;
    const Corpus corpus = make_corpus(400, 7);
    auto c = segmented(dir.file("c"), corpus);
    std::vector<sparse::Bm25Document> views;
    for (const Document& d : corpus.docs) views.push_back({d.id, text_of(d, "title"), text_of(d, "text")});
    sparse::Bm25Index::BuildOptions bo;
    bo.threads = 1;
    auto index = sparse::Bm25Index::build(views, bo);
    ASSERT_TRUE(index);
    std::mt19937 rng(99);
    std::size_t expanded_differs = 0;
    for (const char* spec_text : {"rm3:fb_docs=10,fb_terms=10,weight=0.5", "rm3:fb_docs=3,fb_terms=25,weight=0.2",
                                  "rocchio:fb_docs=5,fb_terms=15,alpha=1,beta=0.75"}) {
        auto spec = pipeline::parse_prf(spec_text);
        ASSERT_TRUE(spec);
        for (int qi = 0; qi < 25; ++qi) {
            const std::string query = words(rng, 2 + qi % 4);
            constexpr std::size_t kK = 30;
            const auto want = eval_prf_search(*index, corpus, query, *spec, kK);
            SearchRequest r;
            r.clauses.push_back(QueryClause::of_text("contents", query));
            r.clauses.back().prf = *spec;
            r.k = kK;
            r.return_fields = std::vector<std::string>{};
            auto got = c->search(r);
            ASSERT_TRUE(got) << got.error().to_string();
            ASSERT_EQ(got->size(), want.size()) << spec_text << " '" << query << "'";
            for (std::size_t i = 0; i < want.size(); ++i) {
                EXPECT_EQ((*got)[i].id, std::string(index->doc_id(want[i].doc))) << spec_text << " '" << query << "' rank " << i;
                EXPECT_NEAR((*got)[i].score, want[i].score, 1e-5 * std::max(1.0, std::abs(static_cast<double>(want[i].score))));
            }
            // The feedback changed the ranking (not a no-op).
            r.clauses.back().prf.reset();
            auto plain = c->search(r);
            ASSERT_TRUE(plain);
            bool same = plain->size() == got->size();
            for (std::size_t i = 0; same && i < got->size(); ++i) same = (*plain)[i].id == (*got)[i].id;
            expanded_differs += same ? 0 : 1;
        }
    }
    EXPECT_GT(expanded_differs, 40u);
}

TEST(CollectionPrf, FeedbackStaysInsideTheFilter) {
    testing::TempDir dir;
    Corpus corpus = make_corpus(120, 3);
    Schema s = contents_schema();
    FieldSpec tag;
    tag.name = "tag";
    tag.type = FieldType::kKeyword;
    s.fields.push_back(tag);
    for (std::size_t i = 0; i < corpus.docs.size(); ++i) corpus.docs[i].fields["tag"] = std::string(i % 2 ? "odd" : "even");
    auto c = Collection::create(dir.file("c"), s, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    ASSERT_TRUE((*c)->upsert(corpus.docs));
    std::mt19937 rng(5);
    for (int qi = 0; qi < 10; ++qi) {
        SearchRequest r;
        r.clauses.push_back(QueryClause::of_text("contents", words(rng, 3)));
        r.clauses.back().prf = pipeline::PrfSpec{};
        r.k = 50;
        Filter f;
        f.field = "tag";
        f.values.emplace_back(std::string("odd"));
        r.filter = f;
        auto got = (*c)->search(r);
        ASSERT_TRUE(got) << got.error().to_string();
        for (const auto& h : *got) EXPECT_EQ(std::get<std::string>(h.document.fields.at("tag")), "odd");
    }
}

double cosine(std::span<const float> a, std::span<const float> b) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        ab += static_cast<double>(a[i]) * b[i];
        aa += static_cast<double>(a[i]) * a[i];
        bb += static_cast<double>(b[i]) * b[i];
    }
    return ab / std::sqrt(aa * bb);
}

// Indices of the top k of `docs` by cosine to q (ties by index).
std::vector<std::size_t> brute_top(const Corpus& corpus, std::span<const float> q, std::size_t k) {
    std::vector<std::size_t> order(corpus.docs.size());
    std::iota(order.begin(), order.end(), 0);
    std::vector<double> sim(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) sim[i] = cosine(q, std::get<std::vector<float>>(corpus.docs[i].fields.at("vec")));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return sim[a] > sim[b]; });
    order.resize(std::min(k, order.size()));
    return order;
}

TEST(CollectionPrf, VectorRocchioEqualsBruteForce) {
    testing::TempDir dir;
    const Corpus corpus = make_corpus(300, 11);
    auto c = segmented(dir.file("c"), corpus);
    std::mt19937 rng(4);
    std::size_t moved = 0;
    for (int qi = 0; qi < 20; ++qi) {
        std::vector<float> q(6);
        for (float& x : q) x = std::normal_distribution<float>(0.0f, 1.0f)(rng);
        pipeline::PrfSpec spec;
        spec.method = pipeline::PrfMethod::kRocchio;
        spec.fb_docs = 3 + qi % 5;
        spec.alpha = 0.9;
        spec.beta = qi % 2 ? 0.1 : 0.6;
        // Reference: the first round's top fb_docs, their mean, the moved query, a second exact ranking.
        const auto first = brute_top(corpus, q, spec.fb_docs);
        std::vector<double> mean(6, 0.0);
        for (std::size_t i : first) {
            const auto& v = std::get<std::vector<float>>(corpus.docs[i].fields.at("vec"));
            for (std::size_t j = 0; j < 6; ++j) mean[j] += v[j] / static_cast<double>(first.size());
        }
        std::vector<float> q2(6);
        for (std::size_t j = 0; j < 6; ++j) q2[j] = static_cast<float>(spec.alpha * q[j] + spec.beta * mean[j]);
        const auto want = brute_top(corpus, q2, 10);
        SearchRequest r;
        r.clauses.push_back(QueryClause::of_vector("vec", q));
        r.clauses.back().prf = spec;
        r.k = 10;
        r.return_fields = std::vector<std::string>{};
        auto got = c->search(r);
        ASSERT_TRUE(got) << got.error().to_string();
        ASSERT_EQ(got->size(), want.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            EXPECT_EQ((*got)[i].id, corpus.docs[want[i]].id) << "query " << qi << " rank " << i;
            EXPECT_NEAR((*got)[i].score, -(1.0 - cosine(q2, std::get<std::vector<float>>(corpus.docs[want[i]].fields.at("vec")))), 1e-5);
        }
        if (want != brute_top(corpus, q, 10)) ++moved;
    }
    EXPECT_GT(moved, 5u);  // the feedback moved the query
}

TEST(CollectionPrf, Refusals) {
    testing::TempDir dir;
    auto c = segmented(dir.file("c"), make_corpus(200, 2));
    auto fails = [&](SearchRequest r, const std::string& mentions) {
        auto got = c->search(r);
        ASSERT_FALSE(got) << mentions;
        EXPECT_EQ(got.error().code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(got.error().message().find(mentions), std::string::npos) << got.error().message();
    };
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_sparse("sp", SparseTerms{{"a", 1.0f}}));
    r.clauses.back().prf = pipeline::PrfSpec{};
    fails(r, "sparse");
    r.clauses = {QueryClause::of_vector("vec", std::vector<float>(6, 1.0f))};
    r.clauses.back().prf = pipeline::PrfSpec{};  // rm3
    fails(r, "rocchio");
    r.clauses = {QueryClause::of_text("contents", "abc")};
    pipeline::PrfSpec bad;
    bad.weight = 1.5;
    r.clauses.back().prf = bad;
    fails(r, "weight");
    bad = {};
    bad.fb_docs = 0;
    r.clauses.back().prf = bad;
    fails(r, "fb_docs");
    r.clauses.back().prf.reset();
    r.min_relevance = 0.5;
    fails(r, "min_relevance needs");
    r.cutoff = pipeline::CalibrationModel{};  // no weights
    fails(r, "6 numbers");
}

// A hand-made model: standardisation off, slope 1, bias b: P = sigmoid(s - s_1 + b).
pipeline::CalibrationModel hand_model(std::size_t depth, double b, double threshold) {
    pipeline::CalibrationModel m;
    m.depth = depth;
    m.feature_mean.assign(6, 0.0);
    m.feature_scale.assign(6, 1.0);
    m.wa.assign(6, 0.0);
    m.wb.assign(6, 0.0);
    m.wb[0] = b;
    m.threshold = threshold;
    return m;
}

TEST(CollectionCutoff, KeepsTheHitsWhoseCalibratedProbabilityReachesTheThreshold) {
    testing::TempDir dir;
    auto c = segmented(dir.file("c"), make_corpus(200, 5));
    std::mt19937 rng(8);
    std::size_t cut_somewhere = 0;
    for (int qi = 0; qi < 20; ++qi) {
        const std::string query = words(rng, 3);
        SearchRequest plain;
        plain.clauses.push_back(QueryClause::of_text("contents", query));
        plain.k = 40;
        plain.return_fields = std::vector<std::string>{};
        auto all = c->search(plain);
        ASSERT_TRUE(all);
        if (all->empty()) continue;
        const auto model = hand_model(25, 1.0, 0.5);
        SearchRequest r = plain;
        r.cutoff = model;
        auto got = c->search(r);
        ASSERT_TRUE(got) << got.error().to_string();
        std::vector<std::string> want;
        for (std::size_t i = 0; i < all->size() && i < 25; ++i) {
            const double p = 1.0 / (1.0 + std::exp(-((*all)[i].score - (*all)[0].score + 1.0)));
            if (p >= 0.5) want.push_back((*all)[i].id);
        }
        ASSERT_EQ(got->size(), want.size()) << query;
        for (std::size_t i = 0; i < want.size(); ++i) {
            EXPECT_EQ((*got)[i].id, want[i]);
            ASSERT_TRUE((*got)[i].relevance.has_value());
            EXPECT_NEAR(*(*got)[i].relevance, 1.0 / (1.0 + std::exp(-((*got)[i].score - (*all)[0].score + 1.0))), 1e-6);
            // (A retrieval at another depth may differ in the last bit of a BM25 sum.)
            EXPECT_NEAR((*got)[i].score, (*all)[i].score, 1e-6 * std::abs((*all)[i].score));
        }
        if (want.size() < std::min<std::size_t>(25, all->size())) ++cut_somewhere;
        // min_relevance 0 keeps the model's whole depth, never more.
        r.min_relevance = 0.0;
        got = c->search(r);
        ASSERT_TRUE(got);
        EXPECT_EQ(got->size(), std::min<std::size_t>(25, all->size()));
        // Pages tile the kept hits: offset, then search_after.
        r.min_relevance.reset();
        r.k = 2;
        r.offset = 1;
        got = c->search(r);
        ASSERT_TRUE(got);
        for (std::size_t i = 0; i < got->size(); ++i) EXPECT_EQ((*got)[i].id, want[i + 1]);
        if (want.size() >= 3) {
            r.offset = 0;
            auto page1 = c->search(r);
            ASSERT_TRUE(page1);
            ASSERT_EQ(page1->size(), 2u);
            r.search_after = SearchAfter{page1->back().score, page1->back().id};
            got = c->search(r);
            ASSERT_TRUE(got);
            ASSERT_GE(got->size(), 1u);
            EXPECT_EQ((*got)[0].id, want[2]);
        }
    }
    EXPECT_GT(cut_somewhere, 5u);
    // A cut-off needs a scored query.
    SearchRequest none;
    none.cutoff = hand_model(10, 0.0, 0.5);
    EXPECT_FALSE(c->search(none));
}

}  // namespace
}  // namespace quiver::engine
