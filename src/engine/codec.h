// Private to engine: byte encoding of documents, schemas and WAL records (little-endian, bounds-checked).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "quiver/core/result.h"
#include "quiver/engine/schema.h"

namespace quiver::engine {

class ByteWriter {
public:
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void u32(std::uint32_t v) { raw(&v, 4); }
    void u64(std::uint64_t v) { raw(&v, 8); }
    void f32(float v) { raw(&v, 4); }
    void f64(double v) { raw(&v, 8); }
    void str(std::string_view s) {
        u32(static_cast<std::uint32_t>(s.size()));
        out_.append(s);
    }
    void raw(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
    std::string& bytes() { return out_; }

private:
    std::string out_;
};

class ByteReader {
public:
    explicit ByteReader(std::string_view in) : in_(in) {}
    Result<std::uint8_t> u8() {
        if (in_.size() - pos_ < 1) return short_read();
        return static_cast<std::uint8_t>(in_[pos_++]);
    }
    Result<std::uint32_t> u32() { return pod<std::uint32_t>(); }
    Result<std::uint64_t> u64() { return pod<std::uint64_t>(); }
    Result<float> f32() { return pod<float>(); }
    Result<double> f64() { return pod<double>(); }
    Result<std::string> str() {
        QUIVER_ASSIGN_OR_RETURN(std::uint32_t n, u32());
        if (in_.size() - pos_ < n) return short_read();
        std::string s(in_.substr(pos_, n));
        pos_ += n;
        return s;
    }
    Status raw(void* p, std::size_t n) {
        if (in_.size() - pos_ < n) return short_read();
        std::memcpy(p, in_.data() + pos_, n);
        pos_ += n;
        return ok_status();
    }
    bool done() const noexcept { return pos_ == in_.size(); }
    std::size_t remaining() const noexcept { return in_.size() - pos_; }

private:
    template <class T>
    Result<T> pod() {
        T v;
        if (in_.size() - pos_ < sizeof(T)) return short_read();
        std::memcpy(&v, in_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    Error short_read() const { return data_loss("record truncated at byte " + std::to_string(pos_)); }
    std::string_view in_;
    std::size_t pos_ = 0;
};

void encode_value(ByteWriter& w, const FieldValue& v);
Result<FieldValue> decode_value(ByteReader& r);
/// id, then (name, value) pairs.
void encode_document(ByteWriter& w, const Document& doc);
Result<Document> decode_document(ByteReader& r);
void encode_schema(ByteWriter& w, const Schema& schema);
/// The MANIFEST version a schema needs: 2 when it has vector storage options (quantization, on_disk),
/// multi_vector fields or sparse_vector fields with an encoder (which version-1 readers do not know),
/// else 1. Version 2's extensions are self-describing (a field flag bit; the field type), so one
/// version covers any mix of them. 3 when a text field has chunking; 4 when a vector field has a
/// memory budget or a MUVERA field has parameters other than MuveraFieldParams::legacy() (blocked
/// FDEs, the default for new fields); version 4's two extensions are flag bits 5 and 6.
std::uint32_t schema_version(const Schema& schema);
Result<Schema> decode_schema(ByteReader& r);

}  // namespace quiver::engine
