// LIMIT generation follows the paper's construction; the free-embedding experiment separates an
// easy case from an impossible one.
#include "quiver/eval/limit.h"

#include <gtest/gtest.h>

#include <set>

#include "testing/testing.h"

namespace quiver::eval {
namespace {

LimitVocabulary small_vocabulary() {
    LimitVocabulary v;
    for (int i = 0; i < 40; ++i) v.query_attributes.push_back("Qattr" + std::to_string(i) + " Thing");
    for (int i = 0; i < 60; ++i) v.filler_attributes.push_back("Filler" + std::to_string(i));
    return v;
}

TEST(Limit, DensePatternAndNoQueryWordsInOtherDocuments) {
    LimitOptions o;
    o.num_docs = 300;
    o.num_queries = 30;  // C(8, 2) = 28 < 30 <= C(9, 2) = 36: n = 9
    o.items_per_doc = 12;
    auto ds = generate_limit(o, small_vocabulary());
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    ASSERT_EQ(ds->documents.size(), 300u);
    ASSERT_EQ(ds->queries.size(), 30u);
    std::set<std::string> relevant_docs;
    for (const auto& [q, docs] : ds->qrels) {
        EXPECT_EQ(docs.size(), 2u);
        for (const auto& [d, rel] : docs) relevant_docs.insert(d);
    }
    EXPECT_EQ(relevant_docs.size(), 9u);
    // query_0 = (0, 1), query_7 = (0, 8), query_8 = (1, 2): lexicographic pairs of the first 9 documents.
    const auto& docs = ds->documents;
    EXPECT_EQ(ds->qrels.at("query_0").count(docs[0].id), 1u);
    EXPECT_EQ(ds->qrels.at("query_0").count(docs[1].id), 1u);
    EXPECT_EQ(ds->qrels.at("query_7").count(docs[8].id), 1u);
    EXPECT_EQ(ds->qrels.at("query_8").count(docs[1].id), 1u);
    EXPECT_EQ(ds->qrels.at("query_8").count(docs[2].id), 1u);
    for (const Document& d : docs) {
        EXPECT_EQ(d.text.rfind(d.id + " likes ", 0), 0u);
        EXPECT_EQ(d.text.back(), '.');
        const bool relevant = relevant_docs.count(d.id) > 0;
        EXPECT_EQ(d.text.find("Qattr") != std::string::npos, relevant) << d.text;
        std::size_t commas = 0;
        for (char c : d.text) commas += c == ',';
        EXPECT_EQ(commas, o.items_per_doc - 2) << d.text;  // "A, B, ... and Z"
    }
    // Each query's attribute appears in exactly its two relevant documents.
    const auto attributes_of = [](const Document& d) {
        std::string list = d.text.substr(d.id.size() + 7, d.text.size() - d.id.size() - 8);
        const std::size_t and_at = list.rfind(" and ");
        list.replace(and_at, 5, ", ");
        std::set<std::string> out;
        std::size_t pos = 0;
        while (pos <= list.size()) {
            const std::size_t c = std::min(list.find(", ", pos), list.size());
            out.insert(list.substr(pos, c - pos));
            pos = c + 2;
        }
        return out;
    };
    for (const Query& q : ds->queries) {
        const std::string attr = q.text.substr(10, q.text.size() - 11);
        std::set<std::string> holders;
        for (const Document& d : docs) {
            const auto a = attributes_of(d);
            EXPECT_EQ(a.size(), o.items_per_doc);
            if (a.count(attr) > 0) holders.insert(d.id);
        }
        std::set<std::string> want;
        for (const auto& [d, rel] : ds->qrels.at(q.id)) want.insert(d);
        EXPECT_EQ(holders, want) << q.text;
    }
    // Seeded: the same seed gives the same collection, another seed another one.
    auto again = generate_limit(o, small_vocabulary());
    EXPECT_EQ(again->documents[5].text, docs[5].text);
    o.seed = 7;
    auto other = generate_limit(o, small_vocabulary());
    EXPECT_NE(other->documents[5].text, docs[5].text);
}

TEST(Limit, RoundTripsThroughTheLoaderAndRefusesBadSizes) {
    LimitOptions o;
    o.num_docs = 50;
    o.num_queries = 10;
    o.items_per_doc = 8;
    auto ds = generate_limit(o, small_vocabulary());
    ASSERT_TRUE(ds.ok());
    testing::TempDir dir;
    ASSERT_TRUE(write_limit(*ds, dir.path()));
    auto back = load_dataset(dir.path());
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(back->documents.size(), 50u);
    EXPECT_EQ(back->queries.size(), 10u);
    EXPECT_EQ(back->qrels, ds->qrels);
    o.num_docs = 4;  // 10 pairs need 5 documents
    EXPECT_FALSE(generate_limit(o, small_vocabulary()).ok());
    o.num_docs = 50;
    o.num_queries = 41;  // more queries than attributes
    EXPECT_FALSE(generate_limit(o, small_vocabulary()).ok());
    o.num_queries = 30;
    o.items_per_doc = 3;  // document 0 carries 8 query attributes
    EXPECT_FALSE(generate_limit(o, small_vocabulary()).ok());
}

TEST(FreeEmbedding, EasyAndImpossibleCases) {
    FreeEmbeddingOptions o;
    o.max_steps = 3000;
    o.patience = 500;
    // Four documents, all six pairs, in 4 dimensions: realisable (e.g. near-orthogonal documents).
    EXPECT_TRUE(free_embedding_solves(4, 4, o));
    // Twelve documents on a circle cannot give every one of the 66 pairs a top 2.
    o.restarts = 1;
    EXPECT_FALSE(free_embedding_solves(12, 2, o));
}

}  // namespace
}  // namespace quiver::eval
