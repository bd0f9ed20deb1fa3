// Shared helpers for the engine tests: a small schema and deterministic documents.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

#include "quiver/engine/collection.h"

namespace quiver::engine::testutil {

/// body (text, BM25), tag (keyword), ver (integer), emb (8-d cosine vector, `kind` index).
inline Schema small_schema(VectorIndexKind kind = VectorIndexKind::kFlat) {
    Schema s;
    FieldSpec body;
    body.name = "body";
    body.type = FieldType::kText;
    FieldSpec tag;
    tag.name = "tag";
    tag.type = FieldType::kKeyword;
    FieldSpec ver;
    ver.name = "ver";
    ver.type = FieldType::kInteger;
    FieldSpec emb;
    emb.name = "emb";
    emb.type = FieldType::kVector;
    emb.dim = 8;
    emb.metric = simd::Metric::kCosine;
    emb.index = kind;
    emb.hnsw_m = 8;
    emb.hnsw_ef_construction = 32;
    s.fields = {body, tag, ver, emb};
    return s;
}

/// "emb": an L2 HNSW vector field of `dim` dimensions.
inline FieldSpec l2_hnsw_field(std::size_t dim, std::size_t m, std::size_t ef_construction) {
    FieldSpec emb;
    emb.name = "emb";
    emb.type = FieldType::kVector;
    emb.dim = dim;
    emb.metric = simd::Metric::kL2;
    emb.index = VectorIndexKind::kHnsw;
    emb.hnsw_m = m;
    emb.hnsw_ef_construction = ef_construction;
    return emb;
}

/// That field alone.
inline Schema l2_hnsw_schema(std::size_t dim, std::size_t m, std::size_t ef_construction) {
    Schema s;
    s.fields = {l2_hnsw_field(dim, m, ef_construction)};
    return s;
}

inline std::vector<float> vector_for(std::uint64_t n) {
    std::vector<float> v(8);
    for (std::size_t i = 0; i < 8; ++i) v[i] = static_cast<float>(std::sin(static_cast<double>(n * 8 + i + 1)));
    return v;
}

/// A document whose fields all agree with each other (so a torn read is detectable).
inline Document make_doc(std::uint64_t id, std::int64_t version) {
    Document d;
    d.id = "d" + std::to_string(id);
    d.fields["body"] = std::string("tok" + std::to_string(id) + " common words v" + std::to_string(version));
    d.fields["tag"] = std::string(id % 2 == 0 ? "even" : "odd");
    d.fields["ver"] = version;
    d.fields["emb"] = vector_for(static_cast<std::uint64_t>(version));
    return d;
}

/// True when body, ver and emb of `d` all describe the same version.
inline bool consistent(const Document& d) {
    const auto b = d.fields.find("body");
    const auto v = d.fields.find("ver");
    const auto e = d.fields.find("emb");
    if (b == d.fields.end() || v == d.fields.end() || e == d.fields.end()) return false;
    const auto* body = std::get_if<std::string>(&b->second);
    const auto* ver = std::get_if<std::int64_t>(&v->second);
    const auto* emb = std::get_if<std::vector<float>>(&e->second);
    if (body == nullptr || ver == nullptr || emb == nullptr) return false;
    const std::string want = "tok" + d.id.substr(1) + " common words v" + std::to_string(*ver);
    return *body == want && *emb == vector_for(static_cast<std::uint64_t>(*ver));
}

inline std::uint64_t dir_bytes(const std::string& dir) {
    std::uint64_t total = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
        if (e.is_regular_file(ec)) total += e.file_size(ec);
    }
    return total;
}

// The newest segment directory of a collection (seg_<id> with the highest id; "" when none).
inline std::string newest_segment(const std::string& coll) {
    std::string seg;
    unsigned long best = 0;
    for (const auto& e : std::filesystem::directory_iterator(coll)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("seg_", 0) != 0) continue;
        const unsigned long id = std::stoul(name.substr(4));
        if (seg.empty() || id > best) {
            best = id;
            seg = e.path().string();
        }
    }
    return seg;
}

}  // namespace quiver::engine::testutil
