#include "quiver/core/json.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cstring>
#include <random>
#include <string>

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

TEST(Json, NumbersAreTheNearestDoubleBitForBit) {
    // The parser's short-decimal path (mantissa / 10^fraction) must give exactly what from_chars
    // gives (the double nearest the decimal), also past its limits (16+ digits, exponents).
    auto check = [](const std::string& text) {
        double want = 0;
        const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), want);
        ASSERT_EQ(ec, std::errc()) << text;
        auto v = parse(text);
        ASSERT_TRUE(v) << text;
        ASSERT_TRUE(v->is_number()) << text;
        const double got = v->as_number();
        ASSERT_EQ(std::memcmp(&got, &want, sizeof got), 0) << text << ": " << got << " vs " << want;
    };
    for (const char* t : {"0", "-0", "-0.0", "0.1", "0.2", "0.3", "-0.999", "0.001", "123456789012345",
                          "1234567890123456", "12345678901234567890", "0.123456789012345", "0.1234567890123456",
                          "0.0000000000000000000001", "0.00000000000000000000001", "9007199254740993",
                          "999999999999999.9", "1.5e3", "-2.5E-3", "4.9e-324", "2.2250738585072014e-308"}) {
        check(t);
    }
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200000; ++i) {
        std::string t;
        if (rng() % 2) t += '-';
        const int int_digits = static_cast<int>(rng() % 18);
        if (int_digits == 0) {
            t += '0';
        } else {
            t += static_cast<char>('1' + rng() % 9);
            for (int d = 1; d < int_digits; ++d) t += static_cast<char>('0' + rng() % 10);
        }
        const int frac_digits = static_cast<int>(rng() % 26);
        if (frac_digits > 0) {
            t += '.';
            for (int d = 0; d < frac_digits; ++d) t += static_cast<char>('0' + (rng() % 3 == 0 ? 0 : rng() % 10));
        }
        if (rng() % 8 == 0) t += "e" + std::to_string(static_cast<int>(rng() % 40) - 20);
        check(t);
    }
}

TEST(Json, ArraysOfNumbersAndMixedArraysParseAlike) {
    auto v = parse("[ 0.5 , -1, 2e1,3 ]");
    ASSERT_TRUE(v);
    ASSERT_EQ(v->as_array().size(), 4u);
    EXPECT_EQ(v->as_array()[2].as_number(), 20.0);
    EXPECT_EQ(dump(*parse(R"([1, "a,b", [2, 3], {"k": [4]}, 5])")), R"([1,"a,b",[2,3],{"k":[4]},5])");
    for (const char* bad : {"[1, 2", "[1,,2]", "[1, 2,]", "[-]", "[1 2]", "[1, 2]]", "[1.]"}) {
        EXPECT_FALSE(parse(bad)) << "accepted: " << bad;
    }
}

TEST(Json, RawBytesBesideEscapesAreStillValidated) {
    // A raw lead byte followed by an escape is invalid UTF-8 even though the escape alone is valid.
    EXPECT_FALSE(parse("\"\xc3\\u00e9\""));
    EXPECT_FALSE(parse("\"\xe9t\xe9\""));
    auto ok = parse("\"caf\xc3\xa9 \\u00e9\"");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->as_string(), "caf\xc3\xa9 \xc3\xa9");
}

}  // namespace
}  // namespace quiver::json
