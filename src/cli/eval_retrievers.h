// Private to the CLI: the retrievers `quiver eval --retriever NAME` can run. Each lives in its own
// file and registers itself, so BM25 (sparse/), dense (encode/ + index/) and later ones plug in
// without touching cmd_eval.cpp:
//
//   static const quiver::cli::EvalRetrieverRegistrar kReg{"bm25", &make_bm25_retriever};
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::cli {

struct EvalDoc {
    std::string id;
    std::string title;
    std::string text;
};

struct EvalQuery {
    std::string id;
    std::string text;
};

struct EvalHit {
    std::string doc_id;
    float score;  ///< larger is better
};

/// Options from the `quiver eval` command line; each retriever reads what it needs.
struct EvalRetrieverConfig {
    double k1 = 0.9;
    double b = 0.4;
    std::string model_dir;        ///< --model, for encoder-based retrievers
    std::string index = "flat";   ///< --index flat|hnsw, for dense retrievers
    std::size_t threads = 0;      ///< 0 = all cores
    std::size_t batch = 32;       ///< encoder batch size
    std::size_t max_length = 512; ///< encoder max tokens
    std::string prf;              ///< --prf, e.g. "rm3:fb_docs=10,fb_terms=10,weight=0.5" (empty = none)
};

class EvalRetriever {
public:
    virtual ~EvalRetriever() = default;
    /// Indexes the whole corpus (shows a progress bar on long work).
    virtual Status index(const std::vector<EvalDoc>& docs) = 0;
    /// Top-`k` hits per query, best first; row i answers queries[i].
    virtual Result<std::vector<std::vector<EvalHit>>> search(const std::vector<EvalQuery>& queries,
                                                             std::size_t k) = 0;
};

using EvalRetrieverFactory = Result<std::unique_ptr<EvalRetriever>> (*)(const EvalRetrieverConfig&);

struct EvalRetrieverRegistrar {
    EvalRetrieverRegistrar(const char* name, EvalRetrieverFactory factory);
};

/// The retriever registered as `name`; kInvalidArgument listing the known names otherwise.
Result<std::unique_ptr<EvalRetriever>> make_eval_retriever(std::string_view name,
                                                           const EvalRetrieverConfig& config);
/// Registered names, sorted, for --help.
std::vector<std::string> eval_retriever_names();

}  // namespace quiver::cli
