// Evaluation (eval/): test collections, trec_eval metrics, TREC run files. Bound as quiver.eval.
//
// Python shapes: qrels and runs are pytrec_eval's dicts — qrels {qid: {docid: relevance}}, runs
// {qid: {docid: score}} (a list of (docid, score) pairs per query is accepted too).
#include "common.h"

#include <fmt/format.h>
#include <pybind11/stl.h>

#include "quiver/eval/dataset.h"
#include "quiver/eval/metrics.h"
#include "quiver/eval/run_file.h"

namespace quiver::python {
namespace {

eval::Run run_from_python(const py::dict& obj) {
    eval::Run run;
    for (auto [qid_obj, entries] : obj) {
        const std::string qid = py::str(qid_obj).cast<std::string>();
        auto& out = run[qid];
        if (py::isinstance<py::dict>(entries)) {
            for (auto [doc, score] : entries.cast<py::dict>()) {
                out.push_back({py::str(doc).cast<std::string>(), score.cast<double>()});
            }
        } else {
            for (const py::handle& pair : entries) {
                auto t = pair.cast<py::sequence>();
                if (t.size() != 2) throw py::value_error(fmt::format("run['{}']: entries must be (docid, score)", qid));
                out.push_back({py::str(t[0]).cast<std::string>(), t[1].cast<double>()});
            }
        }
    }
    return run;
}

py::dict run_to_python(const eval::Run& run) {
    py::dict out;
    for (const auto& [qid, entries] : run) {
        py::dict d;
        for (const auto& e : entries) d[py::str(e.doc_id)] = e.score;
        out[py::str(qid)] = std::move(d);
    }
    return out;
}

eval::Qrels qrels_from_python(const py::dict& obj) {
    eval::Qrels qrels;
    for (auto [qid, docs] : obj) {
        auto& row = qrels[py::str(qid).cast<std::string>()];
        for (auto [doc, rel] : docs.cast<py::dict>()) row[py::str(doc).cast<std::string>()] = rel.cast<int>();
    }
    return qrels;
}

struct PyDataset {
    eval::Dataset d;
};

}  // namespace

void bind_eval(py::module_& parent) {
    py::module_ m = parent.def_submodule("_eval", "quiver.eval (native part)");

    py::class_<eval::Document>(m, "Document")
        .def_readonly("id", &eval::Document::id)
        .def_readonly("title", &eval::Document::title)
        .def_readonly("text", &eval::Document::text)
        .def("__repr__", [](const eval::Document& d) { return fmt::format("<Document {}>", d.id); });
    py::class_<eval::Query>(m, "Query")
        .def_readonly("id", &eval::Query::id)
        .def_readonly("text", &eval::Query::text)
        .def("__repr__", [](const eval::Query& q) { return fmt::format("<Query {}: {}>", q.id, q.text); });

    py::class_<PyDataset>(m, "Dataset", R"doc(A test collection: documents, queries (those judged in the split)
and qrels {qid: {docid: relevance}}. ``layout`` is 'beir', 'trec' or 'smart'; ``warnings`` lists
problems that do not prevent evaluation.)doc")
        .def_property_readonly("layout", [](const PyDataset& p) { return std::string(eval::to_string(p.d.layout)); })
        .def_property_readonly("documents", [](const PyDataset& p) { return p.d.documents; },
                               "List of Document (id, title, text).")
        .def_property_readonly("queries", [](const PyDataset& p) { return p.d.queries; }, "List of Query (id, text).")
        .def_property_readonly("qrels", [](const PyDataset& p) { return p.d.qrels; })
        .def_property_readonly("warnings", [](const PyDataset& p) { return p.d.warnings; })
        .def("__repr__", [](const PyDataset& p) {
            return fmt::format("<quiver.eval.Dataset {} documents={} queries={}>", eval::to_string(p.d.layout),
                               p.d.documents.size(), p.d.queries.size());
        });

    m.def(
        "load_dataset",
        [](const std::string& dir, const std::string& split, bool load_documents) {
            PyDataset p;
            p.d = unwrap(without_gil(
                [&] { return eval::load_dataset(dir, {.split = split, .load_documents = load_documents}); }));
            return p;
        },
        py::arg("dir"), py::arg("split") = "test", py::arg("load_documents") = true,
        R"doc(Loads a BEIR, TREC or SMART (Cranfield) test collection from ``dir`` (layout detected).
Malformed input is an InvalidArgumentError naming file and line.)doc");

    py::class_<eval::EvalReport>(m, "EvalReport", R"doc(Result of evaluate(): ``report["ndcg@10"]`` is a mean;
``metrics`` {name: mean}; ``per_query`` {name: {qid: value}}; query counts.)doc")
        .def_property_readonly("metrics",
                               [](const eval::EvalReport& r) {
                                   py::dict d;
                                   for (const auto& mr : r.metrics) d[py::str(mr.spec.name())] = mr.mean;
                                   return d;
                               })
        .def_property_readonly("per_query",
                               [](const eval::EvalReport& r) {
                                   py::dict d;
                                   for (const auto& mr : r.metrics) d[py::str(mr.spec.name())] = py::cast(mr.per_query);
                                   return d;
                               })
        .def_readonly("queries_evaluated", &eval::EvalReport::queries_evaluated)
        .def_readonly("queries_in_qrels", &eval::EvalReport::queries_in_qrels)
        .def_readonly("run_queries_skipped", &eval::EvalReport::run_queries_skipped)
        .def("__getitem__",
             [](const eval::EvalReport& r, const std::string& name) {
                 for (const auto& mr : r.metrics) {
                     if (mr.spec.name() == name) return mr.mean;
                 }
                 throw py::key_error(name);
             })
        .def("__repr__", [](const eval::EvalReport& r) {
            std::string s = "<EvalReport";
            for (const auto& mr : r.metrics) s += fmt::format(" {}={:.4f}", mr.spec.name(), mr.mean);
            return s + fmt::format(" queries={}>", r.queries_evaluated);
        });

    m.def(
        "evaluate",
        [](const py::dict& qrels, const py::dict& run, const std::string& metrics, int relevance_level,
           bool ignore_identical_ids, bool all_queries) {
            auto specs = unwrap(eval::parse_metrics(metrics));
            eval::Qrels q = qrels_from_python(qrels);
            eval::Run r = run_from_python(run);
            eval::EvalOptions options{.relevance_level = relevance_level,
                                      .ignore_identical_ids = ignore_identical_ids,
                                      .all_queries = all_queries};
            return unwrap(without_gil([&] { return eval::evaluate(q, r, specs, options); }));
        },
        py::arg("qrels"), py::arg("run"), py::arg("metrics") = "ndcg@10", py::kw_only(), py::arg("relevance_level") = 1,
        py::arg("ignore_identical_ids") = true, py::arg("all_queries") = false,
        R"doc(trec_eval / pytrec_eval metrics of ``run`` {qid: {docid: score}} against ``qrels``
{qid: {docid: relevance}}. ``metrics``: comma-separated ndcg@K, recall@K, map@K, p@K, mrr@K,
recip_rank. ``ignore_identical_ids`` (BEIR's default) drops a document equal to its query id;
``all_queries`` counts judged queries missing from the run as 0 (trec_eval -c).)doc");

    m.def(
        "read_run", [](const std::string& path) { return run_to_python(unwrap(eval::read_run(path))); },
        py::arg("path"), "Reads a TREC run file (qid Q0 docid rank score tag) as {qid: {docid: score}}.");
    m.def(
        "write_run",
        [](const std::string& path, const py::dict& run, const std::string& tag) {
            unwrap(eval::write_run(path, run_from_python(run), tag));
        },
        py::arg("path"), py::arg("run"), py::arg("tag") = "quiver",
        "Writes {qid: {docid: score}} as a TREC run file (ranked by score, ties by docid descending).");
    m.def(
        "format_run",
        [](const py::dict& run, const std::string& tag) { return eval::format_run(run_from_python(run), tag); },
        py::arg("run"), py::arg("tag") = "quiver", "The TREC run file text of ``run``.");
}

}  // namespace quiver::python
