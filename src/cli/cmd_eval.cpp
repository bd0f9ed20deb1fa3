// `quiver eval`: index a test collection with a retriever, run its queries, and score the run with
// trec_eval semantics; or score an existing TREC run file. See docs/cli-eval.md.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <unordered_set>

#include "cli/common.h"
#include "cli/eval_retrievers.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/eval/dataset.h"
#include "quiver/eval/metrics.h"
#include "quiver/eval/run_file.h"
#include "quiver/pipeline/calibration.h"
#include "quiver/pipeline/chunking.h"
#include "quiver/pipeline/pipeline_file.h"
#include "quiver/pipeline/run_fusion.h"

namespace quiver::cli {
namespace {

struct EvalOptions {
    std::string dataset;
    std::string split = "test";
    std::string retriever = "bm25";
    std::string metrics = "ndcg@10,recall@100,map@100,mrr@10";
    std::size_t k = 1000;
    std::string run_out;   // --trec: write the run
    std::string json_path;  // --output: write the JSON report
    bool json = false;      // --json: JSON report on stdout instead of the table
    std::string run_file;
    std::string tag;
    bool keep_identical_ids = false;
    bool all_queries = false;
    bool quiet = false;
    EvalRetrieverConfig config;
    // Fusion of run files (--fuse) and its tuning.
    std::string fuse;           // comma-separated run files
    std::string fusion = "rrf";
    std::string weights;        // comma-separated
    std::string norm = "minmax";
    std::string missing = "zero";
    double rrf_k = 60.0;
    std::size_t depth = 1000;   // each run's list is cut here before fusing
    std::string pipeline;       // --pipeline FILE: fusion setting from a pipeline file
    std::string save_pipeline;  // --save-pipeline FILE
    std::string sweep;          // weights=LO:HI:STEP
    std::string tune_on;        // split to tune on
    std::string tune_metric = "ndcg@10";
    std::string cutoff;             // "calibrated"
    std::string calibration_split;  // split whose judgments train the cut-off
    std::size_t cutoff_depth = 100;
    std::string chunking;           // --chunking SPEC: index chunks, aggregate to documents
    std::size_t chunk_depth = 0;    // chunks retrieved per query (0 = 3 k)
};

std::vector<std::string> split_commas(std::string_view s) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        const std::size_t c = std::min(s.find(',', pos), s.size());
        if (c > pos) out.emplace_back(s.substr(pos, c - pos));
        pos = c + 1;
    }
    return out;
}

// What --fuse produced, for the report.
struct FusionOutcome {
    pipeline::FusionSpec spec;
    std::optional<pipeline::TuneResult> tuned;
    std::optional<pipeline::TuningRecord> record;  // for --save-pipeline
};

// Reads the --fuse runs, tunes the weights on --tune-on when --sweep is given (never on --split),
// and fuses them. The fusion setting comes from --pipeline or from the flags.
Result<eval::Run> fused_run(const EvalOptions& o, FusionOutcome& outcome) {
    const std::vector<std::string> files = split_commas(o.fuse);
    if (files.size() < 2) return invalid_argument("--fuse needs at least two run files (comma-separated)");
    std::vector<eval::Run> runs;
    for (const std::string& f : files) {
        QUIVER_ASSIGN_OR_RETURN(eval::Run r, eval::read_run(f));
        runs.push_back(std::move(r));
    }
    pipeline::FusionSpec spec;
    if (!o.pipeline.empty()) {
        QUIVER_ASSIGN_OR_RETURN(auto config, pipeline::load_pipeline(o.pipeline));
        spec = std::move(config.fusion);
    } else {
        QUIVER_ASSIGN_OR_RETURN(spec.method, pipeline::parse_fusion_method(o.fusion));
        QUIVER_ASSIGN_OR_RETURN(spec.normalization, pipeline::parse_normalization(o.norm));
        QUIVER_ASSIGN_OR_RETURN(spec.missing, pipeline::parse_missing_score(o.missing));
        spec.rrf_k = o.rrf_k;
        for (const std::string& w : split_commas(o.weights)) {
            char* end = nullptr;
            const double x = std::strtod(w.c_str(), &end);
            if (end == w.c_str() || *end != '\0') return invalid_argument("--weights: '" + w + "' is not a number");
            spec.weights.push_back(x);
        }
    }
    QUIVER_TRY(pipeline::validate_fusion(spec, runs.size()));
    if (o.depth == 0) return invalid_argument("--depth must be at least 1");
    if (!o.sweep.empty()) {
        if (o.tune_on.empty()) return invalid_argument("--sweep needs --tune-on SPLIT (the split whose judgments tune)");
        if (o.tune_on == o.split) {
            return invalid_argument("--tune-on " + o.tune_on + " is the reported split (--split): tune on another "
                                    "split, e.g. --tune-on train --split test");
        }
        QUIVER_ASSIGN_OR_RETURN(const pipeline::SweepRange range, pipeline::parse_sweep(o.sweep));
        QUIVER_ASSIGN_OR_RETURN(const eval::MetricSpec metric, eval::parse_metric(o.tune_metric));
        eval::LoadOptions load;
        load.split = o.tune_on;
        load.load_documents = false;
        QUIVER_ASSIGN_OR_RETURN(eval::Dataset tune_ds, eval::load_dataset(o.dataset, load));
        eval::EvalOptions eo;
        eo.ignore_identical_ids = !o.keep_identical_ids;
        eo.all_queries = o.all_queries;
        QUIVER_ASSIGN_OR_RETURN(auto tuned, pipeline::tune_fusion_weights(runs, tune_ds.qrels, metric, spec, range,
                                                                          o.depth, eo));
        spec = tuned.best;
        outcome.tuned = std::move(tuned);
    } else if (!o.tune_on.empty()) {
        return invalid_argument("--tune-on needs --sweep weights=LO:HI:STEP");
    }
    outcome.spec = spec;
    if (outcome.tuned) {
        outcome.record = pipeline::TuningRecord{o.tune_on, o.tune_metric, outcome.tuned->best_value, o.sweep, files};
    }
    return pipeline::fuse_runs(runs, spec, o.depth);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_eval(const EvalOptions& o) {
    if (o.quiet) ProgressBar::set_globally_enabled(false);
    auto specs = eval::parse_metrics(o.metrics);
    if (!specs) return report("eval", specs.error());
    if (o.k == 0) return report("eval", invalid_argument("--k must be at least 1"));

    eval::LoadOptions load;
    load.split = o.split;
    load.load_documents = o.run_file.empty() && o.fuse.empty();
    if (!o.run_file.empty() && !o.fuse.empty()) return report("eval", invalid_argument("--run-file and --fuse exclude each other"));
    auto t0 = std::chrono::steady_clock::now();
    auto ds = eval::load_dataset(o.dataset, load);
    if (!ds) return report("eval", ds.error());
    for (const std::string& w : ds->warnings) std::fprintf(stderr, "quiver eval: warning: %s\n", w.c_str());
    const double load_seconds = seconds_since(t0);
    std::optional<eval::Dataset> cal_ds;
    if (!o.cutoff.empty() || !o.calibration_split.empty()) {
        if (o.cutoff != "calibrated") return report("eval", invalid_argument("--cutoff takes 'calibrated'"));
        if (o.calibration_split.empty()) return report("eval", invalid_argument("--cutoff calibrated needs --calibration-split SPLIT"));
        if (o.calibration_split == o.split) {
            return report("eval", invalid_argument("--calibration-split " + o.calibration_split +
                                                   " is the reported split (--split): train on another split"));
        }
        eval::LoadOptions cal_load;
        cal_load.split = o.calibration_split;
        cal_load.load_documents = false;
        auto c = eval::load_dataset(o.dataset, cal_load);
        if (!c) return report("eval", c.error());
        cal_ds = std::move(c).value();
    }

    eval::Run run;
    double index_seconds = 0.0;
    double search_seconds = 0.0;
    std::string tag = o.tag;
    FusionOutcome fusion;
    if (!o.fuse.empty()) {
        auto r = fused_run(o, fusion);
        if (!r) return report("eval", r.error());
        run = std::move(r).value();
        if (tag.empty()) tag = "quiver-fused";
    } else if (!o.run_file.empty()) {
        auto r = eval::read_run(o.run_file);
        if (!r) return report("eval", r.error());
        run = std::move(r).value();
        if (tag.empty()) tag = "run";
    } else {
        // --pipeline on a retriever run: its prf applies unless --prf is given.
        EvalRetrieverConfig rc = o.config;
        if (!o.pipeline.empty()) {
            auto config = pipeline::load_pipeline(o.pipeline);
            if (!config) return report("eval", config.error());
            if (config->prf && rc.prf.empty()) rc.prf = pipeline::to_string(*config->prf);
        }
        auto retriever = make_eval_retriever(o.retriever, rc);
        if (!retriever) return report("eval", retriever.error());
        std::vector<EvalDoc> docs;
        docs.reserve(ds->documents.size());
        for (auto& d : ds->documents) docs.push_back({std::move(d.id), std::move(d.title), std::move(d.text)});
        ds->documents.clear();
        // Chunked: chunk j of document i is indexed as its own document "c<n>" (n = its position), with
        // the situated text (if asked) as its text; hits are aggregated back to documents.
        std::optional<pipeline::ChunkingSpec> chunking;
        std::vector<std::string> parent_ids;
        std::vector<std::pair<std::uint32_t, std::uint32_t>> chunk_of;  // position -> (document, chunk)
        if (!o.chunking.empty()) {
            auto spec = pipeline::parse_chunking(o.chunking);
            if (!spec) return report("eval", spec.error());
            chunking = *spec;
            std::vector<EvalDoc> chunks;
            for (std::size_t i = 0; i < docs.size(); ++i) {
                const auto texts = pipeline::chunk_document(docs[i].title, docs[i].text, *chunking);
                for (std::size_t j = 0; j < texts.size(); ++j) {
                    chunks.push_back({"c" + std::to_string(chunk_of.size()), "", texts[j]});
                    chunk_of.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j)});
                }
                parent_ids.push_back(std::move(docs[i].id));
            }
            std::fprintf(stderr, "quiver eval: %zu documents in %zu chunks (%s)\n", parent_ids.size(), chunks.size(),
                         o.chunking.c_str());
            docs = std::move(chunks);
        }
        std::vector<EvalQuery> queries;
        for (const auto& q : ds->queries) queries.push_back({q.id, q.text});
        if (cal_ds) {  // the calibration split's queries are retrieved too (and scored only for training)
            std::unordered_set<std::string_view> have;
            for (const auto& q : ds->queries) have.insert(q.id);
            for (const auto& q : cal_ds->queries) {
                if (have.count(q.id) == 0) queries.push_back({q.id, q.text});
            }
        }
        t0 = std::chrono::steady_clock::now();
        if (auto st = (*retriever)->index(docs); !st) return report("eval", st.error());
        index_seconds = seconds_since(t0);
        docs = {};
        // One extra hit per query so that dropping a self-match still leaves k.
        const std::size_t depth = chunking ? (o.chunk_depth > 0 ? o.chunk_depth : 3 * o.k)
                                           : (o.keep_identical_ids ? o.k : o.k + 1);
        t0 = std::chrono::steady_clock::now();
        auto hits = (*retriever)->search(queries, depth);
        if (!hits) return report("eval", hits.error());
        if (chunking) {
            for (auto& list : *hits) {
                std::vector<pipeline::ChunkHit> ch;
                for (const EvalHit& h : list) {
                    const auto [doc, chunk] = chunk_of[std::stoul(h.doc_id.substr(1))];
                    ch.push_back({doc, chunk, static_cast<double>(h.score)});
                }
                list.clear();
                for (const auto& d : pipeline::aggregate_chunks(ch, chunking->aggregation)) {
                    list.push_back({parent_ids[d.doc], static_cast<float>(d.score)});
                }
            }
        }
        search_seconds = seconds_since(t0);
        for (std::size_t i = 0; i < queries.size(); ++i) {
            auto& list = run[queries[i].id];
            for (const EvalHit& h : (*hits)[i]) {
                if (!o.keep_identical_ids && h.doc_id == queries[i].id) continue;
                if (list.size() == o.k) break;
                list.push_back({h.doc_id, static_cast<double>(h.score)});
            }
        }
        if (tag.empty()) tag = "quiver-" + o.retriever;
    }

    eval::EvalOptions eo;
    eo.ignore_identical_ids = !o.keep_identical_ids;
    eo.all_queries = o.all_queries;
    auto rep = eval::evaluate(ds->qrels, run, *specs, eo);
    if (!rep) return report("eval", rep.error());
    // A run for another collection scores 0 without complaint: say so when nothing lines up.
    {
        std::size_t shared_queries = 0, shared_docs = 0, run_entries = 0;
        std::unordered_set<std::string_view> judged_docs;
        for (const auto& [qid, docs] : ds->qrels) {
            for (const auto& [doc, rel] : docs) judged_docs.insert(doc);
        }
        for (const auto& [qid, entries] : run) {
            shared_queries += ds->qrels.count(qid);
            for (const auto& e : entries) shared_docs += judged_docs.count(e.doc_id);
            run_entries += entries.size();
        }
        std::vector<std::string> disjoint;
        if (!run.empty() && shared_queries == 0) {
            disjoint.push_back(fmt::format("the run shares no query id with the qrels ({} run queries, {} judged; "
                                           "e.g. run '{}', qrels '{}'): every metric is 0",
                                           run.size(), ds->qrels.size(), run.begin()->first,
                                           ds->qrels.empty() ? "" : ds->qrels.begin()->first));
        }
        if (run_entries > 0 && shared_docs == 0) {
            disjoint.push_back(fmt::format("the run shares no document id with the qrels ({} run entries, {} judged "
                                           "documents): is it a run for another collection?",
                                           run_entries, judged_docs.size()));
        }
        for (auto& w : disjoint) {
            warn("eval", w);
            ds->warnings.push_back(std::move(w));
        }
    }
    if (rep->run_queries_skipped > 0) {
        std::fprintf(stderr, "quiver eval: warning: %zu run queries have no judgments and were skipped\n",
                     rep->run_queries_skipped);
    }

    if (!o.run_out.empty()) {
        if (auto st = eval::write_run(o.run_out, run, tag); !st) return report("eval", st.error());
    }
    // Calibrated cut-off: trained on the calibration split only, reported on --split.
    std::string cutoff_table;
    json::Value cutoff_json;
    // --save-pipeline: the fusion setting (--fuse), the PRF (--prf) and the trained cut-off (--cutoff).
    pipeline::PipelineConfig to_save;
    to_save.fusion = fusion.spec;
    to_save.tuned = fusion.record;
    if (!o.config.prf.empty() && o.fuse.empty() && o.run_file.empty()) {
        auto prf = pipeline::parse_prf(o.config.prf);
        if (!prf) return report("eval", prf.error());
        to_save.prf = *prf;
    }
    if (cal_ds) {
        pipeline::CalibrationOptions co;
        co.depth = o.cutoff_depth;
        auto model = pipeline::train_calibration(run, cal_ds->qrels, co);
        if (!model) return report("eval", model.error());
        to_save.cutoff = pipeline::CutoffConfig{*model, o.calibration_split};
        const auto calibrated = pipeline::set_metrics(pipeline::apply_calibrated_cutoff(run, *model), ds->qrels);
        const double t_train = pipeline::best_global_threshold(run, cal_ds->qrels, o.cutoff_depth);
        const auto global = pipeline::set_metrics(pipeline::apply_global_cutoff(run, t_train, o.cutoff_depth), ds->qrels);
        const double t_oracle = pipeline::best_global_threshold(run, ds->qrels, o.cutoff_depth);
        const auto oracle = pipeline::set_metrics(pipeline::apply_global_cutoff(run, t_oracle, o.cutoff_depth), ds->qrels);
        cutoff_table += fmt::format("returned sets on split {} ({} queries; cut-offs trained on split {}):\n", o.split,
                                    calibrated.queries, o.calibration_split);
        cutoff_table += fmt::format("{:<44} {:>9} {:>9} {:>9}\n", "cut-off", "precision", "recall", "F1");
        const auto row = [&](const std::string& name, const pipeline::SetMetrics& m) {
            cutoff_table += fmt::format("{:<44} {:>9.4f} {:>9.4f} {:>9.4f}\n", name, m.precision, m.recall, m.f1);
        };
        row(fmt::format("calibrated (P >= {:.4f})", model->threshold), calibrated);
        row(fmt::format("global score >= {:.4g} (best on {})", t_train, o.calibration_split), global);
        row(fmt::format("global score >= {:.4g} (best on {}: oracle)", t_oracle, o.split), oracle);
        cutoff_json = json::Value::object();
        const auto obj = [](const pipeline::SetMetrics& m, double t) {
            json::Value v = json::Value::object();
            v.set("threshold", json::Value::number(t));
            v.set("precision", json::Value::number(m.precision));
            v.set("recall", json::Value::number(m.recall));
            v.set("f1", json::Value::number(m.f1));
            return v;
        };
        cutoff_json.set("calibration_split", json::Value::string(o.calibration_split));
        cutoff_json.set("calibrated", obj(calibrated, model->threshold));
        cutoff_json.set("global_tuned", obj(global, t_train));
        cutoff_json.set("global_oracle", obj(oracle, t_oracle));
    }
    if (!o.save_pipeline.empty()) {
        if (auto st = write_text(o.save_pipeline, json::dump(pipeline::pipeline_to_json(to_save), true) + "\n"); !st) {
            return report("eval", st.error());
        }
    }
    const std::size_t nq = ds->queries.size();
    std::string table;
    table += fmt::format("dataset {} ({}, split {}): {} judged queries\n", o.dataset, eval::to_string(ds->layout),
                         o.split, rep->queries_in_qrels);
    std::string weights_text;
    for (double w : fusion.spec.weights) weights_text += (weights_text.empty() ? "" : ",") + fmt::format("{:.4g}", w);
    if (!o.fuse.empty()) {
        table += fmt::format("fused {} runs: {}{} weights [{}]\n", split_commas(o.fuse).size(),
                             pipeline::to_string(fusion.spec.method),
                             fusion.spec.method == pipeline::FusionMethod::kRrf
                                 ? fmt::format(" k={}", fusion.spec.rrf_k)
                                 : fmt::format(" {} missing={}", pipeline::to_string(fusion.spec.normalization),
                                               pipeline::to_string(fusion.spec.missing)),
                             weights_text.empty() ? "1 each" : weights_text);
        if (fusion.tuned) {
            table += fmt::format("tuned on split {} ({} points of {}): {} {:.4f}\n", o.tune_on, fusion.tuned->grid.size(),
                                 o.sweep, o.tune_metric, fusion.tuned->best_value);
        }
    } else if (o.run_file.empty()) {
        table += fmt::format("retriever {}: indexed in {:.2f} s, searched {} queries in {:.2f} s ({:.0f} queries/s)\n",
                             o.retriever, index_seconds, nq, search_seconds,
                             search_seconds > 0 ? static_cast<double>(nq) / search_seconds : 0.0);
    } else {
        table += fmt::format("run file {}: {} queries\n", o.run_file, run.size());
    }
    table += fmt::format("{:<14} {:>8} {:>8}\n", "metric", "value", "queries");
    for (const auto& m : rep->metrics) table += fmt::format("{:<14} {:>8.4f} {:>8}\n", m.spec.name(), m.mean, m.num_queries);
    table += cutoff_table;

    if (o.json || !o.json_path.empty()) {
        json::Value j = json::Value::object();
        j.set("dataset", json::Value::string(o.dataset));
        j.set("layout", json::Value::string(eval::to_string(ds->layout)));
        j.set("split", json::Value::string(o.split));
        if (!o.fuse.empty()) {
            json::Value files = json::Value::array();
            for (const auto& f : split_commas(o.fuse)) files.as_array().push_back(json::Value::string(f));
            j.set("fused_runs", std::move(files));
            j.set("fusion", pipeline::fusion_to_json(fusion.spec));
            if (fusion.tuned) {
                json::Value t = json::Value::object();
                t.set("split", json::Value::string(o.tune_on));
                t.set("metric", json::Value::string(o.tune_metric));
                t.set("value", json::Value::number(fusion.tuned->best_value));
                t.set("points", json::Value::number(static_cast<double>(fusion.tuned->grid.size())));
                j.set("tuned", std::move(t));
            }
        } else if (o.run_file.empty()) {
            j.set("retriever", json::Value::string(o.retriever));
            j.set("k1", json::Value::number(o.config.k1));
            j.set("b", json::Value::number(o.config.b));
            if (!o.config.prf.empty()) j.set("prf", json::Value::string(o.config.prf));
            if (!o.chunking.empty()) j.set("chunking", json::Value::string(o.chunking));
            j.set("k", json::Value::number(static_cast<double>(o.k)));
            j.set("index_seconds", json::Value::number(index_seconds));
            j.set("search_seconds", json::Value::number(search_seconds));
        } else {
            j.set("run_file", json::Value::string(o.run_file));
        }
        j.set("load_seconds", json::Value::number(load_seconds));
        j.set("queries", json::Value::number(static_cast<double>(rep->queries_in_qrels)));
        json::Value metrics = json::Value::object();
        for (const auto& m : rep->metrics) metrics.set(m.spec.name(), json::Value::number(m.mean));
        j.set("metrics", std::move(metrics));
        json::Value warnings = json::Value::array();
        for (const auto& w : ds->warnings) warnings.as_array().push_back(json::Value::string(w));
        j.set("warnings", std::move(warnings));
        if (cal_ds) j.set("cutoff", std::move(cutoff_json));
        const std::string text = json::dump(j, true) + "\n";
        if (!o.json_path.empty()) {
            if (auto st = write_text(o.json_path, text); !st) return report("eval", st.error());
        }
        if (o.json) std::fputs(text.c_str(), stdout);
    }
    if (!o.json) std::fputs(table.c_str(), stdout);
    return 0;
}

void add_eval_command(CLI::App& app) {
    auto opts = std::make_shared<EvalOptions>();
    auto* sub = app.add_subcommand(
        "eval",
        "Evaluate retrieval on a test collection with trec_eval semantics.\n"
        "  quiver eval --dataset DIR --retriever bm25 [--k1 0.9 --b 0.4] [--k 1000] [--metrics LIST]\n"
        "      indexes the collection, runs every judged query, prints the metrics table.\n"
        "  quiver eval --dataset DIR --run-file RUN.trec\n"
        "      scores an existing TREC run (qid Q0 docid rank score tag), e.g. from `quiver search --trec`;\n"
        "      warns when the run shares no query id or no document id with the qrels.\n"
        "Layouts are detected: BEIR (corpus.jsonl, queries.jsonl, qrels/<split>.tsv or qrels.jsonl),\n"
        "TREC (<DOC> files, topics, 4-column qrels), SMART/Cranfield (.I records).\n"
        "Metrics: ndcg@K (linear gain), recall@K, map@K, p@K, recip_rank (trec_eval), mrr@K (BEIR,\n"
        "averaged over all judged queries). Ranking ties break by doc id descending; queries without\n"
        "judgments are skipped; a run entry whose doc id equals its query id is dropped (BEIR default).\n"
        "A document id twice in the corpus is an error.\n"
        "--json prints the report as JSON on stdout (instead of the table); --output FILE also writes it.\n"
        "  quiver eval --dataset DIR --fuse A.trec,B.trec [--fusion rrf|convex] [--weights 0.7,0.3]\n"
        "      [--norm minmax|zscore|dbsf] [--missing zero|min] [--rrf-k 60] [--depth 1000]\n"
        "      fuses run files (each cut at --depth) and scores the fused run;\n"
        "  ... --sweep weights=0:1:0.05 --tune-on train --metric ndcg@10 [--save-pipeline P.json]\n"
        "      picks the weights on the --tune-on split's judgments and reports --split (never the same);\n"
        "  ... --pipeline P.json takes the fusion setting from a pipeline file.");
    sub->add_option("--dataset", opts->dataset, "Dataset directory")->required();
    sub->add_option("--split", opts->split, "Qrels split for BEIR layouts (qrels/<split>.tsv)")->capture_default_str();
    sub->add_option("--retriever", opts->retriever,
                    fmt::format("Retriever to evaluate ({})", fmt::join(eval_retriever_names(), ", ")))
        ->capture_default_str();
    sub->add_option("--k1", opts->config.k1, "BM25 k1 (term frequency saturation)")->capture_default_str();
    sub->add_option("--b", opts->config.b, "BM25 b (length normalisation)")->capture_default_str();
    sub->add_option("--k", opts->k, "Documents retrieved per query")->capture_default_str();
    sub->add_option("--metrics", opts->metrics, "Comma-separated metrics")->capture_default_str();
    sub->add_option("--trec", opts->run_out, "Write the run as a TREC run file here");
    sub->add_option("--run-file", opts->run_file, "Evaluate this TREC run instead of retrieving");
    sub->add_option("--tag", opts->tag, "Run tag written in --trec (default quiver-<retriever>)");
    sub->add_flag("--json", opts->json, "Print the report as JSON on stdout instead of the table");
    sub->add_option("-o,--output", opts->json_path, "Also write the report as JSON to this file");
    sub->add_option("--threads", opts->config.threads, "Threads for indexing and retrieval (0 = all cores)")
        ->capture_default_str();
    sub->add_option("--model", opts->config.model_dir, "Model directory (encoder-based retrievers)");
    sub->add_option("--index-type", opts->config.index, "Dense index type: flat or hnsw (dense retrievers)")
        ->capture_default_str();
    sub->add_option("--batch", opts->config.batch, "Encoder batch size")->capture_default_str();
    sub->add_option("--max-length", opts->config.max_length, "Encoder max tokens")->capture_default_str();
    sub->add_flag("--keep-identical-ids", opts->keep_identical_ids,
                  "Keep run entries whose doc id equals the query id (BEIR drops them)");
    sub->add_flag("--all-queries", opts->all_queries,
                  "Average over all judged queries, counting missing ones as 0 (trec_eval -c)");
    sub->add_flag("--quiet", opts->quiet, "No progress bars");
    sub->add_option("--prf", opts->config.prf,
                    "Pseudo-relevance feedback: rm3:fb_docs=10,fb_terms=10,weight=0.5 or rocchio:fb_docs=10,fb_terms=10,"
                    "alpha=1,beta=0.75 (bm25); rocchio:fb_docs=3,alpha=0.9,beta=0.1 (dense, on vectors)");
    sub->add_option("--cutoff", opts->cutoff,
                    "calibrated: train a query-dependent cut-off on --calibration-split and report precision, recall "
                    "and F1 of the returned sets (beside the best global score threshold)");
    sub->add_option("--calibration-split", opts->calibration_split, "Split whose judgments train --cutoff (not --split)");
    sub->add_option("--cutoff-depth", opts->cutoff_depth, "Entries per query the cut-off considers")->capture_default_str();
    sub->add_option("--chunking", opts->chunking,
                    "Index documents in chunks and aggregate: tokens:size=128,overlap=32,aggregate=maxp|firstp|sump"
                    "[,situated=1,context=16] or sentences:size=3,overlap=1");
    sub->add_option("--chunk-depth", opts->chunk_depth, "Chunks retrieved per query before aggregation (0 = 3 k)");
    sub->add_option("--fuse", opts->fuse, "Fuse these TREC run files (comma-separated) and evaluate the result");
    sub->add_option("--fusion", opts->fusion, "Fusion method for --fuse: rrf or convex")->capture_default_str();
    sub->add_option("--weights", opts->weights, "Per-run fusion weights, comma-separated (default 1 each)");
    sub->add_option("--norm", opts->norm, "Score normalisation for convex fusion: minmax, zscore, dbsf")
        ->capture_default_str();
    sub->add_option("--missing", opts->missing,
                    "Convex fusion: a document missing from a run scores zero or that run's minimum (zero, min)")
        ->capture_default_str();
    sub->add_option("--rrf-k", opts->rrf_k, "RRF constant k")->capture_default_str();
    sub->add_option("--depth", opts->depth, "Entries of each run fused, and of the fused run")->capture_default_str();
    sub->add_option("--pipeline", opts->pipeline,
                    "Take the fusion setting (--fuse) or the prf (a retriever run, unless --prf) from this pipeline file");
    sub->add_option("--save-pipeline", opts->save_pipeline,
                    "Write a pipeline file: the (tuned) fusion setting of --fuse, the --prf setting, and the cut-off "
                    "trained by --cutoff calibrated (usable by eval --pipeline, quiver query --pipeline and the "
                    "collection search's fusion, prf and cutoff)");
    sub->add_option("--sweep", opts->sweep, "Tune fusion weights over a grid: weights=LO:HI:STEP");
    sub->add_option("--tune-on", opts->tune_on, "Split whose judgments tune --sweep (must differ from --split)");
    sub->add_option("--metric,--tune-metric", opts->tune_metric, "Metric --sweep maximises")->capture_default_str();
    set_action(sub, [opts]() { return run_eval(*opts); });
}

const CommandRegistrar kReg{40, &add_eval_command};

}  // namespace
}  // namespace quiver::cli
