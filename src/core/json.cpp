#include "quiver/core/json.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace quiver::json {

bool Value::is_integer() const noexcept {
    return type_ == Type::kNumber && std::isfinite(num_) && std::floor(num_) == num_ &&
           std::fabs(num_) <= 9007199254740992.0;
}

Value Value::number_from_float(float f) {
    if (!std::isfinite(f)) return number(static_cast<double>(f));
    char buf[32];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), f);
    *ptr = '\0';
    return number(std::strtod(buf, nullptr));
}

const Value* Value::find(std::string_view key) const noexcept {
    if (type_ != Type::kObject) return nullptr;
    for (const auto& [k, v] : obj_) {
        if (k == key) return &v;
    }
    return nullptr;
}

Value& Value::set(std::string key, Value v) {
    obj_.emplace_back(std::move(key), std::move(v));
    return obj_.back().second;
}

std::string_view Value::type_name() const noexcept {
    switch (type_) {
        case Type::kNull: return "null";
        case Type::kBool: return "boolean";
        case Type::kNumber: return "number";
        case Type::kString: return "string";
        case Type::kArray: return "array";
        case Type::kObject: return "object";
    }
    return "?";
}

bool valid_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
        const unsigned char c = *p;
        if (c < 0x80) { ++p; continue; }
        int n;
        std::uint32_t cp;
        if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
        else return false;
        if (end - p <= n) return false;
        for (int i = 1; i <= n; ++i) {
            if ((p[i] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        p += n + 1;
    }
    return true;
}

namespace {

constexpr int kMaxDepth = 256;

// The parser fills the Value tree in place (each value parsed straight into its slot of the parent
// array or object) instead of returning every node by value through a Result: an upsert body of one
// document with a 32-float vector parses about 2x faster (the HTTP server parses one per write).
class Parser {
public:
    explicit Parser(std::string_view s) : s_(s) {}

    Result<Value> run() {
        Value v;
        QUIVER_TRY(value(v, 0));
        skip_ws();
        if (pos_ != s_.size()) return fail("unexpected trailing characters");
        return v;
    }

private:
    Error fail(std::string_view what) const {
        return invalid_argument(fmt::format("json: {} at byte {}", what, pos_));
    }
    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
            ++pos_;
    }
    bool consume(std::string_view lit) {
        if (s_.substr(pos_, lit.size()) == lit) { pos_ += lit.size(); return true; }
        return false;
    }

    Status value(Value& out, int depth) {
        if (depth > kMaxDepth) return fail("nesting too deep");
        skip_ws();
        if (pos_ >= s_.size()) return fail("unexpected end of input");
        const char c = s_[pos_];
        if (c == '{') return object(out, depth);
        if (c == '[') return array(out, depth);
        if (c == '"') {
            std::string str;
            QUIVER_TRY(string(str));
            out = Value::string(std::move(str));
            return ok_status();
        }
        if (c == '-' || (c >= '0' && c <= '9')) return number(out);
        if (consume("true")) { out = Value::boolean(true); return ok_status(); }
        if (consume("false")) { out = Value::boolean(false); return ok_status(); }
        if (consume("null")) { out = Value::null(); return ok_status(); }
        return fail(fmt::format("unexpected character '{}'", c));
    }

    Status number(Value& out) {
        const std::size_t start = pos_;
        const bool negative = s_[pos_] == '-';
        if (negative) ++pos_;
        // The decimal digits as an integer while it stays exact (at most 15 significant digits), and
        // how many of them follow the point: then the value is mantissa / 10^fraction, one correctly
        // rounded division of two exact doubles, i.e. the double nearest the decimal (what from_chars
        // returns). Longer numbers and exponents go to from_chars.
        std::uint64_t mantissa = 0;
        std::size_t significant = 0;
        std::size_t fraction = 0;
        auto digits = [&](bool after_point) {
            std::size_t n = 0;
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
                const auto d = static_cast<std::uint64_t>(s_[pos_] - '0');
                if (significant > 0 || d != 0) ++significant;
                if (significant <= 15) mantissa = mantissa * 10 + d;
                if (after_point) ++fraction;
                ++pos_;
                ++n;
            }
            return n;
        };
        if (pos_ < s_.size() && s_[pos_] == '0') ++pos_;
        else if (digits(false) == 0) return fail("invalid number");
        if (pos_ < s_.size() && s_[pos_] == '.') {
            ++pos_;
            if (digits(true) == 0) return fail("invalid number");
        }
        bool exponent = false;
        if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            exponent = true;
            ++pos_;
            if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
            if (digits(false) == 0) return fail("invalid number");
        }
        if (!exponent && significant <= 15 && fraction <= 22) {
            static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                                1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
            const double d = static_cast<double>(mantissa) / kPow10[fraction];
            out = Value::number(negative ? -d : d);
            return ok_status();
        }
        double d = 0;
        auto [ptr, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, d);
        if (ec == std::errc::result_out_of_range) {
            // from_chars leaves d untouched here; tell overflow (an error) from underflow (zero).
            const std::string text(s_.data() + start, pos_ - start);
            d = std::strtod(text.c_str(), nullptr);
            if (std::isinf(d)) return fail("number out of range");
        } else if (ec != std::errc()) {
            return fail("invalid number");
        }
        out = Value::number(d);
        return ok_status();
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) out += static_cast<char>(cp);
        else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    Result<std::uint32_t> hex4() {
        if (pos_ + 4 > s_.size()) return fail("truncated \\u escape");
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            const char h = s_[pos_++];
            v <<= 4;
            if (h >= '0' && h <= '9') v |= static_cast<std::uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f') v |= static_cast<std::uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') v |= static_cast<std::uint32_t>(h - 'A' + 10);
            else return fail("invalid \\u escape");
        }
        return v;
    }

    Status string(std::string& out) {
        ++pos_;  // opening quote
        std::size_t run = pos_;
        bool ascii = true;  // only bytes below 0x80 copied: valid UTF-8 without a check
        for (;;) {
            if (pos_ >= s_.size()) return fail("unterminated string");
            const char c = s_[pos_];
            if (c == '"') {
                out.append(s_.data() + run, pos_ - run);
                ++pos_;
                break;
            }
            const auto u = static_cast<unsigned char>(c);
            if (u < 0x20) return fail("control character in string");
            if (c != '\\') {
                ascii = ascii && u < 0x80;
                ++pos_;
                continue;
            }
            out.append(s_.data() + run, pos_ - run);
            ++pos_;
            if (pos_ >= s_.size()) return fail("unterminated escape");
            const char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    QUIVER_ASSIGN_OR_RETURN(std::uint32_t cp, hex4());
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (!consume("\\u")) return fail("unpaired surrogate");
                        QUIVER_ASSIGN_OR_RETURN(std::uint32_t lo, hex4());
                        if (lo < 0xDC00 || lo > 0xDFFF) return fail("unpaired surrogate");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        return fail("unpaired surrogate");
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: return fail("invalid escape");
            }
            run = pos_;
        }
        // Escapes only produce valid UTF-8; raw bytes from 0x80 up need the check.
        if (!ascii && !valid_utf8(out)) return fail("invalid UTF-8 in string");
        return ok_status();
    }

    // Elements of an array of numbers (a vector), counted ahead so the array is allocated once:
    // commas up to the closing bracket, if nothing but number characters, commas and whitespace
    // come before it (else 0: the array grows as it is parsed).
    std::size_t count_numbers_ahead() const {
        std::size_t commas = 0;
        for (std::size_t i = pos_; i < s_.size(); ++i) {
            const char c = s_[i];
            if (c == ']') return commas + 1;
            if (c == ',') {
                ++commas;
            } else if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' ||
                         c == ' ' || c == '\n' || c == '\t' || c == '\r')) {
                return 0;
            }
        }
        return 0;
    }

    Status array(Value& out, int depth) {
        ++pos_;
        out = Value::array();
        Value::Array& items = out.as_array();
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == ']') { ++pos_; return ok_status(); }
        if (pos_ < s_.size() && (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9'))) {
            items.reserve(count_numbers_ahead());
        }
        for (;;) {
            items.emplace_back();
            QUIVER_TRY(value(items.back(), depth + 1));
            skip_ws();
            if (pos_ >= s_.size()) return fail("unterminated array");
            if (s_[pos_] == ',') { ++pos_; continue; }
            if (s_[pos_] == ']') { ++pos_; return ok_status(); }
            return fail("expected ',' or ']'");
        }
    }

    Status object(Value& out, int depth) {
        ++pos_;
        out = Value::object();
        Value::Object& members = out.as_object();
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == '}') { ++pos_; return ok_status(); }
        members.reserve(8);  // one allocation for most objects (a document's fields) instead of four
        for (;;) {
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a string key");
            members.emplace_back();
            QUIVER_TRY(string(members.back().first));
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected ':'");
            ++pos_;
            QUIVER_TRY(value(members.back().second, depth + 1));
            skip_ws();
            if (pos_ >= s_.size()) return fail("unterminated object");
            if (s_[pos_] == ',') { ++pos_; continue; }
            if (s_[pos_] == '}') { ++pos_; return ok_status(); }
            return fail("expected ',' or '}'");
        }
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

void dump_into(std::string& out, const Value& v, bool pretty, int indent) {
    auto newline = [&](int level) {
        if (!pretty) return;
        out += '\n';
        out.append(static_cast<std::size_t>(level) * 2, ' ');
    };
    switch (v.type()) {
        case Value::Type::kNull: out += "null"; break;
        case Value::Type::kBool: out += v.as_bool() ? "true" : "false"; break;
        case Value::Type::kNumber: append_number(out, v.as_number()); break;
        case Value::Type::kString: append_quoted(out, v.as_string()); break;
        case Value::Type::kArray: {
            out += '[';
            bool first = true;
            for (const auto& item : v.as_array()) {
                if (!first) out += ',';
                first = false;
                newline(indent + 1);
                dump_into(out, item, pretty, indent + 1);
            }
            if (!v.as_array().empty()) newline(indent);
            out += ']';
            break;
        }
        case Value::Type::kObject: {
            out += '{';
            bool first = true;
            for (const auto& [k, item] : v.as_object()) {
                if (!first) out += ',';
                first = false;
                newline(indent + 1);
                append_quoted(out, k);
                out += pretty ? ": " : ":";
                dump_into(out, item, pretty, indent + 1);
            }
            if (!v.as_object().empty()) newline(indent);
            out += '}';
            break;
        }
    }
}

}  // namespace

Result<Value> parse(std::string_view text) { return Parser(text).run(); }

void append_quoted(std::string& out, std::string_view s) {
    out += '"';
    for (const char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

std::string quote(std::string_view s) {
    std::string out;
    append_quoted(out, s);
    return out;
}

void append_number(std::string& out, double d) {
    if (!std::isfinite(d)) { out += "null"; return; }
    char buf[32];
    if (std::floor(d) == d && std::fabs(d) < 9007199254740992.0) {
        // Integral values print as integers (100000, not 1e+05): counts and ids stay readable.
        auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), static_cast<std::int64_t>(d));
        out.append(buf, ptr);
        return;
    }
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), d);
    out.append(buf, ptr);
}

std::string dump(const Value& v, bool pretty) {
    std::string out;
    dump_into(out, v, pretty, 0);
    return out;
}

}  // namespace quiver::json
