// quiver limit: the LIMIT test collection at any size (eval/limit.h) and the free-embedding experiment.
#include <fmt/format.h>

#include <cstdio>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/eval/limit.h"

namespace quiver::cli {
namespace {

struct LimitGenerateOptions {
    std::string out, attributes, vocab;
    eval::LimitOptions limit;
    std::size_t filler = 850;
};

struct FreeEmbeddingCliOptions {
    std::size_t dim_lo = 2, dim_hi = 6, max_n = 120;
    eval::FreeEmbeddingOptions options;
};

Status run_generate(const LimitGenerateOptions& o) {
    QUIVER_ASSIGN_OR_RETURN(auto vocabulary, eval::load_limit_vocabulary(o.attributes, o.vocab, o.filler));
    QUIVER_ASSIGN_OR_RETURN(auto ds, eval::generate_limit(o.limit, vocabulary));
    QUIVER_TRY(eval::write_limit(ds, o.out));
    std::printf("wrote LIMIT to %s: %zu documents, %zu queries, %zu relevant per query (seed %llu)\n", o.out.c_str(),
                ds.documents.size(), ds.queries.size(), o.limit.relevant_per_query,
                static_cast<unsigned long long>(o.limit.seed));
    return ok_status();
}

Status run_free_embedding(const FreeEmbeddingCliOptions& o) {
    if (o.dim_lo < 1 || o.dim_lo > o.dim_hi) return invalid_argument("--dims needs 1 <= LO <= HI");
    std::printf("%5s %11s\n", "dim", "critical_n");
    for (std::size_t d = o.dim_lo; d <= o.dim_hi; ++d) {
        const std::size_t n = eval::free_embedding_critical_n(d, o.options, o.max_n);
        std::printf("%5zu %11zu\n", d, n);
        std::fflush(stdout);
    }
    return ok_status();
}

void add_limit_command(CLI::App& app) {
    auto* sub = app.add_subcommand("limit", "The LIMIT test collection (Weller et al. 2025): generate it, run the "
                                            "free-embedding experiment");
    sub->require_subcommand(1);
    auto g = std::make_shared<LimitGenerateOptions>();
    auto* gen = sub->add_subcommand("generate",
                                    "Write corpus.jsonl, queries.jsonl, qrels.jsonl (the dense k=2 pattern) for `quiver eval`.\n"
                                    "  quiver limit generate --out DIR --attributes ../shared/data/limit-small/queries.jsonl \\\n"
                                    "      --vocab ../shared/data/glove-6b-100d/vocab.txt [--docs 50000] [--queries 1000] [--seed 42]");
    gen->add_option("--out", g->out, "Output directory")->required();
    gen->add_option("--attributes", g->attributes, "Query attributes: a LIMIT queries.jsonl (\"Who likes X?\")")->required();
    gen->add_option("--vocab", g->vocab, "Word list (one per line, by frequency) for filler attributes")->required();
    gen->add_option("--docs", g->limit.num_docs, "Documents")->capture_default_str();
    gen->add_option("--queries", g->limit.num_queries, "Queries")->capture_default_str();
    gen->add_option("--k", g->limit.relevant_per_query, "Relevant documents per query")->capture_default_str();
    gen->add_option("--items", g->limit.items_per_doc, "Attributes per document")->capture_default_str();
    gen->add_option("--filler", g->filler, "Filler attributes drawn from --vocab")->capture_default_str();
    gen->add_option("--seed", g->limit.seed, "Random seed")->capture_default_str();
    set_status_action(gen, "limit generate", [g] { return run_generate(*g); });

    auto f = std::make_shared<FreeEmbeddingCliOptions>();
    auto* fe = sub->add_subcommand("free-embedding",
                                   "Critical n per dimension: the most documents for which vectors optimised directly "
                                   "for the qrels realise every top-2 pair");
    fe->add_option("--dim-lo", f->dim_lo, "Smallest dimension")->capture_default_str();
    fe->add_option("--dim-hi", f->dim_hi, "Largest dimension")->capture_default_str();
    fe->add_option("--max-n", f->max_n, "Stop at this n")->capture_default_str();
    fe->add_option("--steps", f->options.max_steps, "Adam steps at most per n")->capture_default_str();
    fe->add_option("--patience", f->options.patience, "Stop after this many steps without a better loss")
        ->capture_default_str();
    fe->add_option("--seed", f->options.seed, "Random seed")->capture_default_str();
    fe->add_option("--restarts", f->options.restarts, "Random starts per n")->capture_default_str();
    set_status_action(fe, "limit free-embedding", [f] { return run_free_embedding(*f); });
}

const CommandRegistrar kRegister{45, &add_limit_command};

}  // namespace
}  // namespace quiver::cli
