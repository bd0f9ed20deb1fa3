#include "quiver/sparse/bm25_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>

#include "quiver/eval/dataset.h"
#include "quiver/eval/metrics.h"
#include "quiver/storage/file_format.h"
#include "testing/testing.h"

namespace quiver::sparse {
namespace {

Result<Bm25Index> tiny_index(Bm25Params params = {}) {
    static const Bm25Document docs[] = {
        {"d1", "", "apple banana"},
        {"d2", "Apples", "apple cherry"},
        {"d3", "", "banana"},
        {"d4", "", "the of and"},  // only stop words: no tokens
    };
    Bm25Index::BuildOptions o;
    o.params = params;
    o.threads = 2;
    return Bm25Index::build(docs, o);
}

double lucene_bm25(double tf, double dl, double avgdl, double n, double df, double k1, double b) {
    const double idf = std::log(1.0 + (n - df + 0.5) / (df + 0.5));
    return idf * tf / (tf + k1 * (1.0 - b + b * dl / avgdl));
}

// 300 deterministic documents: common words give lists with full 128-posting blocks and tails.
Result<Bm25Index> golden_corpus_index() {
    static const std::vector<std::string> texts = [] {
        std::vector<std::string> t;
        for (int i = 0; i < 300; ++i) {
            t.push_back("alpha" + std::string(i % 2 == 0 ? " beta" : "") + (i % 3 == 0 ? " gamma gamma" : "") +
                        " word" + std::to_string(i % 17) + " item" + std::to_string(i) + (i % 5 == 0 ? " delta's" : ""));
        }
        return t;
    }();
    std::vector<Bm25Document> docs;
    static std::vector<std::string> ids;
    ids.clear();
    for (int i = 0; i < 300; ++i) ids.push_back("doc" + std::to_string(i));
    for (int i = 0; i < 300; ++i) docs.push_back({ids[static_cast<std::size_t>(i)], "", texts[static_cast<std::size_t>(i)]});
    return Bm25Index::build(docs, {});
}

// Format compatibility: a file written by format version 1 must keep opening with the same results.
// Regenerate (only on a deliberate format change, with a version bump) with QUIVER_WRITE_GOLDEN=1.
TEST(Bm25Index, OpensGoldenFormatV1) {
    const std::string path = std::string(QUIVER_SOURCE_DIR) + "/tests/data/sparse/bm25_v1.bm25";
    auto fresh = golden_corpus_index();
    ASSERT_TRUE(fresh.ok());
    if (std::getenv("QUIVER_WRITE_GOLDEN") != nullptr) ASSERT_TRUE(fresh->save(path).ok());
    auto golden = Bm25Index::open(path);
    ASSERT_TRUE(golden.ok()) << golden.error().to_string();
    EXPECT_EQ(golden->num_docs(), 300u);
    for (const char* q : {"alpha", "beta gamma", "word3 item7", "delta", "gamma alpha word16"}) {
        auto a = Bm25Searcher::create(*fresh);
        auto b = Bm25Searcher::create(*golden);
        const auto ha = a->search(q, 50);
        const auto hb = b->search(q, 50);
        ASSERT_EQ(ha.size(), hb.size()) << q;
        for (std::size_t i = 0; i < ha.size(); ++i) {
            EXPECT_EQ(fresh->doc_id(ha[i].doc), golden->doc_id(hb[i].doc)) << q;
            EXPECT_FLOAT_EQ(ha[i].score, hb[i].score) << q;
        }
    }
}

// Bytes changed behind a valid checksum (a buggy or malicious writer) must be rejected or yield a
// usable index, never a crash: this exercises the structural validation, not the CRC.
TEST(Bm25Index, StructuralValidationBehindValidChecksum) {
    auto index = golden_corpus_index();
    ASSERT_TRUE(index.ok());
    testing::TempDir dir;
    const std::string path = dir.file("s.bm25");
    ASSERT_TRUE(index->save(path).ok());
    const std::string bytes = testing::read_bytes(path);
    const std::size_t payload_end = bytes.size() - storage::kFooterBytes;
    std::size_t rejected = 0;
    std::size_t opened = 0;
    const std::uint8_t flips[] = {0x01, 0x80, 0xFF, 0x10};
    for (std::size_t pos = storage::kHeaderBytes, n = 0; pos < payload_end; pos += 23, ++n) {
        {
            const std::uint8_t x = flips[n % 4];
            std::string bad = bytes;
            bad[pos] = static_cast<char>(static_cast<std::uint8_t>(bad[pos]) ^ x);
            const std::uint32_t crc = storage::crc32(0, bad.data(), payload_end);
            std::memcpy(bad.data() + payload_end + 8, &crc, sizeof(crc));
            testing::write_bytes(path, bad);
            auto r = Bm25Index::open(path);
            if (!r.ok()) {
                EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << r.error().to_string();
                ++rejected;
                continue;
            }
            ++opened;
            auto s = Bm25Searcher::create(*r);
            ASSERT_TRUE(s.ok());
            for (const char* q : {"alpha beta gamma", "delta word3 item12"}) {
                for (const auto& h : s->search(q, 20)) EXPECT_LT(h.doc, r->num_docs());
            }
        }
    }
    EXPECT_GT(rejected, 0u);
    EXPECT_GT(opened, 0u);  // e.g. a changed norm or id byte is not detectable, and harmless
}

TEST(Bm25Norms, LuceneSmallFloatEncoding) {
    for (std::uint32_t i = 0; i < 40; ++i) EXPECT_EQ(decode_norm(encode_norm(i)), i) << i;
    EXPECT_EQ(decode_norm(encode_norm(41)), 40u);
    EXPECT_EQ(encode_norm(0x7FFFFFFF), 255);
    std::uint32_t prev = 0;
    for (int b = 0; b < 256; ++b) {
        const std::uint32_t len = decode_norm(static_cast<std::uint8_t>(b));
        EXPECT_EQ(encode_norm(len), b);  // every byte decodes to a length that encodes back
        if (b > 0) {
            EXPECT_GT(len, prev);
        }
        prev = len;
    }
    for (std::uint32_t x : {100u, 1000u, 123456u}) {
        EXPECT_LE(decode_norm(encode_norm(x)), x);
        EXPECT_GT(static_cast<double>(decode_norm(encode_norm(x))), x * 0.87);
    }
}

TEST(Bm25Index, ScoresFollowLuceneFormula) {
    auto index = tiny_index();
    ASSERT_TRUE(index.ok()) << index.error().to_string();
    EXPECT_EQ(index->num_docs(), 4u);
    // Tokens: d1 {appl, banana}, d2 {appl, appl, cherri}, d3 {banana}; N = 3 docs with tokens.
    EXPECT_DOUBLE_EQ(index->average_length(), 2.0);
    const std::vector<std::string> q = {"appl"};
    const auto hits = index->search_terms(q, 10);
    ASSERT_EQ(hits.size(), 2u);
    EXPECT_EQ(index->doc_id(hits[0].doc), "d2");
    EXPECT_NEAR(hits[0].score, lucene_bm25(2, 3, 2, 3, 2, 0.9, 0.4), 1e-5);
    EXPECT_NEAR(hits[1].score, lucene_bm25(1, 2, 2, 3, 2, 0.9, 0.4), 1e-5);
    // A repeated query term doubles its weight (Anserini's bag-of-words boost).
    const std::vector<std::string> q2 = {"appl", "appl", "unknown"};
    const auto hits2 = index->search_terms(q2, 10);
    ASSERT_EQ(hits2.size(), 2u);
    EXPECT_NEAR(hits2[0].score, 2 * hits[0].score, 1e-5);

    auto searcher = Bm25Searcher::create(*index);
    ASSERT_TRUE(searcher.ok());
    EXPECT_EQ(searcher->search("APPLES!", 1).size(), 1u);
    EXPECT_TRUE(searcher->search("", 10).empty());
    EXPECT_TRUE(searcher->search("the of", 10).empty());

    ASSERT_TRUE(index->set_params({1.2f, 0.75f}).ok());
    const auto hits3 = index->search_terms(q, 10);
    EXPECT_NEAR(hits3[0].score, lucene_bm25(2, 3, 2, 3, 2, 1.2, 0.75), 1e-5);
    EXPECT_FALSE(index->set_params({0.9f, 1.5f}).ok());
}

TEST(Bm25Index, RejectsBadDocuments) {
    const Bm25Document dup[] = {{"a", "", "x"}, {"a", "", "y"}};
    auto r = Bm25Index::build(dup, {});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("duplicate"), std::string::npos);
    const Bm25Document empty_id[] = {{"", "", "x"}};
    EXPECT_FALSE(Bm25Index::build(empty_id, {}).ok());
    auto empty = Bm25Index::build({}, {});
    ASSERT_TRUE(empty.ok());
    EXPECT_TRUE(empty->search_terms(std::vector<std::string>{"x"}, 5).empty());
}

TEST(Bm25Index, SaveOpenRoundTripAndCorruption) {
    auto index = tiny_index();
    ASSERT_TRUE(index.ok());
    testing::TempDir dir;
    const std::string path = dir.file("i.bm25");
    ASSERT_TRUE(index->save(path).ok());
    auto back = Bm25Index::open(path);
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(back->num_docs(), index->num_docs());
    EXPECT_EQ(back->num_terms(), index->num_terms());
    EXPECT_EQ(back->analyzer_config().describe(), "lucene-english");
    for (const char* t : {"appl", "banana", "cherri"}) {
        const std::vector<std::string> q = {t};
        const auto a = index->search_terms(q, 10);
        const auto b = back->search_terms(q, 10);
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            EXPECT_EQ(index->doc_id(a[i].doc), back->doc_id(b[i].doc));
            EXPECT_FLOAT_EQ(a[i].score, b[i].score);
        }
    }
    auto missing = Bm25Index::open(dir.file("nope.bm25"));
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);

    const std::string bytes = testing::read_bytes(path);
    for (std::size_t pos = 0; pos < bytes.size(); pos += 7) {
        std::string bad = bytes;
        bad[pos] = static_cast<char>(bad[pos] ^ 0x21);
        testing::write_bytes(path, bad);
        EXPECT_FALSE(Bm25Index::open(path).ok()) << "flipped byte " << pos;
    }
    testing::write_bytes(path, bytes.substr(0, bytes.size() / 2));
    EXPECT_FALSE(Bm25Index::open(path).ok());
    testing::write_bytes(path, "");
    EXPECT_FALSE(Bm25Index::open(path).ok());
}

TEST(Bm25Index, SciFactMatchesPyserini) {
    QUIVER_REQUIRE_DATA(dir, "scifact");
    auto ds = eval::load_dataset(dir);
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    std::vector<Bm25Document> docs;
    for (const auto& d : ds->documents) docs.push_back({d.id, d.title, d.text});
    auto index = Bm25Index::build(docs, {});
    ASSERT_TRUE(index.ok());
    auto searcher = Bm25Searcher::create(*index);
    ASSERT_TRUE(searcher.ok());
    auto analyzer = text::Analyzer::create(index->analyzer_config());
    ASSERT_TRUE(analyzer.ok());
    eval::Run run;
    for (const auto& q : ds->queries) {
        auto& list = run[q.id];
        for (const auto& h : searcher->search(q.text, 100)) {
            list.push_back({std::string(index->doc_id(h.doc)), h.score});
        }
        // Pruned top-10 equals the exhaustive reference.
        const auto terms = analyzer->analyze(q.text);
        const auto fast = index->search_terms(terms, 10);
        const auto slow = index->search_terms_exhaustive(terms, 10);
        ASSERT_EQ(fast.size(), slow.size());
        for (std::size_t i = 0; i < fast.size(); ++i) EXPECT_NEAR(fast[i].score, slow[i].score, 1e-4);
    }
    auto metrics = eval::parse_metrics("ndcg@10,recall@100");
    auto rep = eval::evaluate(ds->qrels, run, *metrics);
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->queries_evaluated, 300u);
    EXPECT_GE(rep->metrics[0].mean, 0.665);  // Pyserini BM25 flat: 0.6789
    EXPECT_GE(rep->metrics[1].mean, 0.90);   // Pyserini BM25 flat: 0.9253
}

// Build, retrieve top 100 and evaluate a whole collection.
eval::EvalReport evaluate_collection(const std::string& dir, const std::string& metrics) {
    auto ds = eval::load_dataset(dir);
    EXPECT_TRUE(ds.ok()) << ds.error().to_string();
    if (!ds) return {};
    std::vector<Bm25Document> docs;
    for (const auto& d : ds->documents) docs.push_back({d.id, d.title, d.text});
    auto index = Bm25Index::build(docs, {});
    EXPECT_TRUE(index.ok());
    auto searcher = Bm25Searcher::create(*index);
    eval::Run run;
    for (const auto& q : ds->queries) {
        for (const auto& h : searcher->search(q.text, 100)) {
            run[q.id].push_back({std::string(index->doc_id(h.doc)), h.score});
        }
    }
    auto rep = eval::evaluate(ds->qrels, run, *eval::parse_metrics(metrics));
    EXPECT_TRUE(rep.ok());
    return *rep;
}

TEST(Bm25Index, CranfieldAndLimitSmallEvaluate) {
    QUIVER_REQUIRE_DATA(cranfield, "cranfield");
    const auto cran = evaluate_collection(cranfield, "ndcg@10,recall@100");
    ASSERT_EQ(cran.metrics.size(), 2u);
    EXPECT_EQ(cran.queries_in_qrels, 225u);
    EXPECT_GE(cran.metrics[0].mean, 0.30);  // measured 0.3514
    EXPECT_GE(cran.metrics[1].mean, 0.65);  // measured 0.7222
    QUIVER_REQUIRE_DATA(limit, "limit-small");
    const auto lim = evaluate_collection(limit, "recall@100");
    ASSERT_EQ(lim.metrics.size(), 1u);
    EXPECT_NEAR(lim.metrics[0].mean, 1.0, 1e-9);  // 46 documents: everything matching is retrieved
}

}  // namespace
}  // namespace quiver::sparse

namespace quiver::sparse {
namespace {

// Corpus-wide statistics: a corpus split into parts of very different average length, each part
// scored with the statistics summed over all parts, gives every document the score the one index
// over the whole corpus gives it, and the same top k (MaxScore with rescaled block bounds).
TEST(Bm25Index, PartsScoredWithSummedStatisticsMatchTheWholeIndex) {
    const char* words[] = {"river", "stone", "light", "north", "paper", "glass", "storm", "field", "music", "clock",
                           "bread", "metal", "cloud", "sugar", "green", "ocean", "train", "honey", "smoke", "tiger"};
    std::vector<std::string> ids;
    std::vector<std::string> texts;
    std::mt19937 rng(3);
    for (int i = 0; i < 3000; ++i) {
        // Part i % 4 decides the length range: part 0 short, part 3 long.
        const int part = i % 4;
        const int len = 2 + part * 25 + static_cast<int>(rng() % (5 + part * 30));
        std::string t;
        for (int w = 0; w < len; ++w) {
            const std::size_t pick = std::min<std::size_t>(19, static_cast<std::size_t>(std::abs(std::normal_distribution<double>(0, 6)(rng))));
            t += words[pick];
            t += ' ';
        }
        ids.push_back("d" + std::to_string(i));
        texts.push_back(std::move(t));
    }
    auto build = [&](int part) {
        std::vector<Bm25Document> docs;
        for (std::size_t i = 0; i < texts.size(); ++i) {
            if (part < 0 || static_cast<int>(i % 4) == part) docs.push_back({ids[i], "", texts[i]});
        }
        Bm25Index::BuildOptions o;
        o.threads = 1;
        return Bm25Index::build(docs, o);
    };
    auto whole = build(-1);
    ASSERT_TRUE(whole);
    std::vector<Bm25Index> parts;
    for (int p = 0; p < 4; ++p) {
        auto b = build(p);
        ASSERT_TRUE(b);
        parts.push_back(std::move(b).value());
    }
    ASSERT_GT(parts[3].average_length(), 5 * parts[0].average_length());
    const std::vector<std::vector<std::string>> queries = {
        {"river"}, {"tiger", "honey"}, {"stone", "stone", "light"}, {"smoke", "music", "ocean", "river"}, {"absent"}};
    for (const auto& q : queries) {
        // Own statistics: exactly what search_terms gives.
        const auto own = whole->search_with_stats(whole->query_stats(q), 20);
        const auto plain = whole->search_terms(q, 20);
        ASSERT_EQ(own.size(), plain.size());
        for (std::size_t i = 0; i < own.size(); ++i) {
            EXPECT_EQ(own[i].doc, plain[i].doc);
            EXPECT_EQ(own[i].score, plain[i].score);
        }
        Bm25QueryStats stats = Bm25QueryStats::for_terms(q);
        for (const auto& p : parts) {
            stats.doc_count += p.docs_with_tokens();
            stats.total_tokens += p.total_tokens();
            for (std::size_t t = 0; t < stats.terms.size(); ++t) stats.doc_freq[t] += p.doc_freq(p.find_term(stats.terms[t]));
        }
        const auto want = whole->search_terms(q, texts.size());
        std::map<std::string, float> want_score;
        for (const auto& h : want) want_score[std::string(whole->doc_id(h.doc))] = h.score;
        std::vector<std::pair<float, std::string>> merged;
        for (const auto& p : parts) {
            const auto top = p.search_with_stats(stats, 10);
            const auto exhaustive = p.search_with_stats(stats, 10, nullptr, nullptr, true);
            ASSERT_EQ(top.size(), exhaustive.size());
            for (std::size_t i = 0; i < top.size(); ++i) EXPECT_NEAR(top[i].score, exhaustive[i].score, 1e-5f * exhaustive[i].score);
            for (const auto& h : p.search_with_stats(stats, texts.size())) {
                const std::string id(p.doc_id(h.doc));
                ASSERT_TRUE(want_score.count(id)) << id;
                EXPECT_NEAR(h.score, want_score[id], 1e-5f * want_score[id]) << id;
            }
            for (const auto& h : top) merged.emplace_back(h.score, std::string(p.doc_id(h.doc)));
        }
        std::sort(merged.begin(), merged.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        for (std::size_t i = 0; i < std::min<std::size_t>(10, want.size()); ++i) {
            EXPECT_NEAR(merged[i].first, want[i].score, 1e-5f * want[i].score) << "rank " << i;
        }
    }
}

}  // namespace
}  // namespace quiver::sparse

namespace quiver::sparse {
namespace {

// find_term is a hash probe: every vocabulary term maps to its id, built or reopened, and strings that
// are not terms (prefixes, extensions, the empty string, case variants) map to kTerminated.
TEST(Bm25Index, FindTermMapsEveryTermAndNothingElse) {
    auto built = golden_corpus_index();
    ASSERT_TRUE(built);
    testing::TempDir dir;
    const std::string path = dir.file("terms.bm25");
    ASSERT_TRUE(built->save(path));
    auto opened = Bm25Index::open(path);
    ASSERT_TRUE(opened);
    for (const Bm25Index* index : {&*built, &*opened}) {
        ASSERT_GT(index->num_terms(), 300u);
        for (TermId id = 0; id < index->num_terms(); ++id) {
            const std::string t(index->term(id));
            EXPECT_EQ(index->find_term(t), id) << t;
            EXPECT_EQ(index->find_term(t + "x"), kTerminated) << t;
        }
        EXPECT_EQ(index->find_term(""), kTerminated);
        EXPECT_EQ(index->find_term("ALPHA"), kTerminated);
        EXPECT_NE(index->find_term("alpha"), kTerminated);
        EXPECT_EQ(index->find_term("item300"), kTerminated);
    }
}

// A build taking its first documents from existing indexes (a segment merge's inputs) and documents
// given analysed (a frozen memtable's) must give the index that analysing every text gives, byte for
// byte, whatever the parts lost. The parts' documents' texts are left empty in such a build, so a
// re-analysis would show; the analysed documents' texts are wrong on purpose.
TEST(Bm25Index, PartsAndAnalysedDocumentsEqualAnalysingEveryText) {
    std::mt19937 rng(7);
    const std::vector<std::string> words = {"alpha", "beta", "gamma", "the", "of", "delta's", "Running", "runs",
                                            "epsilon", "zeta", "eta", "theta"};
    auto text_of = [&](int i) {
        if (i % 23 == 0) return std::string("the of and");  // no tokens
        std::string t = "unique" + std::to_string(i);         // a term only this document holds
        const int n = 1 + static_cast<int>(rng() % (i % 9 == 0 ? 400 : 30));  // some long: lossy norms
        for (int j = 0; j < n; ++j) t += " " + words[rng() % words.size()];
        return t;
    };
    auto title_of = [](int i) { return std::string(i % 4 == 0 && i % 23 != 0 ? "Title words" : ""); };
    constexpr int kParts[] = {400, 300};  // documents 0-399 in the first index, 400-699 in the second
    constexpr int kBase = 700;
    constexpr int kNew = 150;
    std::vector<std::string> texts;
    for (int i = 0; i < kBase + kNew; ++i) texts.push_back(text_of(i));
    Bm25Index::BuildOptions o;
    o.threads = 2;
    testing::TempDir dir;
    std::vector<Bm25Index> indexes;
    {
        int begin = 0;
        for (const int size : kParts) {
            std::vector<std::string> ids;
            std::vector<std::string> titles;
            for (int i = 0; i < size; ++i) {
                ids.push_back(std::to_string(i));
                titles.push_back(title_of(begin + i));
            }
            std::vector<Bm25Document> docs;
            for (int i = 0; i < size; ++i) docs.push_back({ids[i], titles[i], texts[begin + i]});
            auto built = Bm25Index::build(docs, o);
            ASSERT_TRUE(built);
            const std::string path = dir.file("part" + std::to_string(begin) + ".bm25");
            ASSERT_TRUE(built->save(path));
            auto opened = Bm25Index::open(path);  // postings read in place, as a segment's
            ASSERT_TRUE(opened);
            indexes.push_back(std::move(opened).value());
            begin += size;
        }
    }
    // The new documents' analysis, as a memtable holds it: distinct terms, sorted, with counts.
    auto analyzer = text::Analyzer::create(o.analyzer);
    ASSERT_TRUE(analyzer);
    std::vector<std::vector<std::pair<std::string, std::uint32_t>>> terms(kNew);
    std::vector<Bm25AnalysedText> analysed(kNew);
    for (int i = 0; i < kNew; ++i) {
        std::vector<std::string> tokens;
        Bm25Index::document_tokens(*analyzer, "", texts[kBase + i], tokens);
        std::sort(tokens.begin(), tokens.end());
        for (const auto& t : tokens) {
            if (terms[i].empty() || terms[i].back().first != t) terms[i].emplace_back(t, 0);
            ++terms[i].back().second;
        }
        analysed[i] = {terms[i], static_cast<std::uint32_t>(tokens.size())};
    }

    std::vector<std::uint32_t> every0;
    std::vector<std::uint32_t> third0;
    std::vector<std::uint32_t> third1;
    for (std::uint32_t i = 0; i < 400; ++i) {
        every0.push_back(i);
        if (rng() % 3 == 0) third0.push_back(i);
    }
    for (std::uint32_t i = 0; i < 300; ++i) {
        if (rng() % 3 == 0) third1.push_back(i);
    }
    const std::vector<std::uint32_t> none;
    const std::vector<std::uint32_t> ends = {0, 5, 299};
    struct Case {
        std::size_t parts;  // how many of the two indexes are parts
        const std::vector<std::uint32_t>* removed[2];
    };
    const Case cases[] = {{0, {&none, &none}},     {1, {&none, &none}},   {1, {&third0, &none}},
                          {2, {&third0, &third1}}, {2, {&every0, &ends}}, {2, {&none, &third1}}};
    for (const Case& c : cases) {
        for (const int added : {0, kNew}) {
            for (const bool given_analysed : {false, true}) {
                // The built index's documents: the parts' kept ones in order, the rest of the two
                // indexes' documents analysed, then the new ones; ids are the slots.
                std::vector<std::string> doc_texts;
                std::vector<std::string> titles;
                std::vector<bool> from_part;
                std::vector<const Bm25AnalysedText*> given;
                int begin = 0;
                for (std::size_t p = 0; p < 2; ++p) {
                    for (int i = 0; i < kParts[p]; ++i) {
                        const auto& removed = *c.removed[p];
                        if (p < c.parts && std::binary_search(removed.begin(), removed.end(), static_cast<std::uint32_t>(i))) continue;
                        doc_texts.push_back(texts[begin + i]);
                        titles.push_back(title_of(begin + i));
                        from_part.push_back(p < c.parts);
                        given.push_back(nullptr);
                    }
                    begin += kParts[p];
                }
                for (int i = 0; i < added; ++i) {
                    doc_texts.push_back(texts[kBase + i]);
                    titles.push_back("");
                    from_part.push_back(false);
                    given.push_back(given_analysed ? &analysed[i] : nullptr);
                }
                std::vector<std::string> ids;
                for (std::size_t i = 0; i < doc_texts.size(); ++i) ids.push_back(std::to_string(i));
                std::vector<Bm25Document> whole;
                std::vector<Bm25Document> taken;
                for (std::size_t i = 0; i < doc_texts.size(); ++i) {
                    whole.push_back({ids[i], titles[i], doc_texts[i]});
                    if (from_part[i]) {
                        taken.push_back({ids[i], "", ""});
                    } else if (given[i] != nullptr) {
                        taken.push_back({ids[i], "", "wrong text", given[i]});
                    } else {
                        taken.push_back({ids[i], titles[i], doc_texts[i]});
                    }
                }
                std::vector<Bm25Index::Part> parts;
                for (std::size_t p = 0; p < c.parts; ++p) parts.push_back({&indexes[p], *c.removed[p]});
                auto expected = Bm25Index::build(whole, o);
                ASSERT_TRUE(expected);
                auto got = Bm25Index::build(taken, o, parts);
                ASSERT_TRUE(got) << got.error().to_string();
                ASSERT_TRUE(expected->save(dir.file("expected.bm25")));
                ASSERT_TRUE(got->save(dir.file("got.bm25")));
                EXPECT_EQ(testing::read_bytes(dir.file("got.bm25")), testing::read_bytes(dir.file("expected.bm25")))
                    << c.parts << " parts, " << added << " added, analysed " << given_analysed;
                EXPECT_EQ(got->total_tokens(), expected->total_tokens());
                EXPECT_EQ(got->docs_with_tokens(), expected->docs_with_tokens());
            }
        }
    }
    // Only document 23 kept ("the of and", no title): no term, no token, one document.
    std::vector<std::uint32_t> all_but_23 = every0;
    all_but_23.erase(all_but_23.begin() + 23);
    const std::vector<Bm25Document> one = {{"0", "", ""}};
    auto got = Bm25Index::build(one, o, std::vector<Bm25Index::Part>{{&indexes[0], all_but_23}});
    ASSERT_TRUE(got);
    EXPECT_EQ(got->num_docs(), 1u);
    EXPECT_EQ(got->num_terms(), 0u);
    EXPECT_EQ(got->docs_with_tokens(), 0u);
    EXPECT_EQ(got->total_tokens(), 0u);

    // Refused: another analysis, removed documents out of order or out of range, more documents in
    // the parts than built, an analysis whose length is not its counts' sum or that counts a term 0 times.
    auto refused = [&](std::span<const Bm25Document> docs, const Bm25Index::BuildOptions& options,
                       std::vector<Bm25Index::Part> parts) {
        auto r = Bm25Index::build(docs, options, parts);
        return !r && r.error().code() == ErrorCode::kInvalidArgument;
    };
    Bm25Index::BuildOptions other = o;
    other.analyzer.stemmer = "";
    EXPECT_TRUE(refused(one, other, {{&indexes[0], all_but_23}}));
    const std::vector<std::uint32_t> unordered = {5, 3};
    const std::vector<std::uint32_t> outside = {400};
    std::vector<Bm25Document> many(400, Bm25Document{});
    std::vector<std::string> many_ids;
    for (int i = 0; i < 400; ++i) many_ids.push_back(std::to_string(i));
    for (int i = 0; i < 400; ++i) many[i].id = many_ids[i];
    EXPECT_TRUE(refused(many, o, {{&indexes[0], unordered}}));
    EXPECT_TRUE(refused(many, o, {{&indexes[0], outside}}));
    EXPECT_TRUE(refused(one, o, {{&indexes[0], third0}}));
    EXPECT_TRUE(refused(one, o, {{nullptr, none}}));
    const std::vector<std::pair<std::string, std::uint32_t>> counted = {{"alpha", 2}, {"beta", 1}};
    const std::vector<std::pair<std::string, std::uint32_t>> zero = {{"alpha", 0}};
    const Bm25AnalysedText wrong_length{counted, 4};
    const Bm25AnalysedText zero_count{zero, 0};
    const std::vector<Bm25Document> bad_length = {{"0", "", "", &wrong_length}};
    const std::vector<Bm25Document> bad_count = {{"0", "", "", &zero_count}};
    EXPECT_TRUE(refused(bad_length, o, {}));
    EXPECT_TRUE(refused(bad_count, o, {}));
}

}  // namespace
}  // namespace quiver::sparse
