// Exact MaxSim (Chamfer) scoring: the per-pair kernel, BLAS-tiled brute force, and re-ranking.
#include "quiver/multivector/maxsim.h"

#include <cblas.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <queue>

#include "quiver/simd/int8_kernels.h"
#include "quiver/simd/kernels.h"

namespace quiver::multivector {

void prepare_float_query(MatrixView<float> query, FloatQuery& out) {
    out.rows = query.rows;
    out.stride = (query.rows + 15) / 16 * 16;
    out.transposed.assign(query.dim * out.stride, 0.0f);
    for (std::size_t i = 0; i < query.rows; ++i) {
        const float* q = query.row_ptr(i);
        for (std::size_t k = 0; k < query.dim; ++k) out.transposed[k * out.stride + i] = q[k];
    }
    out.maxima.resize(out.stride);
}

float maxsim_prepared(FloatQuery& query, const float* doc, std::size_t doc_tokens, std::size_t dim) noexcept {
    if (query.rows == 0) return 0.0f;
    simd::active_kernels().maxsim_maxima(query.transposed.data(), query.stride, doc, doc_tokens, dim,
                                         query.maxima.data());
    double total = 0.0;
    for (std::size_t i = 0; i < query.rows; ++i) total += query.maxima[i];
    return static_cast<float>(total);
}

float maxsim(MatrixView<float> query, const float* doc, std::size_t doc_tokens) noexcept {
    thread_local FloatQuery prepared;
    prepare_float_query(query, prepared);
    return maxsim_prepared(prepared, doc, doc_tokens, query.dim);
}

void quantize_query(MatrixView<float> query, Int8Query& out) {
    out.rows = query.rows;
    out.dim = query.dim;
    out.codes.resize(query.rows * query.dim);
    out.scales.resize(query.rows);
    for (std::size_t i = 0; i < query.rows; ++i) {
        out.scales[i] = quantize_int8_row(query.row_ptr(i), query.dim, out.codes.data() + i * query.dim);
    }
    out.stride = (query.rows + 15) / 16 * 16;
    out.transposed.assign((query.dim + 3) / 4 * out.stride * 4, 0);
    for (std::size_t i = 0; i < query.rows; ++i) {
        for (std::size_t k = 0; k < query.dim; ++k) {
            out.transposed[((k / 4) * out.stride + i) * 4 + k % 4] = out.codes[i * query.dim + k];
        }
    }
}

float maxsim_int8(const Int8Query& query, const std::int8_t* codes, const float* scales, std::size_t doc_tokens,
                  float* maxima) noexcept {
    const simd::Int8Kernels& k = simd::active_int8_kernels();
    if (k.s8_maxsim_t != nullptr) {
        // The transposed kernel writes all `stride` lanes (padding included): a per-thread buffer, so
        // `maxima` keeps its query.rows floats.
        thread_local std::vector<float> lanes;
        if (lanes.size() < query.stride) lanes.resize(query.stride);
        k.s8_maxsim_t(query.transposed.data(), query.stride, codes, scales, doc_tokens, query.dim, lanes.data());
        std::copy_n(lanes.data(), query.rows, maxima);
    } else {
        k.s8_maxsim(query.codes.data(), query.rows, codes, scales, doc_tokens, query.dim, maxima);
    }
    double total = 0.0;
    for (std::size_t i = 0; i < query.rows; ++i) total += static_cast<double>(maxima[i] * query.scales[i]);
    return static_cast<float>(total);
}

void sort_hits(std::vector<Hit>& hits, std::size_t k) {
    auto better = [](const Hit& a, const Hit& b) { return a.score > b.score || (a.score == b.score && a.doc < b.doc); };
    if (hits.size() > k) {
        std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(k), hits.end(), better);
        hits.resize(k);
    } else {
        std::sort(hits.begin(), hits.end(), better);
    }
}

namespace {

// Keeps the `capacity` best (score desc, doc asc) pairs; the heap's front is the worst kept.
class BestK {
public:
    explicit BestK(std::size_t capacity) : capacity_(capacity) { heap_.reserve(capacity); }
    void push(float score, std::uint32_t doc) {
        if (capacity_ == 0) return;
        if (heap_.size() < capacity_) {
            heap_.push_back({doc, score});
            std::push_heap(heap_.begin(), heap_.end(), worse_first);
        } else if (better(score, doc, heap_.front())) {
            std::pop_heap(heap_.begin(), heap_.end(), worse_first);
            heap_.back() = {doc, score};
            std::push_heap(heap_.begin(), heap_.end(), worse_first);
        }
    }
    std::vector<Hit>& hits() { return heap_; }

private:
    static bool better(float s, std::uint32_t d, const Hit& h) { return s > h.score || (s == h.score && d < h.doc); }
    // Heap ordering: the front is the worst hit (lowest score, highest doc on ties).
    static bool worse_first(const Hit& a, const Hit& b) { return a.score > b.score || (a.score == b.score && a.doc < b.doc); }

    std::size_t capacity_;
    std::vector<Hit> heap_;
};

const float* doc_rows(const TokenStore& store, std::uint32_t doc, MaxSimScratch& scratch) {
    if (store.codec() == TokenCodec::kFloat32) return store.float_rows(doc);
    scratch.rows.resize(store.tokens(doc) * store.dim());
    store.decode(doc, scratch.rows.data());
    return scratch.rows.data();
}

// Scores `doc` (tokens > 0) with the store's kernel; for int8 stores scratch.int8_query must hold the
// quantised query and scratch.scores query.rows floats.
float score_doc(const TokenStore& store, MatrixView<float> query, std::uint32_t doc, MaxSimScratch& scratch) {
    if (store.codec() == TokenCodec::kInt8) {
        return maxsim_int8(scratch.int8_query, store.int8_codes(doc), store.int8_scales(doc), store.tokens(doc),
                           scratch.scores.data());
    }
    return maxsim_prepared(scratch.float_query, doc_rows(store, doc, scratch), store.tokens(doc), store.dim());
}

void prepare_query(const TokenStore& store, MatrixView<float> query, MaxSimScratch& scratch) {
    if (store.codec() != TokenCodec::kInt8) {
        prepare_float_query(query, scratch.float_query);
        return;
    }
    quantize_query(query, scratch.int8_query);
    scratch.scores.resize(query.rows);
}

// Token rows per GEMM tile of the float32 paths (about 800 KB of 100-d rows: L2-resident).
constexpr std::size_t kTileRows = 2048;

// MaxSim of the documents of one tile from its scores (rows x m, documents' rows consecutive), pushed
// into `best`.
void push_tile(const TokenStore& store, std::span<const std::uint32_t> docs, const float* s, std::size_t m,
               std::vector<float>& maxima, BestK& best) {
    maxima.resize(m);
    for (const std::uint32_t d : docs) {
        const std::size_t t = store.tokens(d);
        std::copy_n(s, m, maxima.data());
        for (std::size_t r = 1; r < t; ++r) {
            const float* row = s + r * m;
            for (std::size_t i = 0; i < m; ++i) maxima[i] = std::max(maxima[i], row[i]);
        }
        s += t * m;
        double total = 0.0;
        for (std::size_t i = 0; i < m; ++i) total += maxima[i];
        best.push(static_cast<float>(total), d);
    }
}

}  // namespace

std::vector<Hit> rerank(const TokenStore& store, MatrixView<float> query, std::span<const std::uint32_t> candidates,
                        std::size_t k, MaxSimScratch& scratch) {
    std::vector<Hit> hits;
    hits.reserve(candidates.size());
    prepare_query(store, query, scratch);
    for (const std::uint32_t doc : candidates) {
        if (doc >= store.size() || store.tokens(doc) == 0) continue;
        hits.push_back({doc, score_doc(store, query, doc, scratch)});
    }
    // Duplicates score identically; drop them after sorting by (doc) so each document appears once.
    std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.doc < b.doc; });
    hits.erase(std::unique(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.doc == b.doc; }),
               hits.end());
    sort_hits(hits, k);
    return hits;
}

std::vector<Hit> exact_search(const TokenStore& store, MatrixView<float> query, std::size_t k, MaxSimScratch& scratch) {
    if (k == 0 || query.rows == 0 || store.size() == 0) return {};
    if (store.codec() == TokenCodec::kInt8) {
        // The int8 kernel is the exact scorer of an int8 store: score every document with it.
        BestK best(k);
        prepare_query(store, query, scratch);
        for (std::size_t d = 0; d < store.size(); ++d) {
            if (store.tokens(d) == 0) continue;
            best.push(score_doc(store, query, static_cast<std::uint32_t>(d), scratch), static_cast<std::uint32_t>(d));
        }
        std::vector<Hit> hits = std::move(best.hits());
        sort_hits(hits, k);
        return hits;
    }
    const std::size_t dim = store.dim();
    const std::size_t m = query.rows;
    const std::size_t keep = std::max(2 * k, k + 16);
    BestK best(keep);
    const bool decode = store.codec() != TokenCodec::kFloat32;
    std::vector<float> maxima;
    std::vector<std::uint32_t> tile_docs;
    std::size_t doc = 0;
    const std::size_t n = store.size();
    while (doc < n) {
        // A tile: whole documents, about kTileRows token rows (one long document may exceed it).
        const std::size_t first_doc = doc;
        const std::size_t first_row = store.first_row(doc);
        std::size_t rows = 0;
        while (doc < n && (rows == 0 || rows + store.tokens(doc) <= kTileRows)) rows += store.tokens(doc++);
        if (rows == 0) continue;
        const float* tile = nullptr;
        if (decode) {
            scratch.rows.resize(rows * dim);
            store.decode_rows(first_row, rows, scratch.rows.data());
            tile = scratch.rows.data();
        } else {
            tile = store.float_rows(first_doc);
        }
        // scores (rows x m) = tile (rows x dim) * query^T (dim x m)
        scratch.scores.resize(rows * m);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(m),
                    static_cast<int>(dim), 1.0f, tile, static_cast<int>(dim), query.data, static_cast<int>(dim), 0.0f,
                    scratch.scores.data(), static_cast<int>(m));
        tile_docs.clear();
        for (std::size_t d = first_doc; d < doc; ++d) {
            if (store.tokens(d) > 0) tile_docs.push_back(static_cast<std::uint32_t>(d));
        }
        push_tile(store, tile_docs, scratch.scores.data(), m, maxima, best);
    }
    // Re-score the survivors with the one kernel every path uses, so scores and order are exact.
    std::vector<std::uint32_t> docs;
    docs.reserve(best.hits().size());
    for (const Hit& h : best.hits()) docs.push_back(h.doc);
    return rerank(store, query, docs, k, scratch);
}

}  // namespace quiver::multivector
