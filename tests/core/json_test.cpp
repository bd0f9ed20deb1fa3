#include "quiver/core/json.h"

#include <gtest/gtest.h>

namespace quiver::json {
namespace {

TEST(Json, ParsesNestedDocument) {
    auto v = parse(R"({"id": "d1", "n": -12.5e1, "ok": true, "none": null, "v": [1, 2, 3], "o": {"k": "x"}})");
    ASSERT_TRUE(v) << v.error().to_string();
    EXPECT_EQ(v->find("id")->as_string(), "d1");
    EXPECT_DOUBLE_EQ(v->find("n")->as_number(), -125.0);
    EXPECT_TRUE(v->find("ok")->as_bool());
    EXPECT_TRUE(v->find("none")->is_null());
    EXPECT_EQ(v->find("v")->as_array().size(), 3u);
    EXPECT_EQ(v->find("o")->find("k")->as_string(), "x");
    EXPECT_EQ(v->find("missing"), nullptr);
}

TEST(Json, DecodesEscapesAndSurrogates) {
    auto v = parse(R"("a\"b\\c\n\u00e9\ud83d\ude00")");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->as_string(), "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(Json, RejectsMalformedInput) {
    for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "tru", "01", "1.", "\"abc", "{\"a\":1}x",
                            "\"\\ud800\"", "\"\x01\"", "[1 2]", "-", "1e", "\"\xff\""}) {
        EXPECT_FALSE(parse(bad)) << "accepted: " << bad;
    }
}

TEST(Json, NumbersOutOfRange) {
    EXPECT_FALSE(parse("1e999"));
    EXPECT_FALSE(parse("-1e400"));
    auto tiny = parse("1e-400");
    ASSERT_TRUE(tiny);
    EXPECT_EQ(tiny->as_number(), 0.0);
}

TEST(Json, RejectsDeepNesting) {
    std::string deep(1000, '[');
    deep += std::string(1000, ']');
    auto v = parse(deep);
    ASSERT_FALSE(v);
    EXPECT_NE(v.error().message().find("too deep"), std::string::npos);
}

TEST(Json, RoundTrips) {
    const char* text = R"({"a":[1,2.5,"x\ty"],"b":{"c":null,"d":false}})";
    auto v = parse(text);
    ASSERT_TRUE(v);
    EXPECT_EQ(dump(*v), text);
}

TEST(Json, IntegralNumbersPrintAsIntegers) {
    EXPECT_EQ(dump(Value::number(100000)), "100000");
    EXPECT_EQ(dump(Value::number(-3)), "-3");
    EXPECT_EQ(dump(Value::number(0.25)), "0.25");
    EXPECT_EQ(dump(Value::number(1e300)), "1e+300");
    EXPECT_EQ(dump(Value::number_from_float(0.9f)), "0.9");
    EXPECT_EQ(dump(Value::number_from_float(-1.25e-7f)), "-1.25e-07");
}

TEST(Json, ValidatesUtf8) {
    EXPECT_TRUE(valid_utf8("plain ascii"));
    EXPECT_TRUE(valid_utf8("caf\xc3\xa9"));
    EXPECT_FALSE(valid_utf8("\xc3"));
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));  // surrogate
    EXPECT_FALSE(valid_utf8("\xc0\xaf"));      // overlong
}

}  // namespace
}  // namespace quiver::json
