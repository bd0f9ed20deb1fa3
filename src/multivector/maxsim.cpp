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

float maxsim(MatrixView<float> query, const float* doc, std::size_t doc_tokens) noexcept {
    const simd::DistanceFn dot = simd::active_kernels().dot;
    const std::size_t dim = query.dim;
    double total = 0.0;
    for (std::size_t i = 0; i < query.rows; ++i) {
        const float* q = query.row_ptr(i);
        float best = -std::numeric_limits<float>::infinity();
        for (std::size_t j = 0; j < doc_tokens; ++j) best = std::max(best, dot(q, doc + j * dim, dim));
        total += best;
    }
    return static_cast<float>(total);
}

void quantize_query(MatrixView<float> query, Int8Query& out) {
    out.rows = query.rows;
    out.dim = query.dim;
    out.codes.resize(query.rows * query.dim);
    out.scales.resize(query.rows);
    for (std::size_t i = 0; i < query.rows; ++i) {
        out.scales[i] = quantize_int8_row(query.row_ptr(i), query.dim, out.codes.data() + i * query.dim);
    }
}

float maxsim_int8(const Int8Query& query, const std::int8_t* codes, const float* scales, std::size_t doc_tokens,
                  float* maxima) noexcept {
    simd::active_int8_kernels().s8_maxsim(query.codes.data(), query.rows, codes, scales, doc_tokens, query.dim,
                                          maxima);
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
    return maxsim(query, doc_rows(store, doc, scratch), store.tokens(doc));
}

void prepare_query(const TokenStore& store, MatrixView<float> query, MaxSimScratch& scratch) {
    if (store.codec() != TokenCodec::kInt8) return;
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

// Candidates of a float32 store scored by GEMM: their rows gathered into L2-sized tiles, one sgemm
// per tile against the query. GEMM and the dot kernel round differently, so only the best `keep` are
// kept, to be re-scored by the kernel (as exact_search does).
std::vector<std::uint32_t> gemm_survivors(const TokenStore& store, MatrixView<float> query,
                                          std::span<const std::uint32_t> docs, std::size_t keep,
                                          MaxSimScratch& scratch) {
    const std::size_t dim = store.dim();
    const std::size_t m = query.rows;
    BestK best(keep);
    std::vector<float> maxima;
    std::size_t next = 0;
    while (next < docs.size()) {
        const std::size_t first = next;
        std::size_t rows = 0;
        while (next < docs.size() && (rows == 0 || rows + store.tokens(docs[next]) <= kTileRows)) {
            rows += store.tokens(docs[next++]);
        }
        scratch.rows.resize(rows * dim);
        float* out = scratch.rows.data();
        for (std::size_t i = first; i < next; ++i) {
            const std::size_t n = store.tokens(docs[i]) * dim;
            std::copy_n(store.float_rows(docs[i]), n, out);
            out += n;
        }
        scratch.scores.resize(rows * m);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(m),
                    static_cast<int>(dim), 1.0f, scratch.rows.data(), static_cast<int>(dim), query.data,
                    static_cast<int>(dim), 0.0f, scratch.scores.data(), static_cast<int>(m));
        push_tile(store, docs.subspan(first, next - first), scratch.scores.data(), m, maxima, best);
    }
    std::vector<std::uint32_t> out;
    out.reserve(best.hits().size());
    for (const Hit& h : best.hits()) out.push_back(h.doc);
    return out;
}

// Fewer candidates than this are scored one by one by the kernel (a GEMM tile would be mostly empty).
constexpr std::size_t kGemmMinCandidates = 64;

}  // namespace

std::vector<Hit> rerank(const TokenStore& store, MatrixView<float> query, std::span<const std::uint32_t> candidates,
                        std::size_t k, MaxSimScratch& scratch) {
    const std::size_t keep = std::max(2 * k, k + 16);
    if (store.codec() == TokenCodec::kFloat32 && query.rows > 0 && candidates.size() >= kGemmMinCandidates &&
        candidates.size() > keep) {
        std::vector<std::uint32_t> docs;
        docs.reserve(candidates.size());
        for (const std::uint32_t doc : candidates) {
            if (doc < store.size() && store.tokens(doc) > 0) docs.push_back(doc);
        }
        std::sort(docs.begin(), docs.end());
        docs.erase(std::unique(docs.begin(), docs.end()), docs.end());
        const std::vector<std::uint32_t> survivors = gemm_survivors(store, query, docs, keep, scratch);
        return rerank(store, query, survivors, k, scratch);  // survivors <= keep: the kernel path
    }
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
