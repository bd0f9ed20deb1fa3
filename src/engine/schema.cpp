// Schema validation, document validation, filters, and their byte encodings.
#include "quiver/engine/schema.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/codec.h"
#include "quiver/core/json.h"
#include "quiver/index/vector_index.h"

namespace quiver::engine {
namespace {

bool valid_field_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '-' || c == '.';
        if (!ok) return false;
    }
    return true;
}

bool is_attribute(FieldType t) { return is_attribute_type(t); }

const char* kTypeNames[] = {"text",    "vector",       "keyword",       "integer",     "float",
                            "boolean", "keyword_list", "sparse_vector", "multi_vector"};
constexpr int kTypeCount = 9;

// Does `v` have the variant alternative field type `t` stores?
bool value_has_type(const FieldValue& v, FieldType t) {
    switch (t) {
        case FieldType::kText:
        case FieldType::kKeyword: return std::holds_alternative<std::string>(v);
        case FieldType::kInteger: return std::holds_alternative<std::int64_t>(v);
        case FieldType::kFloat: return std::holds_alternative<double>(v);
        case FieldType::kBool: return std::holds_alternative<bool>(v);
        case FieldType::kKeywordList: return std::holds_alternative<std::vector<std::string>>(v);
        case FieldType::kVector: return std::holds_alternative<std::vector<float>>(v);
        case FieldType::kSparse: return std::holds_alternative<SparseTerms>(v);
        case FieldType::kMultiVector: return std::holds_alternative<TokenVectors>(v);
    }
    return false;
}

bool as_number(const FieldValue& v, double& out) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
        out = static_cast<double>(*i);
        return true;
    }
    if (const auto* d = std::get_if<double>(&v)) {
        out = *d;
        return true;
    }
    return false;
}

bool value_equals(const FieldValue& stored, const FieldValue& wanted) {
    double a = 0, b = 0;
    if (as_number(stored, a) && as_number(wanted, b)) return a == b;
    if (const auto* list = std::get_if<std::vector<std::string>>(&stored)) {
        const auto* s = std::get_if<std::string>(&wanted);
        if (s == nullptr) return false;
        for (const auto& e : *list) {
            if (e == *s) return true;
        }
        return false;
    }
    return stored == wanted;
}

// `quantization` and `on_disk` of one field.
Status validate_vector_storage(const FieldSpec& f) {
    const VectorQuantization& q = f.quantization;
    const std::string where = "field '" + f.name + "': ";
    if (f.type != FieldType::kVector) {
        if (q != VectorQuantization{} || f.on_disk || f.memory_budget != 0) {
            return invalid_argument(where + "only vector fields take quantization, on_disk and memory_budget");
        }
        return ok_status();
    }
    if (f.memory_budget != 0 && (q != VectorQuantization{} || f.on_disk)) {
        return invalid_argument(where + "memory_budget picks the codec and on_disk for each persisted segment: drop "
                                        "quantization and on_disk, or the budget");
    }
    if (f.memory_budget != 0 && f.chunking) {
        // The budget rule sizes a segment by its documents; a chunked field indexes one entry per chunk.
        return invalid_argument(where + "memory_budget and chunking cannot be combined (the budget counts documents, "
                                        "a chunked field indexes every chunk)");
    }
    if (f.on_disk && !q.enabled()) {
        return invalid_argument(where + "on_disk needs quantization (the search walks codes in memory and reads float32 vectors only to re-score)");
    }
    if (!q.enabled()) {
        if (q != VectorQuantization{}) return invalid_argument(where + "quantization needs a codec other than none");
        return ok_status();
    }
    const simd::Metric codec_metric = f.metric == simd::Metric::kCosine ? simd::Metric::kInnerProduct : f.metric;
    auto codec = index::Codec::create(q.codec, f.dim, codec_metric);
    if (!codec) return invalid_argument(where + "quantization: " + codec.error().message());
    if (f.index == VectorIndexKind::kHnsw && (*codec)->block_size() != 1) {
        return invalid_argument(where + "codec " + q.codec.to_string() +
                                " stores codes in fast-scan blocks; an hnsw field needs one code per node (use 8-bit PQ, "
                                "or \"index\": \"flat\")");
    }
    if (q.rescore > 65536) return invalid_argument(where + "quantization rescore must be 0..65536");
    if (q.nlist > 65536) return invalid_argument(where + "quantization nlist must be 0..65536");
    if (q.nlist > 0 && f.index != VectorIndexKind::kFlat) {
        return invalid_argument(where + "quantization nlist (IVF lists) needs \"index\": \"flat\"");
    }
    if (q.nprobe > q.nlist) return invalid_argument(where + "quantization nprobe must be at most nlist");
    return ok_status();
}

Status validate_muvera(const FieldSpec& f) {
    const MuveraFieldParams& p = f.muvera;
    const std::string where = "field '" + f.name + "': ";
    if (p.fde != MuveraFdeKind::kHnsw && p.fde != MuveraFdeKind::kBlocks) {
        return invalid_argument(where + "unknown FDE layout");
    }
    if (p.k_sim < 1 || p.k_sim > 10) return invalid_argument(where + "k_sim must be 1..10");
    if (p.d_proj > 256) return invalid_argument(where + "d_proj must be 0..256 (0 = the token dimension)");
    if (p.r_reps < 1 || p.r_reps > 64) return invalid_argument(where + "r_reps must be 1..64");
    const std::size_t width = p.d_proj == 0 ? f.dim : p.d_proj;
    if (p.r_reps * (std::size_t{1} << p.k_sim) * width > kMaxMuveraFdeDim) {
        return invalid_argument(where + "the MUVERA encoding, r_reps x 2^k_sim x d_proj = " +
                                std::to_string(p.r_reps * (std::size_t{1} << p.k_sim) * width) + " values, exceeds " +
                                std::to_string(kMaxMuveraFdeDim));
    }
    if (p.candidates > kMaxMuveraCandidates) {
        return invalid_argument(where + "candidates must be 0.." + std::to_string(kMaxMuveraCandidates));
    }
    return ok_status();
}

}  // namespace

std::string_view to_string(FieldType type) noexcept { return kTypeNames[static_cast<int>(type)]; }

Result<FieldType> parse_field_type(std::string_view name) {
    for (int i = 0; i < kTypeCount; ++i) {
        if (name == kTypeNames[i]) return static_cast<FieldType>(i);
    }
    if (name == "bool") return FieldType::kBool;
    return invalid_argument("unknown field type '" + std::string(name) +
                            "' (text, vector, sparse_vector, multi_vector, keyword, integer, float, boolean, keyword_list)");
}

const FieldSpec* Schema::find(std::string_view name) const noexcept {
    for (const auto& f : fields) {
        if (f.name == name) return &f;
    }
    return nullptr;
}

Status Schema::validate() const {
    if (fields.empty()) return invalid_argument("schema has no fields");
    if (fields.size() > 256) return invalid_argument("schema has more than 256 fields");
    if (!(bm25_k1 >= 0.0f && bm25_k1 < 100.0f) || !(bm25_b >= 0.0f && bm25_b <= 1.0f)) {
        return invalid_argument("bm25 needs k1 >= 0 and b in [0, 1]");
    }
    std::set<std::string, std::less<>> names;
    for (const auto& f : fields) {
        if (!valid_field_name(f.name)) {
            return invalid_argument("invalid field name '" + f.name + "' (1-64 of [A-Za-z0-9_.-])");
        }
        if (!names.insert(f.name).second) return invalid_argument("duplicate field '" + f.name + "'");
        if (f.type == FieldType::kVector) {
            if (f.dim == 0 || f.dim > 65536) return invalid_argument("field '" + f.name + "': dim must be 1..65536");
            if (f.hnsw_m < 2 || f.hnsw_m > 256) return invalid_argument("field '" + f.name + "': m must be 2..256");
            if (f.hnsw_ef_construction < 1 || f.hnsw_ef_construction > 4096) {
                return invalid_argument("field '" + f.name + "': ef_construction must be 1..4096");
            }
        }
        QUIVER_TRY(validate_vector_storage(f));
        if (f.type == FieldType::kMultiVector) {
            if (f.dim == 0 || f.dim > kMaxTokenDim) {
                return invalid_argument("field '" + f.name + "': dim must be 1.." + std::to_string(kMaxTokenDim));
            }
            if (f.hnsw_m < 2 || f.hnsw_m > 256) return invalid_argument("field '" + f.name + "': m must be 2..256");
            if (f.hnsw_ef_construction < 1 || f.hnsw_ef_construction > 4096) {
                return invalid_argument("field '" + f.name + "': ef_construction must be 1..4096");
            }
            if (f.mv_index == MultiVectorIndexKind::kMuvera) QUIVER_TRY(validate_muvera(f));
        } else if (f.token_codec != multivector::TokenCodec::kFloat32) {
            return invalid_argument("field '" + f.name + "': only multi_vector fields have a token_codec");
        }
        if (f.payload_index && !is_attribute(f.type)) {
            return invalid_argument("field '" + f.name + "': only attribute fields have a payload index");
        }
        if (!f.encoder.empty() && !embeds_text(f)) {
            return invalid_argument("field '" + f.name + "': only vector, sparse_vector and multi_vector fields have an encoder");
        }
        if (f.encoder == "hashing" && f.type != FieldType::kVector) {
            return invalid_argument("field '" + f.name + "': the hashing encoder serves vector fields only");
        }
        if (f.chunking) {
            if (f.type == FieldType::kVector && f.encoder.empty()) {
                return invalid_argument("field '" + f.name + "': chunking needs an \"encoder\" (each chunk's text is "
                                        "embedded); vectors given directly cannot be chunked");
            }
            if ((f.type != FieldType::kText || !f.indexed) && f.type != FieldType::kVector) {
                return invalid_argument("field '" + f.name + "': chunking serves indexed text fields (BM25) and vector "
                                        "fields with an encoder; " + std::string(to_string(f.type)) +
                                        " fields are not chunked");
            }
            if (auto st = pipeline::validate_chunking(*f.chunking); !st) {
                return invalid_argument("field '" + f.name + "': " + st.error().message());
            }
            if (f.chunking->size > kMaxChunkUnits || f.chunking->context > kMaxChunkUnits) {
                return invalid_argument("field '" + f.name + "': chunking size and context must be at most " +
                                        std::to_string(kMaxChunkUnits));
            }
        }
        if (!f.sources.empty()) {
            if (f.type != FieldType::kText && !embeds_text(f)) {
                return invalid_argument("field '" + f.name + "': only text fields and fields with an encoder have sources");
            }
            if (f.sources.size() > 2) return invalid_argument("field '" + f.name + "': at most two sources (title, body)");
        }
    }
    for (const auto& f : fields) {
        for (const auto& s : f.sources) {
            const FieldSpec* src = find(s);
            if (src == nullptr || src->type != FieldType::kText || !src->sources.empty()) {
                return invalid_argument("field '" + f.name + "': source '" + s + "' is not a stored text field");
            }
        }
    }
    return ok_status();
}

bool valid_document_id(std::string_view id) noexcept {
    return !id.empty() && id.size() <= 512 && json::valid_utf8(id);
}

Status validate_document(const Schema& schema, Document& doc) {
    if (!valid_document_id(doc.id)) {
        return invalid_argument("document id must be 1-512 bytes of valid UTF-8");
    }
    const std::string where = "document '" + doc.id + "'";
    for (auto& [name, value] : doc.fields) {
        const FieldSpec* f = schema.find(name);
        if (f == nullptr) return invalid_argument(where + ": unknown field '" + name + "'");
        if (!f->sources.empty() && f->type == FieldType::kText) {
            return invalid_argument(where + ": field '" + name + "' is computed from its sources");
        }
        if (std::holds_alternative<std::monostate>(value)) continue;
        if (f->type == FieldType::kFloat) {
            if (const auto* i = std::get_if<std::int64_t>(&value)) value = static_cast<double>(*i);
        }
        if (chunked_vectors(*f) && !std::holds_alternative<TokenVectors>(value)) {
            // Embedding replaced any text given; what is left was given as a vector.
            return invalid_argument(where + ": field '" + name + "' is chunked: give its text (each chunk is "
                                    "embedded) or its chunk vectors (one row per chunk), not a vector");
        }
        if (!value_has_type(value, f->type) && !chunked_vectors(*f)) {
            return invalid_argument(where + ": field '" + name + "' expects " + std::string(to_string(f->type)));
        }
        if (const auto* s = std::get_if<std::string>(&value)) {
            if (!json::valid_utf8(*s)) return invalid_argument(where + ": field '" + name + "' is not valid UTF-8");
        } else if (const auto* d = std::get_if<double>(&value)) {
            if (!std::isfinite(*d)) return invalid_argument(where + ": field '" + name + "' is not finite");
        } else if (const auto* l = std::get_if<std::vector<std::string>>(&value)) {
            for (const auto& e : *l) {
                if (!json::valid_utf8(e)) return invalid_argument(where + ": field '" + name + "' is not valid UTF-8");
            }
        } else if (const auto* sp = std::get_if<SparseTerms>(&value)) {
            std::set<std::string_view> seen;
            for (const auto& [term, w] : *sp) {
                if (term.empty() || term.size() > 256 || !json::valid_utf8(term)) {
                    return invalid_argument(where + ": field '" + name + "' has an empty, long or non-UTF-8 term");
                }
                if (!std::isfinite(w) || w < 0.0f) {
                    return invalid_argument(where + ": field '" + name + "' term '" + term +
                                            "' needs a finite weight >= 0");
                }
                if (!seen.insert(term).second) {
                    return invalid_argument(where + ": field '" + name + "' repeats term '" + term + "'");
                }
            }
        } else if (const auto* tv = std::get_if<TokenVectors>(&value)) {
            if (tv->dim != f->dim || tv->values.size() % f->dim != 0) {
                return invalid_argument(where + ": field '" + name + "' has token vectors of dimension " +
                                        std::to_string(tv->dim) + ", schema says " + std::to_string(f->dim));
            }
            const std::size_t max_rows = chunked_vectors(*f) ? kMaxChunksPerDocument : kMaxTokenVectors;
            if (tv->rows() == 0 || tv->rows() > max_rows) {
                return invalid_argument(where + ": field '" + name + "' needs 1.." + std::to_string(max_rows) +
                                        (chunked_vectors(*f) ? " chunk vectors" : " token vectors"));
            }
            for (float x : tv->values) {
                if (!std::isfinite(x)) return invalid_argument(where + ": field '" + name + "' has a non-finite value");
            }
        } else if (const auto* v = std::get_if<std::vector<float>>(&value)) {
            if (v->size() != f->dim) {
                return invalid_argument(where + ": field '" + name + "' has dimension " + std::to_string(v->size()) +
                                        ", schema says " + std::to_string(f->dim));
            }
            for (float x : *v) {
                if (!std::isfinite(x)) return invalid_argument(where + ": field '" + name + "' has a non-finite value");
            }
            if (!index::norm_in_range(*v, f->metric)) {
                return invalid_argument(where + ": field '" + name + "' has a norm above 9.2e18 (distances would overflow)");
            }
            if (f->metric == simd::Metric::kCosine) {
                double norm = 0;
                for (float x : *v) norm += static_cast<double>(x) * x;
                if (norm == 0.0) return invalid_argument(where + ": field '" + name + "' is a zero vector (cosine)");
            }
        }
    }
    return ok_status();
}

namespace {

struct FilterBudget {
    std::size_t nodes = 0;
    std::size_t values = 0;
};

Status validate_filter(const Filter& f, const Schema& schema, std::size_t depth, FilterBudget& budget) {
    using Op = Filter::Op;
    if (++budget.nodes > kMaxFilterNodes) {
        return invalid_argument("filter has more than " + std::to_string(kMaxFilterNodes) + " nodes");
    }
    if (depth > kMaxFilterDepth) {
        return invalid_argument("filter nested more than " + std::to_string(kMaxFilterDepth) + " deep");
    }
    switch (f.op) {
        case Op::kAnd:
        case Op::kOr:
            for (const auto& c : f.children) QUIVER_TRY(validate_filter(c, schema, depth + 1, budget));
            return ok_status();
        case Op::kNot:
            if (f.children.size() != 1) return invalid_argument("filter 'not' takes one filter");
            return validate_filter(f.children[0], schema, depth + 1, budget);
        default: break;
    }
    const FieldSpec* spec = schema.find(f.field);
    if (spec == nullptr) return invalid_argument("filter: unknown field '" + f.field + "'");
    if (!is_attribute(spec->type)) {
        return invalid_argument("filter: field '" + f.field + "' is " + std::string(to_string(spec->type)) +
                                ", not an attribute");
    }
    const bool numeric = spec->type == FieldType::kInteger || spec->type == FieldType::kFloat;
    if (f.op == Op::kRange) {
        if (!numeric) return invalid_argument("filter: range on non-numeric field '" + f.field + "'");
        for (const auto* b : {&f.gt, &f.gte, &f.lt, &f.lte}) {
            if (*b && std::isnan(**b)) return invalid_argument("filter: range bound is NaN");
        }
        return ok_status();
    }
    if (f.op == Op::kExists) {
        if (!f.values.empty()) return invalid_argument("filter: exists takes no value");
        return ok_status();
    }
    if (f.op == Op::kPrefix) {
        if (spec->type != FieldType::kKeyword && spec->type != FieldType::kKeywordList) {
            return invalid_argument("filter: prefix on field '" + f.field + "', which is not a keyword field");
        }
        const auto* p = f.values.size() == 1 ? std::get_if<std::string>(&f.values[0]) : nullptr;
        if (p == nullptr) return invalid_argument("filter: prefix takes one string");
        if (p->size() > kMaxFilterPrefixBytes) {
            return invalid_argument("filter: prefix longer than " + std::to_string(kMaxFilterPrefixBytes) + " bytes");
        }
        return ok_status();
    }
    if ((f.op == Op::kEq || f.op == Op::kNe) && f.values.size() != 1) {
        return invalid_argument(std::string("filter: ") + (f.op == Op::kEq ? "eq" : "ne") + " takes one value");
    }
    budget.values += f.values.size();
    if (budget.values > kMaxFilterValues) {
        return invalid_argument("filter has more than " + std::to_string(kMaxFilterValues) + " values");
    }
    for (const auto& v : f.values) {
        double d = 0;
        const bool ok = numeric ? as_number(v, d)
                        : spec->type == FieldType::kBool ? std::holds_alternative<bool>(v)
                                                         : std::holds_alternative<std::string>(v);
        if (!ok) return invalid_argument("filter: value type does not match field '" + f.field + "'");
        if (numeric && std::isnan(d)) return invalid_argument("filter: value is NaN");
    }
    return ok_status();
}

bool has_prefix(const FieldValue& stored, const std::string& prefix) {
    auto starts = [&](const std::string& s) { return s.compare(0, prefix.size(), prefix) == 0; };
    if (const auto* s = std::get_if<std::string>(&stored)) return starts(*s);
    if (const auto* list = std::get_if<std::vector<std::string>>(&stored)) {
        for (const auto& e : *list) {
            if (starts(e)) return true;
        }
    }
    return false;
}

}  // namespace

Status Filter::validate(const Schema& schema) const {
    FilterBudget budget;
    return validate_filter(*this, schema, 0, budget);
}

bool Filter::matches(const std::map<std::string, FieldValue, std::less<>>& fields) const {
    switch (op) {
        case Op::kAnd:
            for (const auto& c : children) {
                if (!c.matches(fields)) return false;
            }
            return true;
        case Op::kOr:
            for (const auto& c : children) {
                if (c.matches(fields)) return true;
            }
            return false;
        case Op::kNot: return !children.empty() && !children[0].matches(fields);
        default: break;
    }
    const auto it = fields.find(field);
    if (it == fields.end() || std::holds_alternative<std::monostate>(it->second)) return false;
    const FieldValue& stored = it->second;
    switch (op) {
        case Op::kExists: return true;
        case Op::kPrefix: return !values.empty() && has_prefix(stored, std::get<std::string>(values[0]));
        case Op::kNe: return !values.empty() && !value_equals(stored, values[0]);
        case Op::kRange: {
            double x = 0;
            if (!as_number(stored, x)) return false;
            if (gt && !(x > *gt)) return false;
            if (gte && !(x >= *gte)) return false;
            if (lt && !(x < *lt)) return false;
            if (lte && !(x <= *lte)) return false;
            return true;
        }
        default: break;
    }
    for (const auto& v : values) {
        if (value_equals(stored, v)) return true;
    }
    return false;
}

// ---- byte encodings -------------------------------------------------------------------------------

void encode_value(ByteWriter& w, const FieldValue& v) {
    w.u8(static_cast<std::uint8_t>(v.index()));
    switch (v.index()) {
        case 0: break;
        case 1: w.str(std::get<1>(v)); break;
        case 2: w.u64(static_cast<std::uint64_t>(std::get<2>(v))); break;
        case 3: w.f64(std::get<3>(v)); break;
        case 4: w.u8(std::get<4>(v) ? 1 : 0); break;
        case 5: {
            const auto& l = std::get<5>(v);
            w.u32(static_cast<std::uint32_t>(l.size()));
            for (const auto& s : l) w.str(s);
            break;
        }
        case 6: {
            const auto& f = std::get<6>(v);
            w.u32(static_cast<std::uint32_t>(f.size()));
            w.raw(f.data(), f.size() * sizeof(float));
            break;
        }
        case 7: {
            const auto& sp = std::get<7>(v);
            w.u32(static_cast<std::uint32_t>(sp.size()));
            for (const auto& [term, weight] : sp) {
                w.str(term);
                w.f32(weight);
            }
            break;
        }
        case 8: {  // token vectors: u32 dim, u32 rows, rows * dim f32
            const auto& tv = std::get<8>(v);
            w.u32(static_cast<std::uint32_t>(tv.dim));
            w.u32(static_cast<std::uint32_t>(tv.rows()));
            w.raw(tv.values.data(), tv.rows() * tv.dim * sizeof(float));
            break;
        }
        default: break;
    }
}

Result<FieldValue> decode_value(ByteReader& r) {
    QUIVER_ASSIGN_OR_RETURN(std::uint8_t tag, r.u8());
    switch (tag) {
        case 0: return FieldValue{};
        case 1: {
            QUIVER_ASSIGN_OR_RETURN(std::string s, r.str());
            return FieldValue{std::move(s)};
        }
        case 2: {
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t x, r.u64());
            return FieldValue{static_cast<std::int64_t>(x)};
        }
        case 3: {
            QUIVER_ASSIGN_OR_RETURN(double x, r.f64());
            return FieldValue{x};
        }
        case 4: {
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t x, r.u8());
            return FieldValue{x != 0};
        }
        case 5: {
            QUIVER_ASSIGN_OR_RETURN(std::uint32_t n, r.u32());
            if (n > r.remaining() / 4) return data_loss("keyword list longer than its record");
            std::vector<std::string> l;
            l.reserve(n);
            for (std::uint32_t i = 0; i < n; ++i) {
                QUIVER_ASSIGN_OR_RETURN(std::string s, r.str());
                l.push_back(std::move(s));
            }
            return FieldValue{std::move(l)};
        }
        case 6: {
            QUIVER_ASSIGN_OR_RETURN(std::uint32_t n, r.u32());
            if (n > r.remaining() / 4) return data_loss("vector longer than its record");
            std::vector<float> f(n);
            QUIVER_TRY(r.raw(f.data(), n * sizeof(float)));
            return FieldValue{std::move(f)};
        }
        case 7: {
            QUIVER_ASSIGN_OR_RETURN(std::uint32_t n, r.u32());
            if (n > r.remaining() / 8) return data_loss("sparse vector longer than its record");
            SparseTerms sp;
            sp.reserve(n);
            for (std::uint32_t i = 0; i < n; ++i) {
                QUIVER_ASSIGN_OR_RETURN(std::string term, r.str());
                QUIVER_ASSIGN_OR_RETURN(float weight, r.f32());
                sp.emplace_back(std::move(term), weight);
            }
            return FieldValue{std::move(sp)};
        }
        case 8: {
            QUIVER_ASSIGN_OR_RETURN(std::uint32_t dim, r.u32());
            QUIVER_ASSIGN_OR_RETURN(std::uint32_t rows, r.u32());
            // Token vectors of multi_vector fields, or the chunk vectors of a chunked vector field.
            if (dim == 0 || dim > 65536 || rows > std::max(kMaxTokenVectors, kMaxChunksPerDocument)) {
                return data_loss("token vectors of " + std::to_string(rows) + " x " + std::to_string(dim));
            }
            const std::size_t n = static_cast<std::size_t>(rows) * dim;
            if (n > r.remaining() / 4) return data_loss("token vectors longer than their record");
            TokenVectors tv;
            tv.dim = dim;
            tv.values.resize(n);
            QUIVER_TRY(r.raw(tv.values.data(), n * sizeof(float)));
            return FieldValue{std::move(tv)};
        }
        default: return data_loss("unknown value tag " + std::to_string(tag));
    }
}

void encode_document(ByteWriter& w, const Document& doc) {
    w.str(doc.id);
    w.u32(static_cast<std::uint32_t>(doc.fields.size()));
    for (const auto& [name, v] : doc.fields) {
        w.str(name);
        encode_value(w, v);
    }
}

Result<Document> decode_document(ByteReader& r) {
    Document d;
    QUIVER_ASSIGN_OR_RETURN(d.id, r.str());
    QUIVER_ASSIGN_OR_RETURN(std::uint32_t n, r.u32());
    if (n > r.remaining() / 5) return data_loss("document has more fields than bytes");
    for (std::uint32_t i = 0; i < n; ++i) {
        QUIVER_ASSIGN_OR_RETURN(std::string name, r.str());
        QUIVER_ASSIGN_OR_RETURN(FieldValue v, decode_value(r));
        d.fields.emplace(std::move(name), std::move(v));
    }
    return d;
}

namespace {

// A MUVERA field whose parameters differ from what fields stored before them use (flag bit 6).
bool writes_muvera_params(const FieldSpec& f) {
    return f.type == FieldType::kMultiVector && f.mv_index == MultiVectorIndexKind::kMuvera &&
           f.muvera != MuveraFieldParams::legacy();
}

}  // namespace

void encode_schema(ByteWriter& w, const Schema& s) {
    w.f32(s.bm25_k1);
    w.f32(s.bm25_b);
    w.u32(static_cast<std::uint32_t>(s.fields.size()));
    for (const auto& f : s.fields) {
        w.str(f.name);
        w.u8(static_cast<std::uint8_t>(f.type));
        // bit 0: text `indexed`; bit 1: attribute `payload_index` (older files have only bit 0);
        // bit 2: vector storage options (quantization, on_disk) follow the encoder;
        // bit 3: chunking follows everything else (MANIFEST version 3);
        // bit 4: a multi_vector token codec byte follows the index kind (set only when not float32);
        // bit 5: a u64 vector memory budget follows everything else (MANIFEST version 4)
        // bit 6: MUVERA parameters follow the token codec (MANIFEST version 4; set only when they are
        //        not MuveraFieldParams::legacy(), so older collections write the bytes they always did)
        const bool storage_opts = f.quantization.enabled() || f.on_disk;
        const bool token_codec = f.token_codec != multivector::TokenCodec::kFloat32;
        const bool muvera_opts = writes_muvera_params(f);
        w.u8(static_cast<std::uint8_t>((f.indexed ? 1 : 0) | (f.payload_index ? 2 : 0) | (storage_opts ? 4 : 0) |
                                       (f.chunking ? 8 : 0) | (token_codec ? 16 : 0) | (f.memory_budget != 0 ? 32 : 0) |
                                       (muvera_opts ? 64 : 0)));
        w.u32(static_cast<std::uint32_t>(f.sources.size()));
        for (const auto& src : f.sources) w.str(src);
        w.u64(f.dim);
        w.u8(static_cast<std::uint8_t>(f.metric));
        w.u8(static_cast<std::uint8_t>(f.index));
        w.u64(f.hnsw_m);
        w.u64(f.hnsw_ef_construction);
        w.str(f.encoder);
        if (storage_opts) {
            w.u8(static_cast<std::uint8_t>(f.quantization.codec.kind));
            w.u32(f.quantization.codec.m);
            w.u32(f.quantization.codec.bits);
            w.u64(f.quantization.rescore);
            w.u64(f.quantization.nlist);
            w.u64(f.quantization.nprobe);
            w.u8(f.on_disk ? 1 : 0);
        }
        // Multi-vector fields (MANIFEST version 2, schema_version): one more byte, the index kind.
        if (f.type == FieldType::kMultiVector) w.u8(static_cast<std::uint8_t>(f.mv_index));
        if (token_codec) w.u8(static_cast<std::uint8_t>(f.token_codec));
        // MUVERA parameters (MANIFEST version 4): u8 FDE layout (0 hnsw, 1 blocks), u64 k_sim, d_proj,
        // r_reps, candidates.
        if (muvera_opts) {
            w.u8(static_cast<std::uint8_t>(f.muvera.fde));
            w.u64(f.muvera.k_sim);
            w.u64(f.muvera.d_proj);
            w.u64(f.muvera.r_reps);
            w.u64(f.muvera.candidates);
        }
        // Chunked text fields (MANIFEST version 3) and chunked vector fields (version 4): u8 unit,
        // u64 size, u64 overlap, u8 situated, u64 context, u8 aggregation.
        if (f.chunking) {
            w.u8(static_cast<std::uint8_t>(f.chunking->unit));
            w.u64(f.chunking->size);
            w.u64(f.chunking->overlap);
            w.u8(f.chunking->situated ? 1 : 0);
            w.u64(f.chunking->context);
            w.u8(static_cast<std::uint8_t>(f.chunking->aggregation));
        }
        if (f.memory_budget != 0) w.u64(f.memory_budget);
    }
}

std::uint32_t schema_version(const Schema& s) {
    for (const auto& f : s.fields) {
        if (f.memory_budget != 0 || writes_muvera_params(f) || (f.chunking && f.type == FieldType::kVector)) return 4;
    }
    for (const auto& f : s.fields) {
        if (f.chunking) return 3;
    }
    for (const auto& f : s.fields) {
        if (f.quantization.enabled() || f.on_disk) return 2;
        if (f.type == FieldType::kMultiVector || (f.type == FieldType::kSparse && !f.encoder.empty())) return 2;
    }
    return 1;
}

Result<Schema> decode_schema(ByteReader& r) {
    Schema s;
    QUIVER_ASSIGN_OR_RETURN(s.bm25_k1, r.f32());
    QUIVER_ASSIGN_OR_RETURN(s.bm25_b, r.f32());
    QUIVER_ASSIGN_OR_RETURN(std::uint32_t n, r.u32());
    if (n > 256) return data_loss("schema with " + std::to_string(n) + " fields");
    for (std::uint32_t i = 0; i < n; ++i) {
        FieldSpec f;
        QUIVER_ASSIGN_OR_RETURN(f.name, r.str());
        QUIVER_ASSIGN_OR_RETURN(std::uint8_t type, r.u8());
        if (type >= kTypeCount) return data_loss("schema field type " + std::to_string(type));
        f.type = static_cast<FieldType>(type);
        QUIVER_ASSIGN_OR_RETURN(std::uint8_t indexed, r.u8());
        if (indexed > 127) return data_loss("schema field flags " + std::to_string(indexed));
        f.indexed = (indexed & 1) != 0;
        f.payload_index = (indexed & 2) != 0;
        QUIVER_ASSIGN_OR_RETURN(std::uint32_t ns, r.u32());
        if (ns > 2) return data_loss("schema field with " + std::to_string(ns) + " sources");
        for (std::uint32_t j = 0; j < ns; ++j) {
            QUIVER_ASSIGN_OR_RETURN(std::string src, r.str());
            f.sources.push_back(std::move(src));
        }
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t dim, r.u64());
        f.dim = dim;
        QUIVER_ASSIGN_OR_RETURN(std::uint8_t metric, r.u8());
        if (metric > 2) return data_loss("schema metric " + std::to_string(metric));
        f.metric = static_cast<simd::Metric>(metric);
        QUIVER_ASSIGN_OR_RETURN(std::uint8_t kind, r.u8());
        if (kind > 1) return data_loss("schema index kind " + std::to_string(kind));
        f.index = static_cast<VectorIndexKind>(kind);
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t m, r.u64());
        f.hnsw_m = m;
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t efc, r.u64());
        f.hnsw_ef_construction = efc;
        QUIVER_ASSIGN_OR_RETURN(f.encoder, r.str());
        if ((indexed & 4) != 0) {
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t codec, r.u8());
            if (codec > static_cast<std::uint8_t>(index::CodecKind::kBinary)) {
                return data_loss("schema codec " + std::to_string(codec));
            }
            f.quantization.codec.kind = static_cast<index::CodecKind>(codec);
            QUIVER_ASSIGN_OR_RETURN(f.quantization.codec.m, r.u32());
            QUIVER_ASSIGN_OR_RETURN(f.quantization.codec.bits, r.u32());
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t rescore, r.u64());
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t nlist, r.u64());
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t nprobe, r.u64());
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t on_disk, r.u8());
            if (on_disk > 1) return data_loss("schema on_disk flag " + std::to_string(on_disk));
            f.quantization.rescore = rescore;
            f.quantization.nlist = nlist;
            f.quantization.nprobe = nprobe;
            f.on_disk = on_disk != 0;
        }
        if (f.type == FieldType::kMultiVector) {
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t mv, r.u8());
            if (mv > 1) return data_loss("schema multi-vector index kind " + std::to_string(mv));
            f.mv_index = static_cast<MultiVectorIndexKind>(mv);
            // Without parameters (flag bit 6) a MUVERA field is one stored before they existed.
            if (f.mv_index == MultiVectorIndexKind::kMuvera && (indexed & 64) == 0) {
                f.muvera = MuveraFieldParams::legacy();
            }
        }
        if ((indexed & 16) != 0) {
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t codec, r.u8());
            if (f.type != FieldType::kMultiVector || codec != static_cast<std::uint8_t>(multivector::TokenCodec::kInt8)) {
                return data_loss("schema token codec " + std::to_string(codec));
            }
            f.token_codec = multivector::TokenCodec::kInt8;
        }
        if ((indexed & 64) != 0) {
            if (f.type != FieldType::kMultiVector || f.mv_index != MultiVectorIndexKind::kMuvera) {
                return data_loss("schema MUVERA parameters on field '" + f.name + "', which is not a MUVERA field");
            }
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t fde, r.u8());
            if (fde > 1) return data_loss("schema MUVERA FDE layout " + std::to_string(fde));
            f.muvera.fde = static_cast<MuveraFdeKind>(fde);
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t k_sim, r.u64());
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t d_proj, r.u64());
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t r_reps, r.u64());
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t candidates, r.u64());
            // Sanity bounds (validate() below checks the exact ranges).
            if (k_sim > 64 || d_proj > (1u << 20) || r_reps > (1u << 20) || candidates > (1u << 30)) {
                return data_loss("schema MUVERA parameters out of range on field '" + f.name + "'");
            }
            f.muvera.k_sim = k_sim;
            f.muvera.d_proj = d_proj;
            f.muvera.r_reps = r_reps;
            f.muvera.candidates = candidates;
        }
        if ((indexed & 8) != 0) {
            pipeline::ChunkingSpec c;
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t unit, r.u8());
            if (unit > 1) return data_loss("schema chunking unit " + std::to_string(unit));
            c.unit = static_cast<pipeline::ChunkUnit>(unit);
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t size, r.u64());
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t overlap, r.u64());
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t situated, r.u8());
            if (situated > 1) return data_loss("schema chunking situated flag " + std::to_string(situated));
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t context, r.u64());
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t aggregation, r.u8());
            if (aggregation > 2) return data_loss("schema chunking aggregation " + std::to_string(aggregation));
            c.size = size;
            c.overlap = overlap;
            c.situated = situated != 0;
            c.context = context;
            c.aggregation = static_cast<pipeline::ChunkAggregation>(aggregation);
            f.chunking = c;
        }
        if ((indexed & 32) != 0) {
            QUIVER_ASSIGN_OR_RETURN(f.memory_budget, r.u64());
            if (f.memory_budget == 0) return data_loss("schema memory budget 0");
        }
        s.fields.push_back(std::move(f));
    }
    if (auto st = s.validate(); !st) return data_loss("stored schema is invalid: " + st.error().message());
    return s;
}

}  // namespace quiver::engine
