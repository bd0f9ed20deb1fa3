// The "bm25" retriever of `quiver eval`: Lucene-compatible BM25 over the sparse posting core.
#include <fmt/format.h>

#include "cli/eval_retrievers.h"
#include "quiver/core/progress.h"
#include "quiver/core/thread_pool.h"
#include "quiver/sparse/bm25_index.h"

namespace quiver::cli {
namespace {

class Bm25Retriever final : public EvalRetriever {
public:
    explicit Bm25Retriever(const EvalRetrieverConfig& config) : config_(config) {}

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
        std::vector<std::vector<EvalHit>> out(queries.size());
        ProgressBar bar("retrieving", queries.size(), "queries");
        pool.parallel_for(queries.size(), [&](std::size_t i, std::size_t worker) {
            const auto hits = searchers[worker].search(queries[i].text, k);
            out[i].reserve(hits.size());
            for (const auto& h : hits) out[i].push_back({std::string(index_->doc_id(h.doc)), h.score});
            bar.add(1);
        }, 8);
        bar.finish();
        return out;
    }

private:
    EvalRetrieverConfig config_;
    std::unique_ptr<sparse::Bm25Index> index_;
};

Result<std::unique_ptr<EvalRetriever>> make_bm25(const EvalRetrieverConfig& config) {
    if (!(config.k1 >= 0.0) || !(config.b >= 0.0 && config.b <= 1.0)) {
        return invalid_argument(fmt::format("bm25: k1 must be >= 0 and b in [0, 1] (got k1={}, b={})", config.k1,
                                            config.b));
    }
    return std::unique_ptr<EvalRetriever>(std::make_unique<Bm25Retriever>(config));
}

const EvalRetrieverRegistrar kReg{"bm25", &make_bm25};

}  // namespace
}  // namespace quiver::cli
