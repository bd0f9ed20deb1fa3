// The "bm25" retriever of `quiver eval`: Lucene-compatible BM25 over the sparse posting core, with
// optional pseudo-relevance feedback (--prf rm3:... or rocchio:..., pipeline/prf.h): the first round's
// top fb_docs documents are re-analysed, the expanded query's terms are scored with their weights as
// BM25 boosts (Anserini's BoostQuery), and the second round is the result.
#include <fmt/format.h>

#include <optional>

#include "cli/eval_retrievers.h"
#include "quiver/core/progress.h"
#include "quiver/core/thread_pool.h"
#include "quiver/pipeline/prf.h"
#include "quiver/sparse/bm25_index.h"

namespace quiver::cli {
namespace {

class Bm25Retriever final : public EvalRetriever {
public:
    Bm25Retriever(const EvalRetrieverConfig& config, std::optional<pipeline::PrfSpec> prf)
        : config_(config), prf_(std::move(prf)) {}

    Status index(const std::vector<EvalDoc>& docs) override {
        std::vector<sparse::Bm25Document> views;
        views.reserve(docs.size());
        for (const EvalDoc& d : docs) views.push_back({d.id, d.title, d.text});
        ProgressBar bar("indexing", docs.size(), "docs");
        sparse::Bm25Index::BuildOptions options;
        options.params = {static_cast<float>(config_.k1), static_cast<float>(config_.b)};
        options.threads = config_.threads;
        options.progress = &bar;
        auto built = sparse::Bm25Index::build(views, options);
        bar.finish();
        if (!built) return std::move(built).error();
        index_ = std::make_unique<sparse::Bm25Index>(std::move(built).value());
        if (prf_) {
            titles_.clear();
            texts_.clear();
            for (const EvalDoc& d : docs) {
                titles_.push_back(d.title);
                texts_.push_back(d.text);
            }
        }
        return ok_status();
    }

    Result<std::vector<std::vector<EvalHit>>> search(const std::vector<EvalQuery>& queries,
                                                     std::size_t k) override {
        if (!index_) return failed_precondition("bm25: search before index");
        ThreadPool pool(resolve_threads(config_.threads));
        std::vector<sparse::Bm25Searcher> searchers;
        for (std::size_t w = 0; w < pool.size(); ++w) {
            QUIVER_ASSIGN_OR_RETURN(auto s, sparse::Bm25Searcher::create(*index_));
            searchers.push_back(std::move(s));
        }
        std::vector<text::Analyzer> analyzers;
        for (std::size_t w = 0; prf_ && w < pool.size(); ++w) {
            QUIVER_ASSIGN_OR_RETURN(auto a, text::Analyzer::create(index_->analyzer_config()));
            analyzers.push_back(std::move(a));
        }
        std::vector<std::vector<EvalHit>> out(queries.size());
        ProgressBar bar("retrieving", queries.size(), "queries");
        pool.parallel_for(queries.size(), [&](std::size_t i, std::size_t worker) {
            const auto hits = prf_ ? feedback_search(analyzers[worker], queries[i].text, k)
                                   : searchers[worker].search(queries[i].text, k);
            out[i].reserve(hits.size());
            for (const auto& h : hits) out[i].push_back({std::string(index_->doc_id(h.doc)), h.score});
            bar.add(1);
        }, 8);
        bar.finish();
        return out;
    }

private:
    // First round, expansion from its top fb_docs, second round with the weighted terms.
    std::vector<sparse::Bm25Hit> feedback_search(text::Analyzer& analyzer, std::string_view query, std::size_t k) const {
        std::vector<std::string> query_tokens = analyzer.analyze(query);
        const auto first = index_->search_terms(query_tokens, std::max(k, prf_->fb_docs));
        const std::size_t n = std::min(first.size(), prf_->fb_docs);
        std::vector<std::vector<std::string>> tokens(n);
        std::vector<pipeline::FeedbackDoc> fb(n);
        for (std::size_t i = 0; i < n; ++i) {
            sparse::Bm25Index::document_tokens(analyzer, titles_[first[i].doc], texts_[first[i].doc], tokens[i]);
            fb[i] = {tokens[i], first[i].score};
        }
        const std::uint64_t num_docs = index_->num_docs();
        const auto keep = [&](std::string_view t) {
            return pipeline::anserini_feedback_term(t, index_->doc_freq(index_->find_term(t)), num_docs);
        };
        const auto expanded = pipeline::expand_query(query_tokens, fb, *prf_, keep);
        if (expanded.empty()) return first.size() > k ? std::vector<sparse::Bm25Hit>(first.begin(), first.begin() + k) : first;
        std::vector<std::string> terms;
        for (const auto& t : expanded) terms.push_back(t.term);
        sparse::Bm25QueryStats stats = index_->query_stats(terms);
        for (std::size_t j = 0; j < stats.terms.size(); ++j) {
            for (const auto& t : expanded) {
                if (t.term == stats.terms[j]) stats.boosts[j] = static_cast<float>(t.weight);
            }
        }
        return index_->search_with_stats(stats, k);
    }

    EvalRetrieverConfig config_;
    std::optional<pipeline::PrfSpec> prf_;
    std::vector<std::string> titles_, texts_;  // kept for feedback (re-analysed per query)
    std::unique_ptr<sparse::Bm25Index> index_;
};

Result<std::unique_ptr<EvalRetriever>> make_bm25(const EvalRetrieverConfig& config) {
    if (!(config.k1 >= 0.0) || !(config.b >= 0.0 && config.b <= 1.0)) {
        return invalid_argument(fmt::format("bm25: k1 must be >= 0 and b in [0, 1] (got k1={}, b={})", config.k1,
                                            config.b));
    }
    std::optional<pipeline::PrfSpec> prf;
    if (!config.prf.empty()) {
        QUIVER_ASSIGN_OR_RETURN(auto spec, pipeline::parse_prf(config.prf));
        prf = spec;
    }
    return std::unique_ptr<EvalRetriever>(std::make_unique<Bm25Retriever>(config, std::move(prf)));
}

const EvalRetrieverRegistrar kReg{"bm25", &make_bm25};

}  // namespace
}  // namespace quiver::cli
