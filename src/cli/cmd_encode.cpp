// `quiver encode`: turn a JSONL corpus or query file into embeddings with a model folder.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <iterator>
#include <string>
#include <vector>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/encode/encoder.h"
#include "quiver/storage/file_format.h"
#include "quiver/storage/vector_io.h"

namespace quiver::cli {
namespace {

struct EncodeCliOptions {
    std::string model;
    std::string input;
    std::string output;
    std::string kind = "dense";
    std::string role = "auto";
    std::size_t batch = 32;
    std::size_t threads = 0;
    std::size_t max_length = 512;
    std::size_t top_k = 0;
    bool sif = false;
    bool int8 = false;
    std::string query_prefix;
    std::string doc_prefix;
    bool has_query_prefix = false;
    bool has_doc_prefix = false;
};

struct Records {
    std::vector<std::string> ids;
    std::vector<std::string> texts;
};

// BEIR JSONL: {"_id": "...", "title": "...", "text": "..."}; "id" is accepted for "_id".
Result<Records> read_records(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string data, storage::read_file(path));
    Records r;
    std::size_t pos = 0;
    std::size_t line_no = 0;
    while (pos < data.size()) {
        std::size_t end = data.find('\n', pos);
        if (end == std::string::npos) end = data.size();
        const std::string_view line(data.data() + pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        auto doc = json::parse(line);
        if (!doc) return std::move(doc).error().with_context(fmt::format("'{}' line {}", path, line_no));
        const json::Value* id = doc->find("_id");
        if (id == nullptr) id = doc->find("id");
        const json::Value* text = doc->find("text");
        if (text == nullptr || !text->is_string()) {
            return invalid_argument(fmt::format("'{}' line {}: no string \"text\" field", path, line_no));
        }
        std::string idv = id == nullptr ? std::to_string(r.ids.size())
                                        : (id->is_string() ? id->as_string() : json::dump(*id));
        std::string t;
        if (const json::Value* title = doc->find("title"); title != nullptr && title->is_string() &&
                                                         !title->as_string().empty()) {
            t = title->as_string() + " ";
        }
        t += text->as_string();
        r.ids.push_back(std::move(idv));
        r.texts.push_back(std::move(t));
    }
    if (r.texts.empty()) return invalid_argument(fmt::format("'{}' has no records", path));
    // Ids key every output (and the .ids file beside .npy): a repeated id is an error, never two rows.
    QUIVER_TRY(check_unique_ids(r.ids, path, "record"));
    return r;
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status write_sparse(const std::string& path, const Records& rec, const std::vector<encode::SparseVector>& sv,
                    const encode::Encoder& enc) {
    std::string out;
    for (std::size_t i = 0; i < sv.size(); ++i) {
        out += "{\"id\":";
        json::append_quoted(out, rec.ids[i]);
        out += ",\"vector\":{";
        for (std::size_t j = 0; j < sv[i].ids.size(); ++j) {
            if (j > 0) out += ',';
            std::string_view term = enc.term(sv[i].ids[j]);
            json::append_quoted(out, term.empty() ? std::to_string(sv[i].ids[j]) : std::string(term));
            out += ':';
            json::append_number(out, sv[i].weights[j]);
        }
        out += "}}\n";
    }
    return write_text(path, out);
}

Status write_multi(const std::string& path, const Records& rec, const std::vector<Matrix<float>>& multi) {
    std::string out;
    for (std::size_t i = 0; i < multi.size(); ++i) {
        out += "{\"id\":";
        json::append_quoted(out, rec.ids[i]);
        out += ",\"vectors\":[";
        for (std::size_t r = 0; r < multi[i].rows; ++r) {
            out += r > 0 ? ",[" : "[";
            for (std::size_t c = 0; c < multi[i].dim; ++c) {
                if (c > 0) out += ',';
                // Shortest form that round-trips the float (half the bytes of the double form).
                fmt::format_to(std::back_inserter(out), "{}", multi[i].row_ptr(r)[c]);
            }
            out += ']';
        }
        out += "]}\n";
    }
    return write_text(path, out);
}

int run_encode(const EncodeCliOptions& o) {
    auto kind = encode::parse_output_kind(o.kind);
    if (!kind) return report("encode", kind.error());
    encode::EncodeRole role = encode::EncodeRole::kDocument;
    if (o.role == "query" || (o.role == "auto" && o.input.find("quer") != std::string::npos)) {
        role = encode::EncodeRole::kQuery;
    } else if (o.role != "document" && o.role != "auto") {
        return report("encode", invalid_argument(fmt::format("--role must be auto, query or document, not '{}'", o.role)));
    }
    const bool npy = ends_with(o.output, ".npy");
    const bool jsonl = ends_with(o.output, ".jsonl") || ends_with(o.output, ".ndjson");
    if (!npy && !jsonl) return report("encode", invalid_argument("--output must end in .npy or .jsonl"));
    if (npy && *kind != encode::OutputKind::kDense) {
        return report("encode", invalid_argument(fmt::format("{} output needs a .jsonl --output", o.kind)));
    }
    encode::LoadOptions lo;
    lo.threads = o.threads;
    lo.batch = o.batch;
    lo.max_length = o.max_length;
    lo.sparse_top_k = o.top_k;
    lo.sif = o.sif;
    lo.int8 = o.int8;
    if (o.has_query_prefix) lo.query_prefix = o.query_prefix;
    if (o.has_doc_prefix) lo.document_prefix = o.doc_prefix;
    auto enc = encode::load_encoder(o.model, lo);
    if (!enc) return report("encode", enc.error());
    auto rec = read_records(o.input);
    if (!rec) return report("encode", rec.error());

    const std::size_t n = rec->texts.size();
    const auto t0 = std::chrono::steady_clock::now();
    ProgressBar bar("encoding", n, "texts");
    encode::EncodeOptions eo;
    eo.kind = *kind;
    eo.role = role;
    eo.progress = &bar;
    // Chunks bound the memory of intermediate results; the encoder parallelises inside each.
    const std::size_t chunk = std::max<std::size_t>(o.batch * 64, 1024);
    encode::Embeddings all;
    all.kind = *kind;
    if (*kind == encode::OutputKind::kDense) all.dense = Matrix<float>(n, (*enc)->info().dim);
    for (std::size_t begin = 0; begin < n; begin += chunk) {
        const std::size_t end = std::min(n, begin + chunk);
        std::vector<std::string_view> views(rec->texts.begin() + static_cast<std::ptrdiff_t>(begin),
                                            rec->texts.begin() + static_cast<std::ptrdiff_t>(end));
        auto part = (*enc)->encode(views, eo);
        if (!part) return report("encode", std::move(part).error().with_context(fmt::format("records {}..{}", begin, end)));
        all.num_tokens += part->num_tokens;
        if (*kind == encode::OutputKind::kDense) {
            std::copy(part->dense.values.begin(), part->dense.values.end(), all.dense.row_ptr(begin));
        }
        for (auto& s : part->sparse) all.sparse.push_back(std::move(s));
        for (auto& m : part->multi) all.multi.push_back(std::move(m));
    }
    bar.finish();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    Status written;
    if (*kind == encode::OutputKind::kDense) {
        if (npy) {
            // .npy holds numbers only: the ids go beside it (out.npy -> out.ids), for build and search.
            written = storage::write_npy(o.output, all.dense);
            if (written) written = write_ids_file(o.output, rec->ids);
        } else {
            written = storage::write_jsonl(o.output, all.dense, rec->ids);
        }
    } else if (*kind == encode::OutputKind::kSparse) {
        written = write_sparse(o.output, *rec, all.sparse, **enc);
    } else {
        written = write_multi(o.output, *rec, all.multi);
    }
    if (!written) return report("encode", written.error());
    std::string tokens;
    if (all.num_tokens > 0) tokens = fmt::format(", {:.0f} tokens/s", static_cast<double>(all.num_tokens) / secs);
    std::fprintf(stderr, "quiver encode: %zu %s texts with %s (%s, dim %zu) in %.2f s: %.1f texts/s%s -> %s\n", n,
                 role == encode::EncodeRole::kQuery ? "query" : "document", (*enc)->info().name.c_str(),
                 (*enc)->info().family.c_str(),
                 *kind == encode::OutputKind::kSparse       ? (*enc)->info().sparse_dim
                 : *kind == encode::OutputKind::kMultiVector ? (*enc)->info().multivector_dim
                                                             : (*enc)->info().dim,
                 secs, static_cast<double>(n) / secs, tokens.c_str(),
                 (npy ? o.output + " (ids: " + ids_path_for(o.output) + ")" : o.output).c_str());
    return 0;
}

void add_encode_command(CLI::App& app) {
    auto opts = std::make_shared<EncodeCliOptions>();
    auto* sub = app.add_subcommand(
        "encode",
        "Encode a JSONL corpus or query file with a model folder (BERT-family safetensors, model2vec, GloVe)\n"
        "  input records: {\"_id\": ..., \"title\": ..., \"text\": ...} (documents are title + \" \" + text)\n"
        "  outputs: dense -> .npy (ids one per line in the .ids file beside it: out.npy -> out.ids)\n"
        "                    or .jsonl {\"id\", \"vector\": [...]};\n"
        "           sparse (SPLADE) -> .jsonl {\"id\", \"vector\": {\"token\": weight}};\n"
        "           multivector (ColBERT) -> .jsonl {\"id\", \"vectors\": [[...], ...]}");
    sub->add_option("--model", opts->model, "Model folder (see docs/encoders.md)")->required();
    sub->add_option("--input", opts->input, "corpus.jsonl or queries.jsonl")->required();
    sub->add_option("--output", opts->output, "out.npy or out.jsonl")->required();
    sub->add_option("--kind", opts->kind, "dense | sparse | multivector")->capture_default_str();
    sub->add_option("--role", opts->role,
                    "query | document | auto (auto: query when the input file name contains 'quer')")
        ->capture_default_str();
    sub->add_option("--batch", opts->batch, "Sequences per forward pass")->capture_default_str();
    sub->add_option("--threads", opts->threads, "Worker threads (0 = all cores)")->capture_default_str();
    sub->add_option("--max-length", opts->max_length, "Max tokens per text, special tokens included")
        ->capture_default_str();
    sub->add_option("--top-k", opts->top_k, "sparse: keep the k largest term weights per text (0 = all)")
        ->capture_default_str();
    sub->add_flag("--sif", opts->sif, "word vectors: SIF weighting instead of a plain mean");
    sub->add_flag("--int8", opts->int8, "transformers: dynamic int8 linear layers (faster; cosine to float32 >= 0.99)");
    sub->add_option("--query-prefix", opts->query_prefix, "Text prepended to queries (overrides the model's prompt)")
        ->each([opts](const std::string&) { opts->has_query_prefix = true; });
    sub->add_option("--doc-prefix", opts->doc_prefix, "Text prepended to documents (overrides the model's prompt)")
        ->each([opts](const std::string&) { opts->has_doc_prefix = true; });
    sub->footer("Duplicate ids in the input are an error. Progress goes to stderr (a bar on a terminal, a line\n"
                "every few seconds otherwise).\n"
                "Example: quiver encode --model glove-6b-100d/ --input corpus.jsonl --output corpus.npy\n"
                "         quiver build --input corpus.npy --output corpus.qvr   # ids from corpus.ids");
    set_action(sub, [opts] { return run_encode(*opts); });
}

}  // namespace

static const CommandRegistrar kReg{50, &add_encode_command};

}  // namespace quiver::cli
