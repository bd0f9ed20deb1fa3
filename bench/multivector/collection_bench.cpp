// `quiver bench mvcollection`: a collection's multi_vector field searched through MUVERA (the field's
// blocked FDE scan, candidates re-ranked by exact MaxSim) against exact MaxSim brute force, on the
// documents of a multi-vector JSONL file (`scripts/bench-multivector`'s docs.jsonl).
//
// For each token codec asked (float32, int8) a collection with one multi_vector field (vectors given)
// ingests every document in batches and is optimized into one persisted segment; then every query runs
// through Collection::search on this thread, in whole passes (a cold pass reported on its own, then
// warm passes: mean and p99 per query), for each candidate depth asked (the search's `ef`; 0 = the
// field's `candidates`). Ground truth and the baseline are the library's exact MaxSim brute force over
// float32 tokens (multivector::exact_search, sgemm tiles; set OPENBLAS_NUM_THREADS=1 for one thread),
// timed the same way. recall@k is by document id against the exact top-k. Bytes per document: the
// segment's multi-vector index file (token store + blocked FDEs), its token store and FDE parts, and
// the segment's document store (which keeps the token vectors as written, for merges and `get`).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/report.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/engine/collection.h"
#include "quiver/multivector/multivector_index.h"
#include "registry.h"

namespace quiver::bench {
namespace {

struct Latency {
    double cold_mean_us = 0, mean_us = 0, p99_us = 0;
};

std::vector<std::size_t> size_list(const std::string& s) {
    std::vector<std::size_t> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        if (!item.empty()) out.push_back(std::stoul(item));
    }
    return out;
}

std::vector<std::string> word_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        if (!item.empty()) out.push_back(item);
    }
    return out;
}

// One cold pass over the queries, then `warm` passes; `run(q)` answers query q (and keeps its result).
template <class Fn>
Latency passes(std::size_t nq, std::size_t warm, Fn&& run) {
    Latency lat;
    std::vector<double> per_query;
    double warm_us = 0;
    for (std::size_t pass = 0; pass <= warm; ++pass) {
        const auto p0 = std::chrono::steady_clock::now();
        for (std::size_t q = 0; q < nq; ++q) {
            const auto t0 = std::chrono::steady_clock::now();
            run(q);
            if (pass > 0) {
                per_query.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
            }
        }
        const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - p0).count();
        if (pass == 0) {
            lat.cold_mean_us = us / static_cast<double>(nq);
        } else {
            warm_us += us;
        }
    }
    if (warm > 0) {
        lat.mean_us = warm_us / static_cast<double>(nq * warm);
        lat.p99_us = percentile(per_query, 99.0);
    } else {
        lat.mean_us = lat.cold_mean_us;
    }
    return lat;
}

json::Value latency_json(const Latency& l) {
    json::Value o = json::Value::object();
    o.set("mean_us", json::Value::number(l.mean_us));
    o.set("p99_us", json::Value::number(l.p99_us));
    o.set("cold_mean_us", json::Value::number(l.cold_mean_us));
    return o;
}

std::string newest_segment(const std::string& dir) {
    std::string seg;
    unsigned long best = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
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

int run_mvcollection(int argc, char** argv) {
    CLI::App app{"A collection's multi_vector field (MUVERA blocked FDEs + MaxSim re-rank) vs exact MaxSim brute "
                 "force: recall@k, whole-pass single-thread latency, bytes per document, float32 and int8 tokens."};
    std::string docs_path, queries_path, dir = "/tmp/quiver_mvcollection", json_path, codecs = "float32,int8",
                                          depths = "0";
    std::size_t k = 10, warm = 2, exact_warm = 1, max_queries = 0, batch = 2000, threads = 2;
    engine::MuveraFieldParams mp;
    bool keep = false, reuse = false;
    app.add_option("--docs", docs_path, "Documents: multi-vector JSONL ({\"id\", \"vectors\"})")->required();
    app.add_option("--queries", queries_path, "Queries: multi-vector JSONL")->required();
    app.add_option("--k", k, "Results per query (recall@k)")->capture_default_str();
    app.add_option("--max-queries", max_queries, "Use only the first N queries (0 = all)");
    app.add_option("--codecs", codecs, "Token codecs, one collection each (float32, int8)")->capture_default_str();
    app.add_option("--candidates", depths,
                   "Comma-separated candidate depths per search (the search's ef; 0 = the field's candidates)")
        ->capture_default_str();
    app.add_option("--k-sim", mp.k_sim, "Field option k_sim")->capture_default_str();
    app.add_option("--d-proj", mp.d_proj, "Field option d_proj")->capture_default_str();
    app.add_option("--r-reps", mp.r_reps, "Field option r_reps")->capture_default_str();
    app.add_option("--field-candidates", mp.candidates, "Field option candidates")->capture_default_str();
    app.add_option("--passes", warm, "Warm passes after the cold one (collection searches)")->capture_default_str();
    app.add_option("--exact-passes", exact_warm, "Warm passes after the cold one (exact brute force)")->capture_default_str();
    app.add_option("--batch", batch, "Documents per upsert")->capture_default_str();
    app.add_option("--threads", threads, "Build threads (merges); searches run on one thread")->capture_default_str();
    app.add_option("--dir", dir, "Collections are written under DIR/<codec>")->capture_default_str();
    app.add_flag("--keep", keep, "Keep the collections");
    app.add_flag("--reuse", reuse, "Search collections left in --dir by a --keep run (same documents and options)");
    app.add_option("--json", json_path, "Write the figures as JSON ('-' = stdout)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    auto fail = [](const Error& e) {
        std::fprintf(stderr, "quiver bench mvcollection: error: %s\n", e.to_string().c_str());
        return 1;
    };

    auto queries = multivector::read_multivector_jsonl(queries_path, max_queries);
    if (!queries) return fail(queries.error());
    std::fprintf(stderr, "reading %s\n", docs_path.c_str());
    auto docs = multivector::read_multivector_jsonl(docs_path);
    if (!docs) return fail(docs.error());
    const std::size_t dim = docs->dim;
    if (queries->dim != dim) {
        return fail(invalid_argument(fmt::format("queries have dimension {}, documents {}", queries->dim, dim)));
    }
    // The documents once, as a float32 store (the brute force's, and the source of every ingest).
    multivector::TokenStoreBuilder fb(dim, multivector::TokenCodec::kFloat32);
    for (auto& d : docs->docs) {
        if (auto st = fb.add(d.view()); !st) return fail(st.error());
        d = Matrix<float>();
    }
    const multivector::TokenStore store = std::move(fb).finish();
    const std::vector<std::string> ids = std::move(docs->ids);
    const std::size_t n = store.size();
    std::unordered_map<std::string, std::uint32_t> doc_of;
    for (std::size_t i = 0; i < n; ++i) doc_of.emplace(ids[i], static_cast<std::uint32_t>(i));
    std::vector<Matrix<float>> qs;
    std::vector<engine::TokenVectors> qtv;
    std::size_t q_tokens = 0;
    for (auto& q : queries->docs) {
        if (q.rows == 0) continue;  // no known word: no MaxSim neighbours
        q_tokens += q.rows;
        engine::TokenVectors tv;
        tv.dim = dim;
        tv.values.assign(q.values.begin(), q.values.begin() + static_cast<std::ptrdiff_t>(q.rows * dim));
        qtv.push_back(std::move(tv));
        qs.push_back(std::move(q));
    }
    const std::size_t nq = qs.size();
    std::fprintf(stderr, "%zu documents (%zu tokens x %zu), %zu queries (%.1f tokens on average)\n", n,
                 store.total_tokens(), dim, nq, nq > 0 ? static_cast<double>(q_tokens) / static_cast<double>(nq) : 0.0);

    // Exact brute force: the truth and the baseline.
    std::vector<std::vector<multivector::Hit>> truth(nq);
    multivector::MaxSimScratch scratch;
    const Latency exact = passes(nq, exact_warm, [&](std::size_t q) {
        truth[q] = multivector::exact_search(store, qs[q].view(), k, scratch);
    });
    std::fprintf(stderr, "exact MaxSim brute force: mean %.0f us (cold %.0f us)\n", exact.mean_us, exact.cold_mean_us);

    struct Run {
        std::string codec;
        std::size_t depth = 0;
        double recall = 0;
        Latency lat;
        std::size_t blocked_plans = 0, plans = 0;
    };
    struct Built {
        std::string codec;
        double ingest_s = 0, optimize_s = 0;
        std::size_t segments = 0;
        double index_file_per_doc = 0, tokens_per_doc = 0, fde_per_doc = 0, docstore_per_doc = 0;
    };
    std::vector<Run> runs;
    std::vector<Built> built;
    const std::vector<std::size_t> depth_list = size_list(depths);
    for (const std::string& codec_name : word_list(codecs)) {
        auto codec = multivector::parse_token_codec(codec_name);
        if (!codec) return fail(codec.error());
        engine::Schema schema;
        engine::FieldSpec f;
        f.name = "tokens";
        f.type = engine::FieldType::kMultiVector;
        f.dim = dim;
        f.mv_index = engine::MultiVectorIndexKind::kMuvera;
        f.muvera = mp;
        f.token_codec = *codec;
        schema.fields = {f};
        engine::CollectionOptions copt;
        copt.background_merge = false;
        copt.build_threads = threads;
        copt.flush_docs = n + 1;
        const std::string cdir = dir + "/" + codec_name;
        Built b;
        b.codec = codec_name;
        std::shared_ptr<engine::Collection> c;
        if (reuse) {
            auto opened = engine::Collection::open(cdir, copt);
            if (!opened) return fail(opened.error());
            c = std::move(opened).value();
            if (c->stats().documents != n) {
                return fail(invalid_argument(fmt::format("{} holds {} documents, --docs {}", cdir,
                                                         c->stats().documents, n)));
            }
            if (!(c->schema().fields.size() == 1 && c->schema().fields[0].muvera == mp &&
                  c->schema().fields[0].token_codec == *codec)) {
                return fail(invalid_argument(cdir + " was built with other field options"));
            }
        } else {
            std::filesystem::remove_all(cdir);
            std::filesystem::create_directories(dir);
            auto created = engine::Collection::create(cdir, schema, copt);
            if (!created) return fail(created.error());
            c = std::move(created).value();
            ProgressBar bar(fmt::format("ingest ({})", codec_name), n, "documents");
            Stopwatch sw;
            for (std::size_t at = 0; at < n; at += batch) {
                std::vector<engine::Document> part;
                for (std::size_t i = at; i < std::min(n, at + batch); ++i) {
                    engine::Document d;
                    d.id = ids[i];
                    if (store.tokens(i) > 0) {
                        engine::TokenVectors tv;
                        tv.dim = dim;
                        const float* r = store.float_rows(i);
                        tv.values.assign(r, r + store.tokens(i) * dim);
                        d.fields["tokens"] = std::move(tv);
                    }
                    part.push_back(std::move(d));
                }
                const std::size_t count = part.size();
                if (auto st = c->upsert(std::move(part)); !st) return fail(st.error());
                bar.add(count);
            }
            bar.finish();
            b.ingest_s = sw.seconds();
            Stopwatch opt;
            {
                ProgressHeartbeat beat("optimize");
                if (auto st = c->optimize(); !st) return fail(st.error());
            }
            b.optimize_s = opt.seconds();
            std::fprintf(stderr, "%s: ingested in %.1f s, optimized in %.1f s\n", codec_name.c_str(), b.ingest_s,
                         b.optimize_s);
        }
        b.segments = c->stats().segments;
        const std::string seg = newest_segment(cdir);
        const double nd = static_cast<double>(std::max<std::size_t>(n, 1));
        if (!seg.empty()) {
            const std::string mvix = seg + "/mv_tokens.mvix";
            b.index_file_per_doc = static_cast<double>(std::filesystem::file_size(mvix)) / nd;
            b.docstore_per_doc = static_cast<double>(std::filesystem::file_size(seg + "/docs.qvr")) / nd;
            auto ix = multivector::MultiVectorIndex::open(mvix);
            if (!ix) return fail(ix.error());
            b.tokens_per_doc = static_cast<double>((*ix)->store().bytes()) / nd;
            b.fde_per_doc = static_cast<double>((*ix)->fde_bytes()) / nd;
        }
        built.push_back(b);
        for (const std::size_t depth : depth_list) {
            std::vector<std::vector<std::string>> got(nq);
            Run r;
            r.codec = codec_name;
            r.depth = depth;
            std::size_t failures = 0;
            r.lat = passes(nq, warm, [&](std::size_t q) {
                engine::SearchRequest req;
                req.clauses.push_back(engine::QueryClause::of_tokens("tokens", qtv[q]));
                req.k = k;
                req.ef = depth;
                req.return_fields = std::vector<std::string>{};
                auto hits = c->search(req);
                got[q].clear();
                if (!hits) {
                    ++failures;
                    return;
                }
                for (const auto& h : *hits) got[q].push_back(h.id);
            });
            if (failures > 0) return fail(internal_error(fmt::format("{} searches failed", failures)));
            // recall@k by id, and the strategies chosen (one explained search per query, untimed).
            double total = 0;
            std::size_t counted = 0;
            for (std::size_t q = 0; q < nq; ++q) {
                if (truth[q].empty()) continue;
                std::size_t found = 0;
                for (const std::string& id : got[q]) {
                    const std::uint32_t doc = doc_of.at(id);
                    for (const auto& t : truth[q]) found += t.doc == doc ? 1 : 0;
                }
                total += static_cast<double>(found) / static_cast<double>(truth[q].size());
                ++counted;
                engine::SearchRequest req;
                req.clauses.push_back(engine::QueryClause::of_tokens("tokens", qtv[q]));
                req.k = k;
                req.ef = depth;
                req.return_fields = std::vector<std::string>{};
                engine::SearchExplain ex;
                if (c->search(req, &ex)) {
                    for (const auto& p : ex.plans) {
                        if (p.source == "memtable") continue;
                        ++r.plans;
                        r.blocked_plans += p.strategy == "muvera_blocks" ? 1 : 0;
                    }
                }
            }
            r.recall = counted > 0 ? total / static_cast<double>(counted) : 0.0;
            std::fprintf(stderr, "%s candidates %s: recall@%zu %.4f, mean %.0f us, p99 %.0f us (cold %.0f us), %.1fx\n",
                         codec_name.c_str(), depth == 0 ? "(field)" : std::to_string(depth).c_str(), k, r.recall,
                         r.lat.mean_us, r.lat.p99_us, r.lat.cold_mean_us, exact.mean_us / r.lat.mean_us);
            runs.push_back(r);
        }
        c->close();
        if (!keep && !reuse) std::filesystem::remove_all(cdir);
    }

    std::printf("%zu documents, %zu tokens x %zu; %zu queries; field: MUVERA %s FDEs (k_sim %zu, d_proj %zu, r_reps %zu, "
                "candidates %zu); one search thread\n",
                n, store.total_tokens(), dim, nq, mp.fde == engine::MuveraFdeKind::kBlocks ? "blocked" : "HNSW", mp.k_sim,
                mp.d_proj, mp.r_reps, mp.candidates);
    std::vector<std::vector<std::string>> table;
    table.push_back({"exact MaxSim (library)", "float32", "-", "1.0000", fmt::format("{:.0f}", exact.mean_us),
                     fmt::format("{:.0f}", exact.p99_us), fmt::format("{:.0f}", exact.cold_mean_us), "1.0", "-"});
    for (const Run& r : runs) {
        table.push_back({"collection muvera", r.codec, r.depth == 0 ? std::to_string(mp.candidates) : std::to_string(r.depth),
                         fmt::format("{:.4f}", r.recall), fmt::format("{:.0f}", r.lat.mean_us),
                         fmt::format("{:.0f}", r.lat.p99_us), fmt::format("{:.0f}", r.lat.cold_mean_us),
                         fmt::format("{:.1f}", exact.mean_us / r.lat.mean_us),
                         fmt::format("{}/{}", r.blocked_plans, r.plans)});
    }
    std::printf("%s", text_table({"search", "tokens", "candidates", fmt::format("recall@{}", k), "mean us", "p99 us",
                                  "cold mean us", "speed-up", "blocked scans"},
                                 table)
                          .c_str());
    for (const Built& b : built) {
        std::printf("%s collection: %zu segment(s); bytes per document: index file %.0f (tokens %.0f, blocked FDEs %.0f), "
                    "document store %.0f%s\n",
                    b.codec.c_str(), b.segments, b.index_file_per_doc, b.tokens_per_doc, b.fde_per_doc,
                    b.docstore_per_doc,
                    reuse ? "" : fmt::format("; ingest {:.1f} s, optimize {:.1f} s", b.ingest_s, b.optimize_s).c_str());
    }
    if (!json_path.empty()) {
        json::Value v = json::Value::object();
        v.set("documents", json::Value::number(static_cast<double>(n)));
        v.set("tokens", json::Value::number(static_cast<double>(store.total_tokens())));
        v.set("dim", json::Value::number(static_cast<double>(dim)));
        v.set("queries", json::Value::number(static_cast<double>(nq)));
        v.set("k", json::Value::number(static_cast<double>(k)));
        json::Value field = json::Value::object();
        field.set("fde", json::Value::string(mp.fde == engine::MuveraFdeKind::kBlocks ? "blocks" : "hnsw"));
        field.set("k_sim", json::Value::number(static_cast<double>(mp.k_sim)));
        field.set("d_proj", json::Value::number(static_cast<double>(mp.d_proj)));
        field.set("r_reps", json::Value::number(static_cast<double>(mp.r_reps)));
        field.set("candidates", json::Value::number(static_cast<double>(mp.candidates)));
        v.set("field", std::move(field));
        json::Value ex = json::Value::object();
        ex.set("latency", latency_json(exact));
        ex.set("passes", json::Value::number(static_cast<double>(1 + exact_warm)));
        v.set("exact", std::move(ex));
        json::Value cols = json::Value::array();
        for (const Built& b : built) {
            json::Value o = json::Value::object();
            o.set("codec", json::Value::string(b.codec));
            o.set("segments", json::Value::number(static_cast<double>(b.segments)));
            o.set("ingest_s", json::Value::number(b.ingest_s));
            o.set("optimize_s", json::Value::number(b.optimize_s));
            o.set("index_file_bytes_per_doc", json::Value::number(b.index_file_per_doc));
            o.set("token_bytes_per_doc", json::Value::number(b.tokens_per_doc));
            o.set("fde_bytes_per_doc", json::Value::number(b.fde_per_doc));
            o.set("docstore_bytes_per_doc", json::Value::number(b.docstore_per_doc));
            cols.as_array().push_back(std::move(o));
        }
        v.set("collections", std::move(cols));
        json::Value arr = json::Value::array();
        for (const Run& r : runs) {
            json::Value o = json::Value::object();
            o.set("codec", json::Value::string(r.codec));
            o.set("candidates", json::Value::number(static_cast<double>(r.depth == 0 ? mp.candidates : r.depth)));
            o.set("recall", json::Value::number(r.recall));
            o.set("latency", latency_json(r.lat));
            o.set("speedup", json::Value::number(exact.mean_us / r.lat.mean_us));
            o.set("blocked_scans", json::Value::number(static_cast<double>(r.blocked_plans)));
            o.set("plans", json::Value::number(static_cast<double>(r.plans)));
            arr.as_array().push_back(std::move(o));
        }
        v.set("runs", std::move(arr));
        v.set("passes", json::Value::number(static_cast<double>(1 + warm)));
        const std::string text = json::dump(v, true) + "\n";
        if (!write_output(json_path, text)) return fail(io_error(fmt::format("cannot write '{}'", json_path)));
    }
    return 0;
}

const BenchRegistrar kReg{"mvcollection",
                          "multi-vector collection field: MUVERA blocked FDEs + MaxSim vs exact MaxSim (recall, latency, bytes)",
                          &run_mvcollection};

}  // namespace
}  // namespace quiver::bench
