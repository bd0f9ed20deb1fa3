#include "quiver/storage/vector_io.h"

#include <gtest/gtest.h>

#include <cmath>

#include "testing/testing.h"

namespace quiver::storage {
namespace {

TEST(VectorIo, RoundTripsEveryWritableFormat) {
    testing::TempDir dir;
    Matrix<float> m = testing::random_matrix(5, 7, 1);
    std::vector<std::string> ids = {"a", "b", "c", "d", "e"};
    ASSERT_TRUE(write_fvecs(dir.file("x.fvecs"), m).ok());
    ASSERT_TRUE(write_npy(dir.file("x.npy"), m).ok());
    ASSERT_TRUE(write_jsonl(dir.file("x.jsonl"), m, ids).ok());
    for (const char* name : {"x.fvecs", "x.npy", "x.jsonl"}) {
        auto r = read_vectors(dir.file(name));
        ASSERT_TRUE(r) << name << ": " << r.error().to_string();
        EXPECT_EQ(r->vectors.rows, 5u);
        EXPECT_EQ(r->vectors.dim, 7u);
        EXPECT_EQ(r->vectors.values, m.values) << name;
    }
    auto j = read_vectors(dir.file("x.jsonl"));
    EXPECT_EQ(j->ids, ids);
}

TEST(VectorIo, ReadsIvecsAndIntegerIds) {
    testing::TempDir dir;
    Matrix<std::int32_t> gt(2, 3);
    gt.values = {1, 2, 3, 4, 5, 6};
    ASSERT_TRUE(write_ivecs(dir.file("g.ivecs"), gt).ok());
    auto r = read_ivecs(dir.file("g.ivecs"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->values, gt.values);
    testing::write_bytes(dir.file("i.jsonl"), "{\"id\": 17, \"vector\": [1, 2]}\n{\"id\": 3, \"vector\": [3, 4]}\n");
    auto j = read_vectors(dir.file("i.jsonl"));
    ASSERT_TRUE(j);
    EXPECT_EQ(j->ids, (std::vector<std::string>{"17", "3"}));
}

TEST(VectorIo, RejectsBadInputWithClearErrors) {
    testing::TempDir dir;
    auto expect_error = [&](const std::string& name, const std::string& bytes, const std::string& needle) {
        testing::write_bytes(dir.file(name), bytes);
        auto r = read_vectors(dir.file(name));
        ASSERT_FALSE(r) << name;
        EXPECT_NE(r.error().message().find(needle), std::string::npos)
            << name << ": " << r.error().message();
    };
    expect_error("empty.fvecs", "", "empty");
    expect_error("trunc.fvecs", std::string("\x04\x00\x00\x00", 4) + std::string(10, '\0'), "not a multiple");
    expect_error("dim.jsonl", "{\"id\":1,\"vector\":[1,2]}\n{\"id\":2,\"vector\":[1]}\n", "dimension 1, expected 2");
    expect_error("nan.jsonl", "{\"id\":1,\"vector\":[1,\"x\"]}\n", "expected a number");
    expect_error("json.jsonl", "{\"id\":1,\"vector\":[1,2]\n", "line 1");
    expect_error("none.jsonl", "\n\n", "no vectors");
    expect_error("x.txt", "abc", "cannot tell the vector format");
    expect_error("bad.npy", "not numpy at all", "not a .npy file");

    Matrix<float> m(2, 2);
    m.values = {1.f, NAN, 2.f, 3.f};
    ASSERT_TRUE(write_fvecs(dir.file("nan.fvecs"), m).ok());
    auto r = read_vectors(dir.file("nan.fvecs"));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("row 0 column 1 is NaN"), std::string::npos) << r.error().message();

    auto missing = read_vectors(dir.file("missing.fvecs"));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST(VectorIo, ReadsRealGlove) {
    QUIVER_REQUIRE_DATA(dir, "glove-6b-100d");
    auto r = read_vectors(dir + "/query.fvecs");
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->vectors.rows, 1000u);
    EXPECT_EQ(r->vectors.dim, 100u);
    auto gt = read_ivecs(dir + "/groundtruth_angular.ivecs");
    ASSERT_TRUE(gt);
    EXPECT_EQ(gt->dim, 100u);
}

}  // namespace
}  // namespace quiver::storage
