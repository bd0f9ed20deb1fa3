// Text -> embeddings for fields with an encoder (at upsert and at query time): dense vectors for vector
// fields, SPLADE term weights for sparse_vector fields, ColBERT token vectors for multi_vector fields.
#include <algorithm>
#include <cmath>
#include <map>

#include "engine/collection_state.h"
#include "quiver/encode/encoder.h"

namespace quiver::engine {
namespace {

// A model name: letters, digits, '.', '_', '-'; not starting with '.' (no "..", no hidden folders).
bool model_name(std::string_view n) {
    if (n.empty() || n.size() > 128 || n.front() == '.') return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    });
}

// Replaces every occurrence of `secret` (the models directory) in a loader's message.
std::string redact(std::string message, const std::string& secret) {
    if (secret.empty()) return message;
    for (std::size_t at = message.find(secret); at != std::string::npos; at = message.find(secret, at)) {
        message.replace(at, secret.size(), "<models>");
    }
    return message;
}

Result<std::unique_ptr<encode::Encoder>> make_encoder(const FieldSpec& f, const CollectionOptions& options) {
    if (f.encoder == "hashing") return std::unique_ptr<encode::Encoder>(std::make_unique<encode::HashingEncoder>(f.dim));
    encode::LoadOptions o;
    o.threads = 2;
    const std::string what = "field '" + f.name + "': encoder '" + f.encoder + "'";
    if (!options.models_dir) {  // local use: a path
        auto e = encode::load_encoder(f.encoder, o);
        if (!e) return std::move(e).error().with_context("loading the encoder of field '" + f.name + "'");
        return e;
    }
    // Named models only: decided before any file system access, so the answer says nothing about paths.
    if (!model_name(f.encoder)) {
        return invalid_argument(what + " is not a model name (\"hashing\" or a model of the server's --models "
                                "directory: letters, digits, '.', '_', '-')");
    }
    if (options.models_dir->empty()) {
        return invalid_argument(what + " is unknown: the server has no --models directory (only \"hashing\")");
    }
    std::string dir = *options.models_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    auto e = encode::load_encoder(dir + "/" + f.encoder, o);
    if (!e) {
        return invalid_argument(what + " could not be loaded from the models directory: " +
                                redact(e.error().message(), dir));
    }
    return e;
}

// The output kind a field's encoder must give.
encode::OutputKind output_kind(const FieldSpec& f) {
    if (f.type == FieldType::kSparse) return encode::OutputKind::kSparse;
    if (f.type == FieldType::kMultiVector) return encode::OutputKind::kMultiVector;
    return encode::OutputKind::kDense;
}

// A SPLADE output as (vocabulary term, weight) pairs: zero weights dropped; a term the tokenizer
// cannot name is written "#<id>"; two ids naming one term (not in a WordPiece vocabulary) add up.
SparseTerms to_terms(const encode::Encoder& enc, const encode::SparseVector& sv) {
    std::map<std::string, float, std::less<>> merged;
    for (std::size_t i = 0; i < sv.ids.size() && i < sv.weights.size(); ++i) {
        const float w = sv.weights[i];
        if (!(w > 0.0f) || !std::isfinite(w)) continue;
        std::string_view t = enc.term(sv.ids[i]);
        std::string term = t.empty() ? "#" + std::to_string(sv.ids[i]) : std::string(t);
        merged[term] += w;
    }
    return SparseTerms(merged.begin(), merged.end());
}

TokenVectors to_tokens(const Matrix<float>& m) {
    TokenVectors tv;
    tv.dim = m.dim;
    tv.values.assign(m.values.begin(), m.values.begin() + static_cast<std::ptrdiff_t>(m.rows * m.dim));
    return tv;
}

// A chunked vector field (chunked_vectors): every document's chunk texts encoded in one batch; the
// field becomes the chunk vectors (row j = chunk j), or is dropped when no chunk embeds to a non-zero
// vector. The text is the field's own string (one body), or, when the field is absent, its sources
// read as a chunked text field reads them (text_views: title + body), as `quiver eval --chunking` cuts
// a document. Chunk vectors already present (a stored document being patched) are kept.
Status embed_chunks(const FieldSpec& f, FieldEncoder& encoder, std::vector<Document>& docs) {
    std::vector<std::string> texts;
    std::vector<std::pair<std::size_t, std::size_t>> which;  // (document, its chunk count)
    for (std::size_t d = 0; d < docs.size(); ++d) {
        const auto it = docs[d].fields.find(f.name);
        std::vector<std::string> chunks;
        if (it != docs[d].fields.end()) {
            const auto* s = std::get_if<std::string>(&it->second);
            if (s == nullptr) continue;  // chunk vectors (kept) or a vector (refused by validate_document)
            chunks = pipeline::chunk_document({}, *s, *f.chunking);
        } else {
            if (f.sources.empty()) continue;
            std::string_view title;
            std::string_view body;
            text_views(f, docs[d], title, body);
            if (title.empty() && body.empty()) continue;
            chunks = pipeline::chunk_document(title, body, *f.chunking);
        }
        if (chunks.size() > kMaxChunksPerDocument) {
            return invalid_argument("document '" + docs[d].id + "': field '" + f.name + "' has " +
                                    std::to_string(chunks.size()) + " chunks, more than " +
                                    std::to_string(kMaxChunksPerDocument));
        }
        which.emplace_back(d, chunks.size());
        for (auto& c : chunks) texts.push_back(std::move(c));
    }
    if (texts.empty()) return ok_status();
    std::vector<std::string_view> views(texts.begin(), texts.end());
    encode::EncodeOptions o;
    o.role = encode::EncodeRole::kDocument;
    o.kind = encode::OutputKind::kDense;
    Result<encode::Embeddings> emb = [&] {
        std::lock_guard lock(encoder.mu);
        return encoder.encoder->encode(views, o);
    }();
    if (!emb) return std::move(emb).error().with_context("embedding the chunks of field '" + f.name + "'");
    const MatrixView<float> m = emb->dense.view();
    if (m.rows != texts.size() || m.dim != f.dim) return internal_error("encoder returned a wrong number of outputs");
    std::size_t row = 0;
    for (const auto& [d, n] : which) {
        TokenVectors tv;
        tv.dim = f.dim;
        tv.values.assign(m.data + row * m.dim, m.data + (row + n) * m.dim);
        row += n;
        if (std::all_of(tv.values.begin(), tv.values.end(), [](float x) { return x == 0.0f; })) {
            docs[d].fields.erase(f.name);  // no chunk has content to embed: the document has no vectors
        } else {
            docs[d].fields[f.name] = std::move(tv);
        }
    }
    return ok_status();
}

}  // namespace

Status load_encoders(const Schema& schema, const CollectionOptions& options,
                     std::vector<std::unique_ptr<FieldEncoder>>& out) {
    out.clear();
    out.resize(schema.fields.size());
    for (std::size_t fi = 0; fi < schema.fields.size(); ++fi) {
        const FieldSpec& f = schema.fields[fi];
        if (!embeds_text(f)) continue;
        QUIVER_ASSIGN_OR_RETURN(auto enc, make_encoder(f, options));
        const auto& info = enc->info();
        const encode::OutputKind kind = output_kind(f);
        if (std::find(info.outputs.begin(), info.outputs.end(), kind) == info.outputs.end()) {
            return invalid_argument("field '" + f.name + "': encoder '" + f.encoder + "' gives no " +
                                    std::string(encode::to_string(kind)) + " output");
        }
        const std::size_t dim = kind == encode::OutputKind::kMultiVector ? info.multivector_dim : info.dim;
        if (kind != encode::OutputKind::kSparse && dim != f.dim) {
            return invalid_argument("field '" + f.name + "': encoder '" + f.encoder + "' gives " + std::to_string(dim) +
                                    "-d vectors, the field has dim " + std::to_string(f.dim));
        }
        out[fi] = std::make_unique<FieldEncoder>();
        out[fi]->encoder = std::move(enc);
    }
    return ok_status();
}

Status embed_documents(const Schema& schema, std::vector<std::unique_ptr<FieldEncoder>>& encoders,
                       std::vector<Document>& docs) {
    for (std::size_t fi = 0; fi < schema.fields.size(); ++fi) {
        if (!encoders[fi]) continue;
        const FieldSpec& f = schema.fields[fi];
        if (chunked_vectors(f)) {
            QUIVER_TRY(embed_chunks(f, *encoders[fi], docs));
            continue;
        }
        std::vector<std::string> texts;
        std::vector<std::size_t> which;
        for (std::size_t d = 0; d < docs.size(); ++d) {
            auto it = docs[d].fields.find(f.name);
            if (it != docs[d].fields.end()) {
                if (const auto* s = std::get_if<std::string>(&it->second)) {
                    texts.push_back(*s);
                    which.push_back(d);
                }
                continue;
            }
            if (f.sources.empty()) continue;
            std::string joined;
            for (const auto& src : f.sources) {
                auto s = docs[d].fields.find(src);
                if (s == docs[d].fields.end()) continue;
                if (const auto* str = std::get_if<std::string>(&s->second)) {
                    if (!joined.empty() && !str->empty()) joined += ' ';
                    joined += *str;
                }
            }
            if (joined.empty()) continue;
            texts.push_back(std::move(joined));
            which.push_back(d);
        }
        if (texts.empty()) continue;
        std::vector<std::string_view> views(texts.begin(), texts.end());
        encode::EncodeOptions o;
        o.role = encode::EncodeRole::kDocument;
        o.kind = output_kind(f);
        Result<encode::Embeddings> emb = [&] {
            std::lock_guard lock(encoders[fi]->mu);
            return encoders[fi]->encoder->encode(views, o);
        }();
        if (!emb) return std::move(emb).error().with_context("embedding field '" + f.name + "'");
        if (o.kind == encode::OutputKind::kSparse) {
            if (emb->sparse.size() != which.size()) return internal_error("encoder returned a wrong number of outputs");
            for (std::size_t i = 0; i < which.size(); ++i) {
                SparseTerms terms = to_terms(*encoders[fi]->encoder, emb->sparse[i]);
                if (terms.empty()) {
                    docs[which[i]].fields.erase(f.name);  // no term weighted: the document has no sparse vector
                } else {
                    docs[which[i]].fields[f.name] = std::move(terms);
                }
            }
            continue;
        }
        if (o.kind == encode::OutputKind::kMultiVector) {
            if (emb->multi.size() != which.size()) return internal_error("encoder returned a wrong number of outputs");
            for (std::size_t i = 0; i < which.size(); ++i) {
                if (emb->multi[i].rows == 0) {
                    docs[which[i]].fields.erase(f.name);  // no token kept: the document has no token vectors
                } else {
                    docs[which[i]].fields[f.name] = to_tokens(emb->multi[i]);
                }
            }
            continue;
        }
        for (std::size_t i = 0; i < which.size(); ++i) {
            const auto row = emb->dense.view().row(i);
            std::vector<float> v(row.begin(), row.end());
            const bool zero = std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; });
            if (zero) {
                docs[which[i]].fields.erase(f.name);  // no content to embed: the document has no vector
            } else {
                docs[which[i]].fields[f.name] = std::move(v);
            }
        }
    }
    return ok_status();
}

Result<std::vector<float>> embed_query(FieldEncoder& enc, const FieldSpec& f, std::string_view text) {
    std::string_view views[1] = {text};
    encode::EncodeOptions o;
    o.role = encode::EncodeRole::kQuery;
    std::lock_guard lock(enc.mu);
    auto emb = enc.encoder->encode(views, o);
    if (!emb) return std::move(emb).error().with_context("embedding the query for field '" + f.name + "'");
    const auto row = emb->dense.view().row(0);
    std::vector<float> v(row.begin(), row.end());
    if (std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; })) {
        return invalid_argument("query text for field '" + f.name + "' embeds to a zero vector (no known words)");
    }
    return v;
}

}  // namespace quiver::engine

namespace quiver::engine {

Result<SparseTerms> embed_query_sparse(FieldEncoder& enc, const FieldSpec& f, std::string_view text) {
    std::string_view views[1] = {text};
    encode::EncodeOptions o;
    o.role = encode::EncodeRole::kQuery;
    o.kind = encode::OutputKind::kSparse;
    std::lock_guard lock(enc.mu);
    auto emb = enc.encoder->encode(views, o);
    if (!emb) return std::move(emb).error().with_context("encoding the query for field '" + f.name + "'");
    if (emb->sparse.size() != 1) return internal_error("encoder returned a wrong number of outputs");
    SparseTerms terms = to_terms(*enc.encoder, emb->sparse[0]);
    if (terms.empty()) return invalid_argument("query text for field '" + f.name + "' encodes to no term");
    return terms;
}

Result<TokenVectors> embed_query_tokens(FieldEncoder& enc, const FieldSpec& f, std::string_view text) {
    std::string_view views[1] = {text};
    encode::EncodeOptions o;
    o.role = encode::EncodeRole::kQuery;
    o.kind = encode::OutputKind::kMultiVector;
    std::lock_guard lock(enc.mu);
    auto emb = enc.encoder->encode(views, o);
    if (!emb) return std::move(emb).error().with_context("encoding the query for field '" + f.name + "'");
    if (emb->multi.size() != 1) return internal_error("encoder returned a wrong number of outputs");
    if (emb->multi[0].rows == 0) return invalid_argument("query text for field '" + f.name + "' encodes to no token");
    return to_tokens(emb->multi[0]);
}

}  // namespace quiver::engine
