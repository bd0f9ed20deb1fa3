/// @file json.h
/// @brief A small, strict JSON reader and writer for data files (JSONL corpora, vectors, configs).
///
/// This is a data-format codec, not transport: the library reads `corpus.jsonl` and `config.json`
/// with it. The HTTP server uses it too but owns all request semantics. Input must be UTF-8; invalid
/// UTF-8 inside strings, control characters, trailing garbage and nesting deeper than 256 are errors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::json {

class Value {
public:
    enum class Type : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
    using Array = std::vector<Value>;
    using Object = std::vector<std::pair<std::string, Value>>;  ///< insertion order kept

    Value() = default;
    static Value null() { return Value(); }
    static Value boolean(bool b) { Value v; v.type_ = Type::kBool; v.bool_ = b; return v; }
    static Value number(double d) { Value v; v.type_ = Type::kNumber; v.num_ = d; return v; }
    /// A float as the double nearest its shortest decimal form, so 0.9f prints as 0.9, not
    /// 0.8999999761581421.
    static Value number_from_float(float f);
    static Value string(std::string s) {
        Value v; v.type_ = Type::kString; v.str_ = std::move(s); return v;
    }
    static Value array(Array a = {}) { Value v; v.type_ = Type::kArray; v.arr_ = std::move(a); return v; }
    static Value object(Object o = {}) {
        Value v; v.type_ = Type::kObject; v.obj_ = std::move(o); return v;
    }

    Type type() const noexcept { return type_; }
    bool is_null() const noexcept { return type_ == Type::kNull; }
    bool is_bool() const noexcept { return type_ == Type::kBool; }
    bool is_number() const noexcept { return type_ == Type::kNumber; }
    bool is_string() const noexcept { return type_ == Type::kString; }
    bool is_array() const noexcept { return type_ == Type::kArray; }
    bool is_object() const noexcept { return type_ == Type::kObject; }

    bool as_bool() const noexcept { return bool_; }
    double as_number() const noexcept { return num_; }
    /// True when the number is integral and fits int64 exactly.
    bool is_integer() const noexcept;
    std::int64_t as_int() const noexcept { return static_cast<std::int64_t>(num_); }
    const std::string& as_string() const noexcept { return str_; }
    const Array& as_array() const noexcept { return arr_; }
    Array& as_array() noexcept { return arr_; }
    const Object& as_object() const noexcept { return obj_; }
    Object& as_object() noexcept { return obj_; }

    /// Object member lookup (first match); nullptr when absent or not an object.
    const Value* find(std::string_view key) const noexcept;
    /// Appends a member to an object (no duplicate check).
    Value& set(std::string key, Value v);
    std::string_view type_name() const noexcept;

private:
    Type type_ = Type::kNull;
    bool bool_ = false;
    double num_ = 0.0;
    std::string str_;
    Array arr_;
    Object obj_;
};

/// Parses one JSON document. Errors are kInvalidArgument with the byte offset.
Result<Value> parse(std::string_view text);

/// Appends `s` as a quoted JSON string (escaping control characters, quotes and backslashes).
void append_quoted(std::string& out, std::string_view s);
std::string quote(std::string_view s);
/// Serialises compactly (`pretty` = two-space indentation). Numbers print shortest round-trip.
std::string dump(const Value& v, bool pretty = false);
/// Shortest representation that round-trips a double (integers print without a fraction).
void append_number(std::string& out, double d);

/// True when `s` is valid UTF-8.
bool valid_utf8(std::string_view s) noexcept;

}  // namespace quiver::json
