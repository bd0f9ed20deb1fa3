// Text -> vector for vector fields with an encoder (at upsert and at query time).
#include <algorithm>

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
        if (info.dim != f.dim) {
            return invalid_argument("field '" + f.name + "': encoder '" + f.encoder + "' gives " +
                                    std::to_string(info.dim) + "-d vectors, the field has dim " + std::to_string(f.dim));
        }
        if (std::find(info.outputs.begin(), info.outputs.end(), encode::OutputKind::kDense) == info.outputs.end()) {
            return invalid_argument("field '" + f.name + "': encoder '" + f.encoder + "' gives no dense vectors");
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
        Result<encode::Embeddings> emb = [&] {
            std::lock_guard lock(encoders[fi]->mu);
            return encoders[fi]->encoder->encode(views, o);
        }();
        if (!emb) return std::move(emb).error().with_context("embedding field '" + f.name + "'");
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
