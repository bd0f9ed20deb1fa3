// The "dense" retriever of `quiver eval`: encode documents (title + " " + text) and queries with the
// model at --model (encode/), index the document vectors in a flat or HNSW index (index/), and rank
// by cosine similarity (inner product when the model's output is not normalised). With --prf rocchio:...
// the query vector becomes alpha q + beta mean(top fb_docs document vectors) and is searched again
// (vector PRF, pipeline/prf.h).
#include <fmt/format.h>

#include <optional>

#include "cli/eval_retrievers.h"
#include "quiver/core/progress.h"
#include "quiver/encode/encoder.h"
#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/pipeline/prf.h"

namespace quiver::cli {
namespace {

class DenseRetriever final : public EvalRetriever {
public:
    DenseRetriever(const EvalRetrieverConfig& config, std::unique_ptr<encode::Encoder> encoder,
                   std::optional<pipeline::PrfSpec> prf)
        : config_(config), encoder_(std::move(encoder)), prf_(std::move(prf)) {}

    Status index(const std::vector<EvalDoc>& docs) override {
        std::vector<std::string> texts;
        texts.reserve(docs.size());
        for (const EvalDoc& d : docs) texts.push_back(d.title.empty() ? d.text : d.title + " " + d.text);
        std::vector<std::string_view> views(texts.begin(), texts.end());
        ProgressBar bar("encoding", docs.size(), "docs");
        encode::EncodeOptions eo;
        eo.role = encode::EncodeRole::kDocument;
        eo.progress = &bar;
        auto emb = encoder_->encode(views, eo);
        bar.finish();
        if (!emb) return std::move(emb).error().with_context("encoding documents");
        const std::size_t dim = encoder_->info().dim;
        const simd::Metric metric = encoder_->info().normalized || encoder_->info().family == "word-vectors"
                                        ? simd::Metric::kCosine
                                        : simd::Metric::kInnerProduct;
        if (config_.index == "hnsw") {
            index::HnswParams hp;
            hp.threads = config_.threads;
            QUIVER_ASSIGN_OR_RETURN(auto idx, index::HnswIndex::create(dim, metric, hp));
            index_ = std::move(idx);
        } else if (config_.index == "flat") {
            QUIVER_ASSIGN_OR_RETURN(auto idx, index::FlatIndex::create(dim, metric));
            index_ = std::move(idx);
        } else {
            return invalid_argument(fmt::format("--index-type must be flat or hnsw, not '{}'", config_.index));
        }
        // Texts with no known word (static models) encode to zero vectors; cosine needs a direction, so
        // they get a tiny constant one and rank last.
        Matrix<float>& m = emb->dense;
        for (std::size_t r = 0; r < m.rows; ++r) {
            float* row = m.row_ptr(r);
            bool zero = true;
            for (std::size_t c = 0; c < dim && zero; ++c) zero = row[c] == 0.0f;
            if (zero) row[0] = 1e-6f;
        }
        ids_.clear();
        for (const EvalDoc& d : docs) ids_.push_back(d.id);
        if (prf_) {
            doc_vectors_.assign(m.row_ptr(0), m.row_ptr(0) + m.rows * dim);
            dim_ = dim;
        }
        return index_->add(m, index::sequential_labels(m.rows));
    }

    Result<std::vector<std::vector<EvalHit>>> search(const std::vector<EvalQuery>& queries, std::size_t k) override {
        if (!index_) return failed_precondition("dense: search before index");
        std::vector<std::string_view> views;
        views.reserve(queries.size());
        for (const EvalQuery& q : queries) views.push_back(q.text);
        encode::EncodeOptions eo;
        eo.role = encode::EncodeRole::kQuery;
        ProgressHeartbeat beat("dense: encoding and searching queries");
        auto emb = encoder_->encode(views, eo);
        if (!emb) return std::move(emb).error().with_context("encoding queries");
        Matrix<float>& m = emb->dense;
        for (std::size_t r = 0; r < m.rows; ++r) {
            bool zero = true;
            for (std::size_t c = 0; c < m.dim && zero; ++c) zero = m.row_ptr(r)[c] == 0.0f;
            if (zero) m.row_ptr(r)[0] = 1e-6f;
        }
        index::SearchParams sp;
        sp.k = k;
        sp.threads = config_.threads;
        if (prf_) {
            index::SearchParams fp = sp;
            fp.k = prf_->fb_docs;
            QUIVER_ASSIGN_OR_RETURN(index::SearchResults first, index_->search(m, fp));
            std::vector<float> fb;
            for (std::size_t q = 0; q < m.rows; ++q) {
                fb.clear();
                for (std::size_t j = 0; j < first.count(q); ++j) {
                    const auto label = static_cast<std::size_t>(to_int(first.label(q, j)));
                    fb.insert(fb.end(), doc_vectors_.begin() + label * dim_, doc_vectors_.begin() + (label + 1) * dim_);
                }
                const std::vector<float> moved = pipeline::rocchio_vector({m.row_ptr(q), m.dim}, fb, m.dim, *prf_, false);
                std::copy(moved.begin(), moved.end(), m.row_ptr(q));
            }
        }
        QUIVER_ASSIGN_OR_RETURN(index::SearchResults res, index_->search(m, sp));
        std::vector<std::vector<EvalHit>> hits(queries.size());
        for (std::size_t q = 0; q < queries.size(); ++q) {
            for (std::size_t j = 0; j < res.count(q); ++j) {
                const auto label = static_cast<std::size_t>(to_int(res.label(q, j)));
                hits[q].push_back({ids_[label], 1.0f - res.distance(q, j)});
            }
        }
        return hits;
    }

private:
    EvalRetrieverConfig config_;
    std::unique_ptr<encode::Encoder> encoder_;
    std::unique_ptr<index::VectorIndex> index_;
    std::vector<std::string> ids_;
    std::optional<pipeline::PrfSpec> prf_;
    std::vector<float> doc_vectors_;  // row-major, kept for vector PRF
    std::size_t dim_ = 0;
};

Result<std::unique_ptr<EvalRetriever>> make_dense_retriever(const EvalRetrieverConfig& config) {
    if (config.model_dir.empty()) return invalid_argument("the dense retriever needs --model DIR");
    encode::LoadOptions lo;
    lo.threads = config.threads;
    lo.batch = config.batch;
    lo.max_length = config.max_length;
    QUIVER_ASSIGN_OR_RETURN(auto enc, encode::load_encoder(config.model_dir, lo));
    if (enc->info().dim == 0) return invalid_argument("the model has no dense output");
    std::optional<pipeline::PrfSpec> prf;
    if (!config.prf.empty()) {
        QUIVER_ASSIGN_OR_RETURN(auto spec, pipeline::parse_prf(config.prf));
        if (spec.method != pipeline::PrfMethod::kRocchio) {
            return invalid_argument("the dense retriever takes vector PRF only: --prf rocchio:fb_docs=3,alpha=0.9,beta=0.1");
        }
        prf = spec;
    }
    return std::unique_ptr<EvalRetriever>(std::make_unique<DenseRetriever>(config, std::move(enc), std::move(prf)));
}

const EvalRetrieverRegistrar kReg{"dense", &make_dense_retriever};

}  // namespace
}  // namespace quiver::cli
