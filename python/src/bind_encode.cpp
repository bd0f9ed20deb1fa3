// Encoders (encode/encoder.h): load a model folder, encode texts to dense numpy rows, sparse term
// dicts or per-token matrices.
#include "common.h"

#include <fmt/format.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "quiver/encode/encoder.h"

namespace quiver::python {
namespace {

using encode::Encoder;

/// `Encoder::encode` must not run concurrently on one encoder; Python threads may try, so calls are
/// serialised here (the encoder parallelises internally).
struct EncoderHandle {
    std::unique_ptr<Encoder> encoder;
    std::mutex mu;
};

encode::EncodeRole parse_role(const std::string& role) {
    if (role == "query") return encode::EncodeRole::kQuery;
    if (role == "document") return encode::EncodeRole::kDocument;
    throw py::value_error(fmt::format("role must be 'query' or 'document', got '{}'", role));
}

py::object encode_texts(EncoderHandle& h, const py::handle& texts_obj, const std::string& role,
                        const std::string& kind, bool term_ids) {
    if (py::isinstance<py::str>(texts_obj)) {
        throw py::type_error("texts must be a list of str, not a single str (wrap it: [text])");
    }
    std::vector<std::string> texts;
    for (const py::handle& t : texts_obj) {
        if (!py::isinstance<py::str>(t)) {
            throw py::type_error(fmt::format("texts[{}] is {}, expected str", texts.size(),
                                             py::str(py::type::of(t).attr("__name__")).cast<std::string>()));
        }
        texts.push_back(t.cast<std::string>());
    }
    std::vector<std::string_view> views(texts.begin(), texts.end());
    encode::EncodeOptions options{.role = parse_role(role), .kind = unwrap(encode::parse_output_kind(kind))};
    encode::Embeddings emb = unwrap(without_gil([&] {
        std::lock_guard lock(h.mu);
        return h.encoder->encode(views, options);
    }));
    switch (emb.kind) {
        case encode::OutputKind::kDense: {
            const auto rows = static_cast<py::ssize_t>(emb.dense.rows);
            const auto dim = static_cast<py::ssize_t>(emb.dense.dim);
            return to_numpy(std::move(emb.dense.values), {rows, dim});
        }
        case encode::OutputKind::kSparse: {
            py::list out;
            for (const auto& sv : emb.sparse) {
                py::dict d;
                for (std::size_t i = 0; i < sv.ids.size(); ++i) {
                    const std::string_view term = term_ids ? std::string_view() : h.encoder->term(sv.ids[i]);
                    if (term.empty()) d[py::int_(sv.ids[i])] = sv.weights[i];
                    else d[py::str(term.data(), term.size())] = sv.weights[i];
                }
                out.append(std::move(d));
            }
            return out;
        }
        case encode::OutputKind::kMultiVector: {
            py::list out;
            for (auto& mat : emb.multi) {
                const auto rows = static_cast<py::ssize_t>(mat.rows);
                const auto dim = static_cast<py::ssize_t>(mat.dim);
                out.append(to_numpy(std::move(mat.values), {rows, dim}));
            }
            return out;
        }
    }
    return py::none();
}

}  // namespace

void bind_encode(py::module_& m) {
    py::class_<EncoderHandle>(m, "Encoder", R"doc(A text encoder: BERT-family transformers (dense, SPLADE
sparse, ColBERT multi-vector), model2vec and word-vector static models, or the model-free
HashingEncoder. Load one with :func:`quiver.load_encoder`.

    >>> enc = quiver.load_encoder("models/bge-small-en-v1.5")
    >>> X = enc.encode(["a first text", "a second"])                  # (2, dim) float32
    >>> q = enc.encode(["what is x?"], role="query")
    >>> splade = enc.encode(texts, kind="sparse")                     # [{"term": weight, ...}, ...]

One encode() runs at a time per encoder (concurrent calls wait); it parallelises internally over
its own threads with the GIL released.)doc")
        .def("encode", &encode_texts, py::arg("texts"), py::kw_only(), py::arg("role") = "document",
             py::arg("kind") = "dense", py::arg("term_ids") = false,
             R"doc(encode(texts, *, role="document", kind="dense", term_ids=False)

texts: list of str.  role: "document" or "query" (prompts, ColBERT markers).
kind: "dense" -> float32 array (len(texts), dim), row i = texts[i];
      "sparse" -> list of dicts term -> weight (vocabulary tokens, or int ids with term_ids=True);
      "multivector" -> list of float32 arrays (tokens, multivector_dim).
A kind the model does not offer (see ``outputs``) is an InvalidArgumentError.)doc")
        .def("encode_queries",
             [](EncoderHandle& h, const py::handle& texts) { return encode_texts(h, texts, "query", "dense", false); },
             py::arg("texts"), "Dense query embeddings: encode(texts, role='query').")
        .def("encode_documents",
             [](EncoderHandle& h, const py::handle& texts) {
                 return encode_texts(h, texts, "document", "dense", false);
             },
             py::arg("texts"), "Dense document embeddings: encode(texts, role='document').")
        .def_property_readonly("name", [](const EncoderHandle& h) { return h.encoder->info().name; })
        .def_property_readonly("family", [](const EncoderHandle& h) { return h.encoder->info().family; },
                               "'bert', 'model2vec', 'word-vectors' or 'hashing'.")
        .def_property_readonly("dim", [](const EncoderHandle& h) { return h.encoder->info().dim; },
                               "Dense dimension.")
        .def_property_readonly("sparse_dim", [](const EncoderHandle& h) { return h.encoder->info().sparse_dim; })
        .def_property_readonly("multivector_dim",
                               [](const EncoderHandle& h) { return h.encoder->info().multivector_dim; })
        .def_property_readonly("outputs",
                               [](const EncoderHandle& h) {
                                   std::vector<std::string> out;
                                   for (auto k : h.encoder->info().outputs) out.emplace_back(encode::to_string(k));
                                   return out;
                               },
                               "Kinds offered: 'dense', 'sparse', 'multivector'.")
        .def_property_readonly("normalized", [](const EncoderHandle& h) { return h.encoder->info().normalized; })
        .def_property_readonly("metric", [](const EncoderHandle& h) { return metric_name(h.encoder->info().metric); },
                               "The metric the model was trained for.")
        .def_property_readonly("max_length", [](const EncoderHandle& h) { return h.encoder->info().max_length; })
        .def("term",
             [](const EncoderHandle& h, std::uint32_t id) { return std::string(h.encoder->term(id)); },
             py::arg("id"), "The vocabulary token of a sparse term id ('' if unknown).")
        .def("__repr__", [](const EncoderHandle& h) {
            const auto& i = h.encoder->info();
            return fmt::format("<quiver.Encoder {} family={} dim={}>", i.name, i.family, i.dim);
        });

    m.def(
        "load_encoder",
        [](const std::string& dir, std::size_t threads, std::size_t batch, std::size_t max_length,
           std::optional<std::string> query_prefix, std::optional<std::string> document_prefix,
           std::size_t sparse_top_k, bool sif) {
            encode::LoadOptions options;
            options.threads = threads;
            options.batch = batch;
            options.max_length = max_length;
            options.query_prefix = std::move(query_prefix);
            options.document_prefix = std::move(document_prefix);
            options.sparse_top_k = sparse_top_k;
            options.sif = sif;
            auto h = std::make_unique<EncoderHandle>();
            h->encoder = unwrap(without_gil([&] { return encode::load_encoder(dir, options); }));
            return h;
        },
        py::arg("dir"), py::kw_only(), py::arg("threads") = 0, py::arg("batch") = 32, py::arg("max_length") = 512,
        py::arg("query_prefix") = py::none(), py::arg("document_prefix") = py::none(), py::arg("sparse_top_k") = 0,
        py::arg("sif") = false,
        R"doc(Loads the model in folder ``dir``, detecting its family (model2vec; BERT-family with
config.json + model.safetensors; word vectors with vocab.txt + base.fvecs). Errors name the folder and
the missing or inconsistent file (NotFoundError, InvalidArgumentError, DataLossError).

threads: encoding threads (0 = all cores).  batch: sequences per forward pass.
max_length: tokens per text.  query_prefix / document_prefix: override the model's prompts.
sparse_top_k: SPLADE, keep the k largest weights (0 = all).  sif: word vectors, SIF weighting.)doc");

    m.def(
        "HashingEncoder",
        [](std::size_t dim, std::uint64_t seed) {
            if (dim == 0) throw py::value_error("dim must be positive");
            auto h = std::make_unique<EncoderHandle>();
            h->encoder = std::make_unique<encode::HashingEncoder>(dim, seed);
            return h;
        },
        py::arg("dim"), py::arg("seed") = 0,
        R"doc(A deterministic encoder with no model: lower-cased words hashed (FNV-1a) to buckets and
signs, L2-normalised (dense) or bucket counts (sparse). Same text -> same vector everywhere; for tests.)doc");
}

}  // namespace quiver::python
