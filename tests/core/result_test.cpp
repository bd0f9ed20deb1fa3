#include "quiver/core/result.h"

#include <gtest/gtest.h>

namespace quiver {
namespace {

Result<int> parse_positive(int v) {
    if (v <= 0) return invalid_argument("value must be positive, got " + std::to_string(v));
    return v;
}

Result<int> doubled(int v) {
    QUIVER_ASSIGN_OR_RETURN(int x, parse_positive(v));
    return 2 * x;
}

Status check(int v) {
    QUIVER_TRY(parse_positive(v));
    return {};
}

TEST(Result, CarriesValueOrError) {
    auto ok = doubled(4);
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, 8);
    auto bad = doubled(-1);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(bad.error().message(), "value must be positive, got -1");
}

TEST(Result, StatusPropagates) {
    EXPECT_TRUE(check(1).ok());
    Status s = check(0);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().to_string(), "invalid argument: value must be positive, got 0");
}

TEST(Result, ContextIsPrefixed) {
    Error e = data_loss("checksum mismatch").with_context("opening 'x.qvr'");
    EXPECT_EQ(e.message(), "opening 'x.qvr': checksum mismatch");
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
}

TEST(Result, MoveOnlyValues) {
    Result<std::unique_ptr<int>> r(std::make_unique<int>(3));
    ASSERT_TRUE(r);
    std::unique_ptr<int> p = std::move(r).value();
    EXPECT_EQ(*p, 3);
}

}  // namespace
}  // namespace quiver
