// JSON <-> engine values. All semantics of request bodies live here and in api.cpp.
#include "quiver/server/json_codec.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <map>

#include "quiver/index/memory_budget.h"
#include "quiver/pipeline/chunking.h"
#include "quiver/pipeline/pipeline_file.h"
#include "quiver/storage/file_format.h"

namespace quiver::server {
namespace {

using engine::FieldType;
using json::Value;

Error bad(std::string m) { return invalid_argument(std::move(m)); }

Result<std::string> id_from_json(const Value& v, std::string_view what) {
    if (v.is_string()) return v.as_string();
    if (v.is_integer()) return std::to_string(v.as_int());
    return bad(std::string(what) + " must be a string or an integer");
}

Result<std::size_t> get_size(const Value& obj, std::string_view key, std::size_t fallback, std::size_t max) {
    const Value* v = obj.find(key);
    if (v == nullptr) return fallback;
    if (!v->is_integer() || v->as_int() < 0 || static_cast<std::uint64_t>(v->as_int()) > max) {
        return bad("'" + std::string(key) + "' must be an integer in 0.." + std::to_string(max));
    }
    return static_cast<std::size_t>(v->as_int());
}

Result<engine::FieldValue> scalar_from_json(const Value& v) {
    if (v.is_string()) return engine::FieldValue{v.as_string()};
    if (v.is_bool()) return engine::FieldValue{v.as_bool()};
    if (v.is_integer()) return engine::FieldValue{static_cast<std::int64_t>(v.as_int())};
    if (v.is_number()) return engine::FieldValue{v.as_number()};
    return bad("filter values must be strings, numbers or booleans");
}

Result<std::vector<float>> floats_from_json(const Value& v, std::string_view what) {
    if (!v.is_array()) return bad(std::string(what) + " must be an array of numbers");
    std::vector<float> out;
    out.reserve(v.as_array().size());
    for (const Value& x : v.as_array()) {
        if (!x.is_number()) return bad(std::string(what) + " must be an array of numbers");
        const double d = x.as_number();
        if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
            return bad(std::string(what) + " has a non-finite or out-of-range value");
        }
        out.push_back(static_cast<float>(d));
    }
    return out;
}

// {"term": weight, ...}
Result<engine::SparseTerms> sparse_from_json(const Value& v, std::string_view what) {
    if (!v.is_object()) return bad(std::string(what) + " must be an object of term: weight");
    engine::SparseTerms out;
    for (const auto& [term, w] : v.as_object()) {
        if (!w.is_number() || !std::isfinite(w.as_number()) || std::fabs(w.as_number()) > 1e30) {
            return bad(std::string(what) + ": the weight of '" + term + "' must be a finite number");
        }
        out.emplace_back(term, static_cast<float>(w.as_number()));
    }
    return out;
}

// [[...], [...], ...]: token vectors of one dimension (a multi_vector value or query; with
// `max_rows` kMaxChunksPerDocument, a chunked vector field's chunk vectors).
Result<engine::TokenVectors> tokens_from_json(const Value& v, std::string_view what,
                                              std::size_t max_rows = engine::kMaxTokenVectors) {
    if (!v.is_array()) return bad(std::string(what) + " must be an array of token vectors (arrays of numbers)");
    engine::TokenVectors out;
    for (const Value& row : v.as_array()) {
        QUIVER_ASSIGN_OR_RETURN(auto r, floats_from_json(row, what));
        if (r.empty()) return bad(std::string(what) + " has an empty token vector");
        if (out.dim == 0) out.dim = r.size();
        if (r.size() != out.dim) return bad(std::string(what) + " mixes token vectors of different dimensions");
        if (out.values.size() / out.dim >= max_rows) {
            return bad(std::string(what) + " has more than " + std::to_string(max_rows) + " rows");
        }
        out.values.insert(out.values.end(), r.begin(), r.end());
    }
    return out;
}

Result<std::vector<std::string>> sources_from_json(const Value& src) {
    if (!src.is_array()) return bad("\"sources\" must be an array of field names");
    std::vector<std::string> out;
    for (const Value& x : src.as_array()) {
        if (!x.is_string()) return bad("\"sources\" must be an array of field names");
        out.push_back(x.as_string());
    }
    return out;
}

// A text field's "chunking": an object {"unit", "size", "overlap", "situated", "context", "aggregation"}
// (any subset; the defaults of pipeline/chunking.h) or the `quiver eval --chunking` string.
Result<pipeline::ChunkingSpec> chunking_from_json(const Value& v, const std::string& where) {
    std::string text;
    if (v.is_string()) {
        text = v.as_string();
    } else if (v.is_object()) {
        QUIVER_TRY(check_keys(v, {"unit", "size", "overlap", "situated", "context", "aggregation"}, where + " chunking"));
        const Value* unit = v.find("unit");
        if (unit != nullptr && !unit->is_string()) return bad(where + ": chunking \"unit\" must be \"tokens\" or \"sentences\"");
        text = unit != nullptr ? unit->as_string() : "tokens";
        std::string params;
        auto add = [&](const std::string& p) { params += (params.empty() ? ":" : ",") + p; };
        for (const char* key : {"size", "overlap", "context"}) {
            if (v.find(key) == nullptr) continue;
            QUIVER_ASSIGN_OR_RETURN(std::size_t x, get_size(v, key, 0, engine::kMaxChunkUnits));
            add(std::string(key) + "=" + std::to_string(x));
        }
        if (const Value* s = v.find("situated")) {
            if (!s->is_bool()) return bad(where + ": chunking \"situated\" must be a boolean");
            add(std::string("situated=") + (s->as_bool() ? "1" : "0"));
        }
        if (const Value* a = v.find("aggregation")) {
            if (!a->is_string()) return bad(where + ": chunking \"aggregation\" must be \"maxp\", \"firstp\" or \"sump\"");
            add("aggregate=" + a->as_string());
        }
        text += params;
    } else {
        return bad(where + ": \"chunking\" must be an object (unit, size, overlap, situated, context, aggregation) or a "
                           "spec string such as \"tokens:size=128,overlap=32\"");
    }
    auto spec = pipeline::parse_chunking(text);
    if (!spec) return bad(where + ": chunking: " + spec.error().message());
    return *spec;
}

Value chunking_to_json(const pipeline::ChunkingSpec& c) {
    Value o = Value::object();
    o.set("unit", Value::string(std::string(pipeline::to_string(c.unit))));
    o.set("size", Value::number(static_cast<double>(c.size)));
    o.set("overlap", Value::number(static_cast<double>(c.overlap)));
    o.set("situated", Value::boolean(c.situated));
    o.set("context", Value::number(static_cast<double>(c.context)));
    o.set("aggregation", Value::string(std::string(pipeline::to_string(c.aggregation))));
    return o;
}

// A multi_vector field's MUVERA options ("fde", "k_sim", "d_proj", "r_reps", "candidates"); the
// defaults are engine::MuveraFieldParams'. Refused on an exact field (they would do nothing).
Status muvera_from_json(const Value& f, const std::string& where, engine::FieldSpec& spec) {
    engine::MuveraFieldParams& p = spec.muvera;
    bool given = false;
    for (const char* key : {"fde", "k_sim", "d_proj", "r_reps", "candidates"}) given = given || f.find(key) != nullptr;
    if (!given) return ok_status();
    if (spec.mv_index != engine::MultiVectorIndexKind::kMuvera) {
        return bad(where + ": \"fde\", \"k_sim\", \"d_proj\", \"r_reps\" and \"candidates\" are options of \"index\": \"muvera\"");
    }
    if (const Value* fde = f.find("fde")) {
        if (!fde->is_string() || (fde->as_string() != "blocks" && fde->as_string() != "hnsw")) {
            return bad(where + ": \"fde\" must be \"blocks\" or \"hnsw\"");
        }
        p.fde = fde->as_string() == "hnsw" ? engine::MuveraFdeKind::kHnsw : engine::MuveraFdeKind::kBlocks;
    }
    QUIVER_ASSIGN_OR_RETURN(p.k_sim, get_size(f, "k_sim", p.k_sim, 10));
    QUIVER_ASSIGN_OR_RETURN(p.d_proj, get_size(f, "d_proj", p.d_proj, 256));
    QUIVER_ASSIGN_OR_RETURN(p.r_reps, get_size(f, "r_reps", p.r_reps, 64));
    QUIVER_ASSIGN_OR_RETURN(p.candidates, get_size(f, "candidates", p.candidates, engine::kMaxMuveraCandidates));
    return ok_status();
}

Value sources_to_json(const std::vector<std::string>& sources) {
    Value src = Value::array();
    for (const auto& x : sources) src.as_array().push_back(Value::string(x));
    return src;
}

}  // namespace

Status check_keys(const Value& v, std::initializer_list<std::string_view> allowed, std::string_view where) {
    if (!v.is_object()) return ok_status();
    for (const auto& [key, value] : v.as_object()) {
        if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
            std::string list;
            for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            return bad("unknown key '" + key + "' in " + std::string(where) + " (allowed: " + list + ")");
        }
    }
    return ok_status();
}

Result<std::string> document_id_from_json(const Value& v) { return id_from_json(v, "a document id"); }

Result<engine::Schema> schema_from_json(const Value& v) {
    if (!v.is_object()) return bad("schema must be a JSON object with \"fields\"");
    QUIVER_TRY(check_keys(v, {"fields", "bm25"}, "the schema"));
    engine::Schema s;
    const Value* fields = v.find("fields");
    if (fields == nullptr || !fields->is_array()) return bad("schema needs a \"fields\" array");
    for (const Value& f : fields->as_array()) {
        if (!f.is_object()) return bad("each field must be an object");
        engine::FieldSpec spec;
        const Value* name = f.find("name");
        const Value* type = f.find("type");
        if (name == nullptr || !name->is_string()) return bad("each field needs a string \"name\"");
        if (type == nullptr || !type->is_string()) return bad("field '" + name->as_string() + "' needs a \"type\"");
        spec.name = name->as_string();
        QUIVER_ASSIGN_OR_RETURN(spec.type, engine::parse_field_type(type->as_string()));
        const std::string where = "field '" + spec.name + "'";
        if (spec.type == FieldType::kText) {
            QUIVER_TRY(check_keys(f, {"name", "type", "indexed", "sources", "chunking"}, where));
            if (const Value* c = f.find("chunking")) {
                QUIVER_ASSIGN_OR_RETURN(spec.chunking, chunking_from_json(*c, where));
            }
        } else if (spec.type == FieldType::kVector) {
            QUIVER_TRY(check_keys(f, {"name", "type", "dim", "metric", "index", "m", "ef_construction", "encoder", "sources",
                                      "quantization", "on_disk", "memory_budget", "chunking"},
                                  where));
            if (const Value* c = f.find("chunking")) {  // needs an encoder (Schema::validate says so)
                QUIVER_ASSIGN_OR_RETURN(spec.chunking, chunking_from_json(*c, where));
            }
        } else if (spec.type == FieldType::kMultiVector) {
            QUIVER_TRY(check_keys(f, {"name", "type", "dim", "index", "m", "ef_construction", "encoder", "sources",
                                      "token_codec", "fde", "k_sim", "d_proj", "r_reps", "candidates"},
                                  where));
        } else if (spec.type == FieldType::kSparse && (f.find("encoder") != nullptr || f.find("sources") != nullptr)) {
            QUIVER_TRY(check_keys(f, {"name", "type", "encoder", "sources"}, where));
        } else {
            QUIVER_TRY(check_keys(f, {"name", "type", "index"}, where));
            if (const Value* ix = f.find("index")) {
                if (!ix->is_bool()) return bad(where + ": \"index\" must be a boolean (build a payload index)");
                spec.payload_index = ix->as_bool();
            }
        }
        if (const Value* idx = f.find("indexed")) {
            if (!idx->is_bool()) return bad("\"indexed\" must be a boolean");
            spec.indexed = idx->as_bool();
        }
        if (const Value* src = f.find("sources")) {
            QUIVER_ASSIGN_OR_RETURN(spec.sources, sources_from_json(*src));
        }
        if (spec.type == FieldType::kMultiVector) {
            QUIVER_ASSIGN_OR_RETURN(spec.dim, get_size(f, "dim", 0, engine::kMaxTokenDim));
            if (const Value* k = f.find("index")) {
                if (!k->is_string() || (k->as_string() != "exact" && k->as_string() != "muvera")) {
                    return bad(where + ": \"index\" must be \"exact\" or \"muvera\"");
                }
                spec.mv_index = k->as_string() == "exact" ? engine::MultiVectorIndexKind::kExact
                                                          : engine::MultiVectorIndexKind::kMuvera;
            }
            if (const Value* tc = f.find("token_codec")) {
                auto codec = multivector::parse_token_codec(tc->is_string() ? tc->as_string() : std::string());
                if (!tc->is_string() || !codec) return bad(where + ": \"token_codec\" must be \"float32\" or \"int8\"");
                spec.token_codec = *codec;
            }
            QUIVER_ASSIGN_OR_RETURN(spec.hnsw_m, get_size(f, "m", spec.hnsw_m, 256));
            QUIVER_ASSIGN_OR_RETURN(spec.hnsw_ef_construction,
                                    get_size(f, "ef_construction", spec.hnsw_ef_construction, 4096));
            QUIVER_TRY(muvera_from_json(f, where, spec));
        }
        if (spec.type == FieldType::kSparse || spec.type == FieldType::kMultiVector) {
            if (const Value* e = f.find("encoder")) {
                if (!e->is_string() || e->as_string().empty()) return bad(where + ": \"encoder\" must be a model directory");
                spec.encoder = e->as_string();
            }
        }
        if (spec.type == FieldType::kVector) {
            QUIVER_ASSIGN_OR_RETURN(spec.dim, get_size(f, "dim", 0, 65536));
            if (const Value* m = f.find("metric")) {
                if (!m->is_string()) return bad("\"metric\" must be a string");
                auto metric = simd::parse_metric(m->as_string());
                if (!metric) return bad("unknown metric '" + m->as_string() + "' (l2, ip, cosine)");
                spec.metric = *metric;
            }
            if (const Value* k = f.find("index")) {
                if (!k->is_string() || (k->as_string() != "flat" && k->as_string() != "hnsw")) {
                    return bad("\"index\" must be \"flat\" or \"hnsw\"");
                }
                spec.index = k->as_string() == "flat" ? engine::VectorIndexKind::kFlat : engine::VectorIndexKind::kHnsw;
            }
            QUIVER_ASSIGN_OR_RETURN(spec.hnsw_m, get_size(f, "m", spec.hnsw_m, 256));
            QUIVER_ASSIGN_OR_RETURN(spec.hnsw_ef_construction,
                                    get_size(f, "ef_construction", spec.hnsw_ef_construction, 4096));
            if (const Value* e = f.find("encoder")) {
                if (!e->is_string() || e->as_string().empty()) {
                    return bad("\"encoder\" must be \"hashing\" or a model directory");
                }
                spec.encoder = e->as_string();
            }
            if (const Value* q = f.find("quantization")) {
                if (!q->is_object()) return bad(where + ": \"quantization\" must be an object with a \"codec\"");
                QUIVER_TRY(check_keys(*q, {"codec", "rescore", "nlist", "nprobe"}, where + " quantization"));
                const Value* codec = q->find("codec");
                if (codec == nullptr || !codec->is_string()) {
                    return bad(where + ": quantization needs a \"codec\" string (sq8, sq4, pq<M>x<4|8>, rabitq<1|2|4|8>, binary<1..8>)");
                }
                auto parsed = index::CodecSpec::parse(codec->as_string());
                if (!parsed) return bad(where + ": " + parsed.error().message());
                if (parsed->kind == index::CodecKind::kNone) return bad(where + ": quantization needs a codec other than none");
                spec.quantization.codec = *parsed;
                QUIVER_ASSIGN_OR_RETURN(spec.quantization.rescore, get_size(*q, "rescore", 0, 65536));
                QUIVER_ASSIGN_OR_RETURN(spec.quantization.nlist, get_size(*q, "nlist", 0, 65536));
                QUIVER_ASSIGN_OR_RETURN(spec.quantization.nprobe, get_size(*q, "nprobe", 0, 65536));
            }
            if (const Value* d = f.find("on_disk")) {
                if (!d->is_bool()) return bad(where + ": \"on_disk\" must be a boolean");
                spec.on_disk = d->as_bool();
            }
            if (const Value* b = f.find("memory_budget")) {
                // Bytes, or a size with units ("1GiB", "512MiB", "2GB").
                if (b->is_number()) {
                    const double x = b->as_number();
                    if (!(x >= 1 && x <= 1e18) || x != std::floor(x)) {
                        return bad(where + ": \"memory_budget\" must be a positive whole number of bytes or a size such as \"1GiB\"");
                    }
                    spec.memory_budget = static_cast<std::uint64_t>(x);
                } else if (b->is_string()) {
                    auto bytes = index::parse_byte_size(b->as_string());
                    if (!bytes) return bad(where + ": \"memory_budget\" " + bytes.error().message());
                    spec.memory_budget = *bytes;
                } else {
                    return bad(where + ": \"memory_budget\" must be bytes or a size such as \"1GiB\"");
                }
            }
        }
        s.fields.push_back(std::move(spec));
    }
    if (const Value* bm = v.find("bm25")) {
        if (!bm->is_object()) return bad("\"bm25\" must be an object");
        QUIVER_TRY(check_keys(*bm, {"k1", "b"}, "\"bm25\""));
        if (const Value* k1 = bm->find("k1")) {
            if (!k1->is_number()) return bad("bm25 k1 must be a number");
            s.bm25_k1 = static_cast<float>(k1->as_number());
        }
        if (const Value* b = bm->find("b")) {
            if (!b->is_number()) return bad("bm25 b must be a number");
            s.bm25_b = static_cast<float>(b->as_number());
        }
    }
    QUIVER_TRY(s.validate());
    return s;
}

Value schema_to_json(const engine::Schema& s) {
    Value fields = Value::array();
    for (const auto& f : s.fields) {
        Value o = Value::object();
        o.set("name", Value::string(f.name));
        o.set("type", Value::string(std::string(engine::to_string(f.type))));
        if (f.type == FieldType::kText) {
            o.set("indexed", Value::boolean(f.indexed));
            if (!f.sources.empty()) {
                Value src = Value::array();
                for (const auto& x : f.sources) src.as_array().push_back(Value::string(x));
                o.set("sources", std::move(src));
            }
            if (f.chunking) o.set("chunking", chunking_to_json(*f.chunking));
        }
        if (f.payload_index) o.set("index", Value::boolean(true));
        if (f.type == FieldType::kSparse || f.type == FieldType::kMultiVector) {
            if (f.type == FieldType::kMultiVector) {
                o.set("dim", Value::number(static_cast<double>(f.dim)));
                const bool muvera = f.mv_index == engine::MultiVectorIndexKind::kMuvera;
                o.set("index", Value::string(muvera ? "muvera" : "exact"));
                if (f.token_codec != multivector::TokenCodec::kFloat32) {
                    o.set("token_codec", Value::string(std::string(multivector::to_string(f.token_codec))));
                }
                if (muvera) {
                    const engine::MuveraFieldParams& p = f.muvera;
                    const bool hnsw = p.fde == engine::MuveraFdeKind::kHnsw;
                    o.set("fde", Value::string(hnsw ? "hnsw" : "blocks"));
                    o.set("k_sim", Value::number(static_cast<double>(p.k_sim)));
                    o.set("d_proj", Value::number(static_cast<double>(p.d_proj)));
                    o.set("r_reps", Value::number(static_cast<double>(p.r_reps)));
                    o.set("candidates", Value::number(static_cast<double>(p.candidates)));
                    if (hnsw) {
                        o.set("m", Value::number(static_cast<double>(f.hnsw_m)));
                        o.set("ef_construction", Value::number(static_cast<double>(f.hnsw_ef_construction)));
                    }
                }
            }
            if (!f.encoder.empty()) o.set("encoder", Value::string(f.encoder));
            if (!f.sources.empty()) o.set("sources", sources_to_json(f.sources));
        }
        if (f.type == FieldType::kVector) {
            o.set("dim", Value::number(static_cast<double>(f.dim)));
            o.set("metric", Value::string(std::string(simd::to_string(f.metric))));
            o.set("index", Value::string(f.index == engine::VectorIndexKind::kFlat ? "flat" : "hnsw"));
            if (f.index == engine::VectorIndexKind::kHnsw) {
                o.set("m", Value::number(static_cast<double>(f.hnsw_m)));
                o.set("ef_construction", Value::number(static_cast<double>(f.hnsw_ef_construction)));
            }
            if (!f.encoder.empty()) o.set("encoder", Value::string(f.encoder));
            if (f.quantization.enabled()) {
                Value q = Value::object();
                q.set("codec", Value::string(f.quantization.codec.to_string()));
                q.set("rescore", Value::number(static_cast<double>(f.quantization.rescore)));
                if (f.index == engine::VectorIndexKind::kFlat) {
                    q.set("nlist", Value::number(static_cast<double>(f.quantization.nlist)));
                    q.set("nprobe", Value::number(static_cast<double>(f.quantization.nprobe)));
                }
                o.set("quantization", std::move(q));
            }
            if (f.on_disk) o.set("on_disk", Value::boolean(true));
            if (f.memory_budget != 0) o.set("memory_budget", Value::number(static_cast<double>(f.memory_budget)));
            if (f.chunking) o.set("chunking", chunking_to_json(*f.chunking));
            if (!f.sources.empty()) {
                Value src = Value::array();
                for (const auto& x : f.sources) src.as_array().push_back(Value::string(x));
                o.set("sources", std::move(src));
            }
        }
        fields.as_array().push_back(std::move(o));
    }
    Value bm = Value::object();
    bm.set("k1", Value::number_from_float(s.bm25_k1));
    bm.set("b", Value::number_from_float(s.bm25_b));
    Value out = Value::object();
    out.set("fields", std::move(fields));
    out.set("bm25", std::move(bm));
    return out;
}

Value vector_budgets_to_json(const std::vector<engine::VectorBudgetStats>& budgets) {
    Value out = Value::array();
    for (const auto& b : budgets) {
        Value segs = Value::array();
        for (const auto& sg : b.segments) {
            Value o = Value::object();
            o.set("id", Value::number(static_cast<double>(sg.id)));
            o.set("codec", Value::string(sg.codec));
            o.set("on_disk", Value::boolean(sg.on_disk));
            o.set("memory_bytes", Value::number(static_cast<double>(sg.memory_bytes)));
            segs.as_array().push_back(std::move(o));
        }
        Value o = Value::object();
        o.set("field", Value::string(b.field));
        o.set("budget_bytes", Value::number(static_cast<double>(b.budget_bytes)));
        o.set("memory_bytes", Value::number(static_cast<double>(b.memory_bytes)));
        o.set("segments", std::move(segs));
        out.as_array().push_back(std::move(o));
    }
    return out;
}

Result<engine::Document> document_from_json(const engine::Schema& schema, const Value& v, bool keep_nulls) {
    if (!v.is_object()) return bad("a document must be a JSON object");
    engine::Document d;
    const Value* id = v.find("id");
    if (id == nullptr) id = v.find("_id");
    if (id == nullptr) return bad("a document needs an \"id\" (a string or an integer)");
    QUIVER_ASSIGN_OR_RETURN(d.id, id_from_json(*id, "a document's \"id\""));
    for (const auto& [key, val] : v.as_object()) {
        if (key == "id" || key == "_id") continue;
        const engine::FieldSpec* f = schema.find(key);
        if (f == nullptr) return bad("document '" + d.id + "': unknown field '" + key + "'");
        if (val.is_null()) {
            if (keep_nulls) d.fields[key] = std::monostate{};
            continue;
        }
        // The field named in refusals: built only when a scalar field is refused (the vector, sparse and
        // token parsers take it as an argument, so those fields build it on every write).
        auto where = [&] { return "document '" + d.id + "': field '" + key + "'"; };
        engine::FieldValue fv;
        switch (f->type) {
            case FieldType::kText:
            case FieldType::kKeyword:
                if (!val.is_string()) return bad(where() + " must be a string");
                fv = val.as_string();
                break;
            case FieldType::kInteger:
                if (!val.is_integer()) return bad(where() + " must be an integer");
                fv = static_cast<std::int64_t>(val.as_int());
                break;
            case FieldType::kFloat:
                if (!val.is_number()) return bad(where() + " must be a number");
                fv = val.as_number();
                break;
            case FieldType::kBool:
                if (!val.is_bool()) return bad(where() + " must be a boolean");
                fv = val.as_bool();
                break;
            case FieldType::kKeywordList: {
                if (!val.is_array()) return bad(where() + " must be an array of strings");
                std::vector<std::string> list;
                for (const Value& x : val.as_array()) {
                    if (!x.is_string()) return bad(where() + " must be an array of strings");
                    list.push_back(x.as_string());
                }
                fv = std::move(list);
                break;
            }
            case FieldType::kVector: {
                if (val.is_string() && engine::embeds_text(*f)) {  // embedded by the field's encoder
                    fv = val.as_string();
                    break;
                }
                if (engine::chunked_vectors(*f) && val.is_array() && !val.as_array().empty() &&
                    val.as_array()[0].is_array()) {  // chunk vectors, one row per chunk (what `get` returns)
                    QUIVER_ASSIGN_OR_RETURN(auto tv, tokens_from_json(val, where(), engine::kMaxChunksPerDocument));
                    fv = std::move(tv);
                    break;
                }
                QUIVER_ASSIGN_OR_RETURN(auto vec, floats_from_json(val, where()));
                fv = std::move(vec);
                break;
            }
            case FieldType::kSparse: {
                if (val.is_string() && engine::embeds_text(*f)) {  // encoded by the field's SPLADE model
                    fv = val.as_string();
                    break;
                }
                QUIVER_ASSIGN_OR_RETURN(auto sp, sparse_from_json(val, where()));
                fv = std::move(sp);
                break;
            }
            case FieldType::kMultiVector: {
                if (val.is_string() && engine::embeds_text(*f)) {  // encoded by the field's ColBERT model
                    fv = val.as_string();
                    break;
                }
                QUIVER_ASSIGN_OR_RETURN(auto tv, tokens_from_json(val, where()));
                fv = std::move(tv);
                break;
            }
        }
        d.fields[key] = std::move(fv);
    }
    return d;
}

Value document_to_json(const engine::Schema& schema, const engine::Document& d) {
    Value o = Value::object();
    o.set("id", Value::string(d.id));
    for (const auto& [name, fv] : d.fields) {
        Value x;
        std::visit(
            [&](const auto& val) {
                using T = std::decay_t<decltype(val)>;
                if constexpr (std::is_same_v<T, std::string>) {
                    x = Value::string(val);
                } else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, double>) {
                    x = Value::number(static_cast<double>(val));
                } else if constexpr (std::is_same_v<T, bool>) {
                    x = Value::boolean(val);
                } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
                    x = Value::array();
                    for (const auto& s : val) x.as_array().push_back(Value::string(s));
                } else if constexpr (std::is_same_v<T, std::vector<float>>) {
                    x = Value::array();
                    for (float f : val) x.as_array().push_back(Value::number_from_float(f));
                } else if constexpr (std::is_same_v<T, engine::SparseTerms>) {
                    x = Value::object();
                    for (const auto& [term, w] : val) x.set(term, Value::number_from_float(w));
                } else if constexpr (std::is_same_v<T, engine::TokenVectors>) {
                    x = Value::array();
                    for (std::size_t r = 0; r < val.rows(); ++r) {
                        Value row = Value::array();
                        for (std::size_t j = 0; j < val.dim; ++j) {
                            row.as_array().push_back(Value::number_from_float(val.values[r * val.dim + j]));
                        }
                        x.as_array().push_back(std::move(row));
                    }
                }
            },
            fv);
        o.set(name, std::move(x));
    }
    (void)schema;
    return o;
}

Result<engine::Filter> filter_from_json(const Value& v, int depth) {
    using Op = engine::Filter::Op;
    if (depth > 32) return bad("filter nested too deeply");
    if (!v.is_object()) return bad("a filter must be an object");
    engine::Filter f;
    auto children = [&](const Value& arr, Op op) -> Status {
        if (!arr.is_array() || arr.as_array().empty()) return bad("'and'/'or' take a non-empty array of filters");
        f.op = op;
        for (const Value& c : arr.as_array()) {
            QUIVER_ASSIGN_OR_RETURN(auto child, filter_from_json(c, depth + 1));
            f.children.push_back(std::move(child));
        }
        return ok_status();
    };
    const bool boolean = v.find("and") != nullptr || v.find("or") != nullptr || v.find("not") != nullptr;
    if (boolean && v.as_object().size() != 1) return bad("a filter with and/or/not has no other key");
    if (!boolean) QUIVER_TRY(check_keys(v, {"field", "eq", "ne", "in", "range", "exists", "prefix"}, "a filter"));
    if (v.find("field") != nullptr &&
        (v.find("eq") != nullptr) + (v.find("ne") != nullptr) + (v.find("in") != nullptr) + (v.find("range") != nullptr) +
                (v.find("exists") != nullptr) + (v.find("prefix") != nullptr) > 1) {
        return bad("a filter on a field takes exactly one of eq, ne, in, range, exists or prefix");
    }
    if (const Value* a = v.find("and")) {
        QUIVER_TRY(children(*a, Op::kAnd));
        return f;
    }
    if (const Value* o = v.find("or")) {
        QUIVER_TRY(children(*o, Op::kOr));
        return f;
    }
    if (const Value* n = v.find("not")) {
        f.op = Op::kNot;
        QUIVER_ASSIGN_OR_RETURN(auto child, filter_from_json(*n, depth + 1));
        f.children.push_back(std::move(child));
        return f;
    }
    const Value* field = v.find("field");
    if (field == nullptr || !field->is_string()) return bad("a filter needs \"field\" (or and/or/not)");
    f.field = field->as_string();
    if (const Value* eq = v.find("eq")) {
        f.op = Op::kEq;
        QUIVER_ASSIGN_OR_RETURN(auto x, scalar_from_json(*eq));
        f.values.push_back(std::move(x));
    } else if (const Value* ne = v.find("ne")) {
        f.op = Op::kNe;
        QUIVER_ASSIGN_OR_RETURN(auto x, scalar_from_json(*ne));
        f.values.push_back(std::move(x));
    } else if (const Value* ex = v.find("exists")) {
        if (!ex->is_bool()) return bad("'exists' takes true or false");
        f.op = Op::kExists;
        if (!ex->as_bool()) {  // {"exists": false} = not exists
            engine::Filter outer;
            outer.op = Op::kNot;
            outer.children.push_back(std::move(f));
            return outer;
        }
    } else if (const Value* px = v.find("prefix")) {
        if (!px->is_string()) return bad("'prefix' takes a string");
        f.op = Op::kPrefix;
        f.values.emplace_back(px->as_string());
    } else if (const Value* in = v.find("in")) {
        if (!in->is_array()) return bad("'in' takes an array");
        if (in->as_array().size() > engine::kMaxFilterValues) {
            return bad("'in' takes at most " + std::to_string(engine::kMaxFilterValues) + " values");
        }
        f.op = Op::kIn;
        f.values.reserve(in->as_array().size());
        for (const Value& e : in->as_array()) {
            QUIVER_ASSIGN_OR_RETURN(auto x, scalar_from_json(e));
            f.values.push_back(std::move(x));
        }
    } else if (const Value* r = v.find("range")) {
        if (!r->is_object()) return bad("'range' takes an object with gt/gte/lt/lte");
        f.op = Op::kRange;
        for (const auto& [k, x] : r->as_object()) {
            if (!x.is_number()) return bad("range bounds must be numbers");
            if (k == "gt") f.gt = x.as_number();
            else if (k == "gte") f.gte = x.as_number();
            else if (k == "lt") f.lt = x.as_number();
            else if (k == "lte") f.lte = x.as_number();
            else return bad("unknown range bound '" + k + "'");
        }
    } else {
        return bad("filter on '" + f.field + "' needs eq, ne, in, range, exists or prefix");
    }
    return f;
}

Result<engine::SearchRequest> search_from_json(const Value& v, std::size_t max_k, const engine::Schema& schema) {
    if (!v.is_object()) return bad("a search must be a JSON object");
    engine::SearchRequest r;
    const bool multi = v.find("queries") != nullptr;
    QUIVER_TRY(check_keys(v,
                          multi ? std::initializer_list<std::string_view>{"queries", "fusion", "k", "limit", "offset",
                                                                          "search_after", "score_threshold", "filter",
                                                                          "fields", "with_vectors", "ef", "explain",
                                                                          "cutoff", "min_relevance"}
                                : std::initializer_list<std::string_view>{"field", "text", "vector", "sparse", "vectors",
                                                                          "weight", "prf", "fusion", "k", "limit",
                                                                          "offset", "search_after", "score_threshold",
                                                                          "filter", "fields", "with_vectors", "ef",
                                                                          "explain", "cutoff", "min_relevance"},
                          "the search"));
    auto clause = [&](const Value& q, bool nested) -> Status {
        if (!q.is_object()) {
            return bad("each query must be an object with \"field\" and \"text\", \"vector\", \"sparse\" or \"vectors\"");
        }
        if (nested) QUIVER_TRY(check_keys(q, {"field", "text", "vector", "sparse", "vectors", "weight", "prf"}, "a query"));
        const Value* field = q.find("field");
        if (field == nullptr || !field->is_string()) return bad("a query needs a string \"field\"");
        engine::QueryClause c;
        c.field = field->as_string();
        const Value* text = q.find("text");
        const Value* vec = q.find("vector");
        const Value* sp = q.find("sparse");
        const Value* toks = q.find("vectors");
        if ((text != nullptr) + (vec != nullptr) + (sp != nullptr) + (toks != nullptr) != 1) {
            return bad("a query needs exactly one of \"text\", \"vector\", \"sparse\" or \"vectors\"");
        }
        if (toks != nullptr) {
            QUIVER_ASSIGN_OR_RETURN(c.tokens, tokens_from_json(*toks, "\"vectors\""));
            if (c.tokens.values.empty()) return bad("\"vectors\" is empty");
        } else if (sp != nullptr) {
            QUIVER_ASSIGN_OR_RETURN(c.sparse, sparse_from_json(*sp, "\"sparse\""));
            if (c.sparse.empty()) return bad("\"sparse\" is empty");
        } else if (text != nullptr) {
            if (!text->is_string()) return bad("\"text\" must be a string");
            c.text = text->as_string();
        } else {
            QUIVER_ASSIGN_OR_RETURN(c.vector, floats_from_json(*vec, "\"vector\""));
            if (c.vector.empty()) return bad("\"vector\" is empty");
        }
        if (const Value* w = q.find("weight")) {
            if (!w->is_number() || !std::isfinite(w->as_number()) || w->as_number() < 0.0) {
                return bad("\"weight\" must be a finite number >= 0");
            }
            c.weight = w->as_number();
        }
        if (const Value* p = q.find("prf")) {
            // The method defaults by the field's type: rocchio on vector fields, rm3 elsewhere.
            const engine::FieldSpec* f = schema.find(c.field);
            const auto method = f != nullptr && f->type == engine::FieldType::kVector ? pipeline::PrfMethod::kRocchio
                                                                                      : pipeline::PrfMethod::kRm3;
            auto spec = pipeline::prf_from_json(*p, method);
            if (!spec) return bad(spec.error().message());
            c.prf = *spec;
        }
        r.clauses.push_back(std::move(c));
        return ok_status();
    };
    if (const Value* qs = v.find("queries")) {
        if (!qs->is_array()) return bad("\"queries\" must be an array");
        for (const Value& q : qs->as_array()) QUIVER_TRY(clause(q, true));
    } else if (v.find("field") != nullptr || v.find("text") != nullptr || v.find("vector") != nullptr ||
               v.find("sparse") != nullptr || v.find("vectors") != nullptr) {
        QUIVER_TRY(clause(v, false));
    }
    if (v.find("k") != nullptr && v.find("limit") != nullptr) return bad("give \"limit\" or \"k\", not both");
    QUIVER_ASSIGN_OR_RETURN(r.k, get_size(v, v.find("limit") != nullptr ? "limit" : "k", 10, max_k));
    if (r.k == 0) return bad("'limit' must be at least 1");
    QUIVER_ASSIGN_OR_RETURN(r.offset, get_size(v, "offset", 0, 10000));
    QUIVER_ASSIGN_OR_RETURN(r.ef, get_size(v, "ef", 0, 100000));
    if (const Value* sa = v.find("search_after")) {
        const auto* arr = sa->is_array() ? &sa->as_array() : nullptr;
        if (arr == nullptr || arr->size() != 2 || !(*arr)[0].is_number()) {
            return bad("\"search_after\" must be [score, id], the last hit of the previous page");
        }
        engine::SearchAfter after;
        after.score = (*arr)[0].as_number();
        QUIVER_ASSIGN_OR_RETURN(after.id, id_from_json((*arr)[1], "the id in \"search_after\""));
        r.search_after = std::move(after);
    }
    if (const Value* t = v.find("score_threshold")) {
        if (!t->is_number() || !std::isfinite(t->as_number())) return bad("\"score_threshold\" must be a finite number");
        r.score_threshold = t->as_number();
    }
    if (const Value* fu = v.find("fusion")) {
        if (!fu->is_object()) return bad("\"fusion\" must be an object");
        QUIVER_TRY(check_keys(*fu, {"method", "k", "normalization", "missing", "weights"}, "\"fusion\""));
        if (const Value* m = fu->find("method")) {
            if (!m->is_string()) return bad("\"fusion\": \"method\" must be a string (rrf, convex)");
            QUIVER_ASSIGN_OR_RETURN(r.fusion.method, engine::parse_fusion_method(m->as_string()));
        }
        if (const Value* k = fu->find("k")) {
            if (r.fusion.method != engine::FusionMethod::kRrf) return bad("\"fusion\": \"k\" applies to rrf only");
            if (!k->is_number() || !std::isfinite(k->as_number()) || k->as_number() < 0.0) {
                return bad("\"fusion\": \"k\" must be a finite number >= 0");
            }
            r.fusion.rrf_k = k->as_number();
        }
        if (const Value* n = fu->find("normalization")) {
            if (r.fusion.method != engine::FusionMethod::kConvex) {
                return bad("\"fusion\": \"normalization\" applies to convex only");
            }
            if (!n->is_string()) return bad("\"fusion\": \"normalization\" must be a string");
            QUIVER_ASSIGN_OR_RETURN(r.fusion.normalization, engine::parse_normalization(n->as_string()));
        }
        if (const Value* m = fu->find("missing")) {
            if (r.fusion.method != engine::FusionMethod::kConvex) return bad("\"fusion\": \"missing\" applies to convex only");
            if (!m->is_string()) return bad("\"fusion\": \"missing\" must be a string (zero, min)");
            QUIVER_ASSIGN_OR_RETURN(r.fusion.missing, engine::parse_missing_score(m->as_string()));
        }
        // A pipeline file's "fusion" object pastes in as is: its weights are the queries' weights, in order.
        if (const Value* w = fu->find("weights")) {
            if (!w->is_array() || w->as_array().size() != r.clauses.size()) {
                return bad("\"fusion\": \"weights\" must be an array with one number per query");
            }
            for (std::size_t i = 0; i < r.clauses.size(); ++i) {
                const Value& x = w->as_array()[i];
                if (!x.is_number() || !std::isfinite(x.as_number()) || x.as_number() < 0.0) {
                    return bad("\"fusion\": \"weights\" must be finite numbers >= 0");
                }
                r.clauses[i].weight = x.as_number();
            }
        }
    }
    if (const Value* f = v.find("filter")) {
        QUIVER_ASSIGN_OR_RETURN(auto filter, filter_from_json(*f));
        r.filter = std::move(filter);
    }
    if (const Value* e = v.find("explain")) {
        if (!e->is_bool()) return bad("\"explain\" must be a boolean");
        r.explain = e->as_bool();
    }
    if (const Value* c = v.find("cutoff")) {
        auto cutoff = pipeline::cutoff_from_json(*c);
        if (!cutoff) return bad(cutoff.error().message());
        r.cutoff = std::move(cutoff->model);
    }
    if (const Value* m = v.find("min_relevance")) {
        if (!m->is_number() || !(m->as_number() >= 0.0 && m->as_number() <= 1.0)) {
            return bad("\"min_relevance\" must be a probability in [0, 1]");
        }
        if (r.cutoff == std::nullopt) return bad("\"min_relevance\" needs a calibrated \"cutoff\"");
        r.min_relevance = m->as_number();
    }
    QUIVER_ASSIGN_OR_RETURN(r.return_fields, return_fields_from_json(v, schema));
    return r;
}

Value explain_to_json(const engine::SearchExplain& e) {
    Value o = Value::object();
    Value filter = Value::null();
    if (e.filtered) {
        filter = Value::object();
        filter.set("matches", Value::number(static_cast<double>(e.filter_matches)));
        filter.set("index_lookups", Value::number(static_cast<double>(e.index_lookups)));
        filter.set("documents_scanned", Value::number(static_cast<double>(e.docs_scanned)));
        filter.set("work_units", Value::number(static_cast<double>(e.filter_work)));
    }
    o.set("filter", std::move(filter));
    Value plans = Value::array();
    for (const auto& p : e.plans) {
        Value x = Value::object();
        x.set("field", Value::string(p.field));
        x.set("source", Value::string(p.source));
        x.set("strategy", Value::string(p.strategy));
        x.set("matches", Value::number(static_cast<double>(p.matches)));
        x.set("size", Value::number(static_cast<double>(p.size)));
        x.set("selectivity", Value::number(p.selectivity));
        x.set("reason", Value::string(p.reason));
        x.set("fallback", Value::boolean(p.fallback));
        plans.as_array().push_back(std::move(x));
    }
    o.set("plans", std::move(plans));
    return o;
}

Result<std::optional<std::vector<std::string>>> return_fields_from_json(const Value& v, const engine::Schema& schema) {
    bool with_vectors = false;
    if (const Value* wv = v.find("with_vectors")) {
        if (!wv->is_bool()) return bad("\"with_vectors\" must be a boolean");
        with_vectors = wv->as_bool();
    }
    std::optional<std::vector<std::string>> names;
    if (const Value* rf = v.find("fields")) {
        if (!rf->is_array()) return bad("\"fields\" must be an array of field names");
        names.emplace();
        for (const Value& x : rf->as_array()) {
            if (!x.is_string()) return bad("\"fields\" must be an array of field names");
            if (schema.find(x.as_string()) == nullptr) return bad("\"fields\": unknown field '" + x.as_string() + "'");
            names->push_back(x.as_string());
        }
    }
    return resolve_return_fields(schema, std::move(names), with_vectors);
}

std::optional<std::vector<std::string>> resolve_return_fields(const engine::Schema& schema,
                                                              std::optional<std::vector<std::string>> names,
                                                              bool with_vectors) {
    auto is_vector = [](const engine::FieldSpec& f) {
        return f.type == FieldType::kVector || f.type == FieldType::kSparse || f.type == FieldType::kMultiVector;
    };
    if (names) {
        if (with_vectors) {
            for (const auto& f : schema.fields) {
                if (is_vector(f) && std::find(names->begin(), names->end(), f.name) == names->end()) {
                    names->push_back(f.name);
                }
            }
        }
        return names;
    }
    if (with_vectors) return std::nullopt;  // everything
    std::vector<std::string> out;
    for (const auto& f : schema.fields) {
        if (!is_vector(f)) out.push_back(f.name);
    }
    return out;
}

Result<AttributeTable> read_attributes_jsonl(const std::string& path, std::size_t max_rows) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    AttributeTable out;
    std::map<std::string, FieldType, std::less<>> types;
    std::size_t line_no = 0;
    std::size_t pos = 0;
    while (pos < text.size() && (max_rows == 0 || out.rows.size() < max_rows)) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        const std::string_view line(text.data() + pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        const std::string where = path + ":" + std::to_string(line_no);
        auto v = json::parse(line);
        if (!v) return bad(where + ": " + v.error().message());
        if (!v->is_object()) return bad(where + ": attributes must be a JSON object");
        engine::Document d;
        d.id = std::to_string(out.rows.size());
        for (const auto& [key, x] : v->as_object()) {
            if (x.is_null()) continue;
            engine::FieldValue fv;
            FieldType t;
            if (x.is_string()) {
                fv = x.as_string();
                t = FieldType::kKeyword;
            } else if (x.is_bool()) {
                fv = x.as_bool();
                t = FieldType::kBool;
            } else if (x.is_integer()) {
                fv = static_cast<std::int64_t>(x.as_int());
                t = FieldType::kInteger;
            } else if (x.is_number()) {
                if (!std::isfinite(x.as_number())) return bad(where + ": '" + key + "' is not finite");
                fv = x.as_number();
                t = FieldType::kFloat;
            } else if (x.is_array()) {
                std::vector<std::string> l;
                for (const auto& e : x.as_array()) {
                    if (!e.is_string()) return bad(where + ": '" + key + "' must be an array of strings");
                    l.push_back(e.as_string());
                }
                fv = std::move(l);
                t = FieldType::kKeywordList;
            } else {
                return bad(where + ": '" + key + "' is an object (attributes are strings, numbers, booleans or lists)");
            }
            auto [it, fresh] = types.emplace(key, t);
            if (!fresh && it->second != t) {
                const bool numbers = (it->second == FieldType::kInteger || it->second == FieldType::kFloat) &&
                                     (t == FieldType::kInteger || t == FieldType::kFloat);
                if (!numbers) {
                    return bad(where + ": '" + key + "' is " + std::string(engine::to_string(t)) + ", earlier lines gave " +
                               std::string(engine::to_string(it->second)));
                }
                it->second = FieldType::kFloat;
            }
            d.fields[key] = std::move(fv);
        }
        out.rows.push_back(std::move(d));
    }
    for (const auto& [name, t] : types) {
        engine::FieldSpec f;
        f.name = name;
        f.type = t;
        f.payload_index = true;
        out.fields.push_back(std::move(f));
    }
    for (auto& d : out.rows) {
        for (auto& [name, v] : d.fields) {
            if (types.find(name)->second != FieldType::kFloat) continue;
            if (const auto* i = std::get_if<std::int64_t>(&v)) v = static_cast<double>(*i);
        }
    }
    engine::Schema check;
    check.fields = out.fields;
    if (auto st = check.validate(); !st) return bad(path + ": " + st.error().message());
    return out;
}

}  // namespace quiver::server
