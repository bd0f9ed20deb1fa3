// Seismic index construction: pruning, clustering into blocks, compact quantised summaries (seismic.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <random>

#include "quiver/core/progress.h"
#include "quiver/core/thread_pool.h"
#include "quiver/sparse/seismic.h"

namespace quiver::sparse {

namespace {

// The blocks and summaries of one posting list, before concatenation.
struct ListOut {
    std::vector<std::uint32_t> block_sizes;
    std::vector<std::uint32_t> docs;         // grouped by block, ascending within a block
    std::vector<float> scales;               // per block
    std::vector<std::uint32_t> block_terms;  // summary entries per block
    std::vector<std::uint32_t> terms;        // summary entries, ascending term within a block
    std::vector<std::uint8_t> codes;
};

struct TermWeight {
    std::uint32_t term;
    float weight;
};

// Per-thread scratch, sized once.
struct Scratch {
    explicit Scratch(std::uint32_t dim) : head(dim, 0), tail(dim, 0), dense(dim, 0.0f) {}
    std::vector<std::uint32_t> head, tail;  // centroid index: run [head[t], tail[t]) of term t
    std::vector<float> dense;               // coordinate-wise maximum of a block
    std::vector<std::uint32_t> touched;
    std::vector<std::pair<std::uint32_t, float>> centries;  // (centroid, weight) grouped by term
    std::vector<float> acc;
    std::vector<std::uint32_t> acc_touched;
    std::vector<std::pair<float, std::uint32_t>> sort_buf;
};

// Reorders `v` so that its first `keep` entries are the largest values whose sum first reaches
// `target` (at least one entry when v is non-empty), and returns keep. Expected O(n): quickselect on
// mass instead of a full sort.
std::size_t top_mass_prefix(std::vector<std::pair<float, std::uint32_t>>& v, double target) {
    auto desc = [](const auto& a, const auto& b) { return a.first > b.first; };
    std::size_t lo = 0, hi = v.size();
    double need = target;
    while (lo < hi && (need > 0.0 || lo == 0)) {
        if (hi - lo <= 16) {
            std::sort(v.begin() + static_cast<std::ptrdiff_t>(lo), v.begin() + static_cast<std::ptrdiff_t>(hi), desc);
            while (lo < hi && (need > 0.0 || lo == 0)) need -= v[lo++].first;
            break;
        }
        const std::size_t mid = lo + (hi - lo) / 2;
        std::nth_element(v.begin() + static_cast<std::ptrdiff_t>(lo), v.begin() + static_cast<std::ptrdiff_t>(mid),
                         v.begin() + static_cast<std::ptrdiff_t>(hi), desc);
        double s = 0;
        for (std::size_t i = lo; i <= mid; ++i) s += v[i].first;
        if (s < need) {
            need -= s;
            lo = mid + 1;
        } else {
            hi = mid + 1;
        }
    }
    return lo;
}

// Turns one pruned posting list into blocks (random k-means on inner product) and their quantised
// summaries. Stateless apart from the caller's per-thread Scratch, so lists run in parallel.
class ListBlocker {
public:
    ListBlocker(const SparseCollection& c, const SeismicBuildParams& p, const std::vector<TermWeight>& top,
                const std::vector<std::uint32_t>& top_count)
        : c_(c), p_(p), top_(top), top_count_(top_count) {}

    ListOut run(std::uint32_t term, std::span<const std::uint32_t> list, Scratch& s) const {
        ListOut out;
        if (list.empty()) return out;
        const std::size_t n = list.size();
        if (n < p_.summary_min_postings) {
            // A short list: one block without a summary, always scanned when picked.
            out.docs.assign(list.begin(), list.end());
            std::sort(out.docs.begin(), out.docs.end());
            out.block_sizes.push_back(static_cast<std::uint32_t>(n));
            out.scales.push_back(0.0f);
            out.block_terms.push_back(0);
            return out;
        }
        std::size_t n_c = static_cast<std::size_t>(std::floor(p_.centroid_fraction * static_cast<double>(n)));
        n_c = std::clamp<std::size_t>(n_c, 1, std::min<std::size_t>(n, 65535));

        // Centroids: documents sampled without replacement (seeded per list).
        std::vector<std::uint32_t> pos(n);
        std::iota(pos.begin(), pos.end(), 0u);
        std::mt19937_64 rng(p_.seed ^ (0x9E3779B97F4A7C15ull * (term + 1)));
        for (std::size_t i = 0; i < n_c; ++i) {
            std::uniform_int_distribution<std::size_t> pick(i, n - 1);
            std::swap(pos[i], pos[pick(rng)]);
        }
        std::vector<std::uint32_t> centroid_doc(n_c);
        for (std::size_t i = 0; i < n_c; ++i) centroid_doc[i] = list[pos[i]];

        std::vector<std::uint32_t> assign(n, 0);
        if (n_c > 1) {
            build_centroid_index(centroid_doc, s);
            std::vector<char> alive(n_c, 1);
            for (std::size_t i = 0; i < n; ++i) assign[i] = best_centroid(list[i], alive, s);
            // Dissolve small clusters into the best surviving centroid.
            std::vector<std::uint32_t> size(n_c, 0);
            for (std::uint32_t a : assign) ++size[a];
            std::size_t survivors = 0;
            std::uint32_t largest = 0;
            for (std::size_t ci = 0; ci < n_c; ++ci) {
                alive[ci] = size[ci] > p_.min_cluster_size ? 1 : 0;
                survivors += alive[ci];
                if (size[ci] > size[largest]) largest = static_cast<std::uint32_t>(ci);
            }
            if (survivors > 0 && survivors < n_c) {
                for (std::size_t i = 0; i < n; ++i) {
                    if (alive[assign[i]]) continue;
                    const std::uint32_t b = best_centroid(list[i], alive, s);
                    assign[i] = alive[b] ? b : largest;
                }
            }
            clear_centroid_index(s);
        }

        // Group documents by cluster; blocks in centroid order, documents ascending inside a block.
        std::vector<std::uint32_t> cnt(n_c + 1, 0);
        for (std::uint32_t a : assign) ++cnt[a + 1];
        std::vector<std::uint32_t> start(cnt);
        for (std::size_t ci = 0; ci < n_c; ++ci) start[ci + 1] += start[ci];
        out.docs.resize(n);
        {
            std::vector<std::uint32_t> fill(start.begin(), start.end() - 1);
            for (std::size_t i = 0; i < n; ++i) out.docs[fill[assign[i]]++] = list[i];
        }
        for (std::size_t ci = 0; ci < n_c; ++ci) {
            const std::uint32_t b = start[ci], e = start[ci + 1];
            if (b == e) continue;
            std::sort(out.docs.begin() + b, out.docs.begin() + e);
            out.block_sizes.push_back(e - b);
            summarize(term, std::span<const std::uint32_t>(out.docs.data() + b, e - b), s, out);
        }
        return out;
    }

private:
    // Inverted index over the centroids' full vectors: term t's entries are centries[head[t], tail[t]).
    void build_centroid_index(const std::vector<std::uint32_t>& centroid_doc, Scratch& s) const {
        s.touched.clear();
        for (std::uint32_t d : centroid_doc) {
            for (TermId t : c_.row(d).terms) {
                if (s.tail[t]++ == 0) s.touched.push_back(t);
            }
        }
        std::uint32_t run = 0;
        for (std::uint32_t t : s.touched) {
            const std::uint32_t k = s.tail[t];
            s.head[t] = run;
            s.tail[t] = run;
            run += k;
        }
        s.centries.resize(run);
        for (std::uint32_t ci = 0; ci < centroid_doc.size(); ++ci) {
            const SparseVectorView v = c_.row(centroid_doc[ci]);
            for (std::size_t j = 0; j < v.size(); ++j) s.centries[s.tail[v.terms[j]]++] = {ci, v.weights[j]};
        }
        s.acc.assign(centroid_doc.size(), 0.0f);
    }

    void clear_centroid_index(Scratch& s) const {
        for (std::uint32_t t : s.touched) s.head[t] = s.tail[t] = 0;
        s.touched.clear();
    }

    // The alive centroid with the largest inner product with `doc`'s doc_cut largest components.
    // Falls back to the first alive centroid when no component is shared.
    std::uint32_t best_centroid(std::uint32_t doc, const std::vector<char>& alive, Scratch& s) const {
        s.acc_touched.clear();
        const std::uint32_t k = top_count_[doc];
        const TermWeight* tw = top_.data() + static_cast<std::size_t>(doc) * p_.doc_cut;
        for (std::uint32_t j = 0; j < k; ++j) {
            const std::uint32_t t = tw[j].term;
            for (std::uint32_t e = s.head[t]; e < s.tail[t]; ++e) {
                const auto [ci, w] = s.centries[e];
                if (!alive[ci]) continue;
                if (s.acc[ci] == 0.0f) s.acc_touched.push_back(ci);
                s.acc[ci] += tw[j].weight * w;
            }
        }
        std::uint32_t best = 0;
        float best_score = -1.0f;
        for (std::uint32_t ci : s.acc_touched) {
            if (s.acc[ci] > best_score) {
                best_score = s.acc[ci];
                best = ci;
            }
            s.acc[ci] = 0.0f;
        }
        if (best_score < 0.0f) {
            for (std::uint32_t ci = 0; ci < alive.size(); ++ci)
                if (alive[ci]) return ci;
        }
        return best;
    }

    // Appends the block's summary: the coordinate-wise maximum of its documents, cut to the largest
    // coordinates holding summary_energy of its mass (at most summary_max_entries of them), always with
    // the list's own term (every document of the block has it), as u8 codes rounded up against
    // scale = max / 255, terms ascending.
    void summarize(std::uint32_t list_term, std::span<const std::uint32_t> docs, Scratch& s, ListOut& out) const {
        s.touched.clear();
        float* dense = s.dense.data();
        const TermId* terms = c_.terms.data();
        const float* weights = c_.weights.data();
        for (std::uint32_t d : docs) {
            const std::uint64_t e = c_.offsets[d + 1];
            for (std::uint64_t j = c_.offsets[d]; j < e; ++j) {
                const TermId t = terms[j];
                const float m = dense[t];
                if (m == 0.0f) s.touched.push_back(t);
                dense[t] = std::max(m, weights[j]);
            }
        }
        auto& buf = s.sort_buf;
        buf.clear();
        double total = 0;
        for (std::uint32_t t : s.touched) {
            buf.emplace_back(s.dense[t], t);
            total += s.dense[t];
            s.dense[t] = 0.0f;
        }
        std::size_t keep = top_mass_prefix(buf, static_cast<double>(p_.summary_energy) * total);
        if (p_.summary_max_entries > 0 && keep > p_.summary_max_entries) {
            std::nth_element(buf.begin(), buf.begin() + p_.summary_max_entries, buf.begin() + static_cast<std::ptrdiff_t>(keep),
                             [](const auto& a, const auto& b) { return a.first > b.first; });
            keep = p_.summary_max_entries;
        }
        const auto own = std::find_if(buf.begin() + static_cast<std::ptrdiff_t>(keep), buf.end(),
                                      [&](const auto& e) { return e.second == list_term; });
        if (own != buf.end()) {
            if (p_.summary_max_entries > 0 && keep >= p_.summary_max_entries) {
                // Full: the list's term replaces the smallest kept coordinate.
                const auto smallest = std::min_element(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(keep),
                                                       [](const auto& a, const auto& b) { return a.first < b.first; });
                std::iter_swap(smallest, own);
            } else {
                std::iter_swap(buf.begin() + static_cast<std::ptrdiff_t>(keep), own);
                ++keep;
            }
        }
        buf.resize(keep);
        float hi = 0.0f;
        for (const auto& e : buf) hi = std::max(hi, e.first);
        float scale = hi / 255.0f;  // hi > 0 (weights are positive); nudged up until 255 x scale >= hi
        while (scale * 255.0f < hi) scale = std::nextafter(scale, std::numeric_limits<float>::infinity());
        out.scales.push_back(scale);
        out.block_terms.push_back(static_cast<std::uint32_t>(keep));
        std::sort(buf.begin(), buf.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
        for (const auto& [w, t] : buf) {
            // Rounded up, then raised until code * scale >= w also in float arithmetic.
            float q = std::ceil(w / scale);
            while (q < 255.0f && q * scale < w) q += 1.0f;
            out.terms.push_back(t);
            out.codes.push_back(static_cast<std::uint8_t>(std::clamp(q, 1.0f, 255.0f)));
        }
    }

    const SparseCollection& c_;
    const SeismicBuildParams& p_;
    const std::vector<TermWeight>& top_;
    const std::vector<std::uint32_t>& top_count_;

};

}  // namespace

struct SeismicBuilder {
    static Result<SeismicIndex> build(const SparseCollection& c, const SeismicBuildParams& p);
};

namespace {

Status validate(const SeismicBuildParams& p) {
    if (p.n_postings == 0) return invalid_argument("seismic: n_postings must be > 0");
    if (!(p.max_fraction >= 1.0f)) return invalid_argument(fmt::format("seismic: max_fraction must be >= 1, got {}", p.max_fraction));
    if (!(p.centroid_fraction > 0.0f && p.centroid_fraction <= 1.0f))
        return invalid_argument(fmt::format("seismic: centroid_fraction must be in (0, 1], got {}", p.centroid_fraction));
    if (!(p.summary_energy > 0.0f && p.summary_energy <= 1.0f))
        return invalid_argument(fmt::format("seismic: summary_energy must be in (0, 1], got {}", p.summary_energy));
    if (p.doc_cut == 0) return invalid_argument("seismic: doc_cut must be > 0");
    return {};
}

// Counting-sort transpose: list t is ldoc/lw[lstart[t], lstart[t+1]), documents ascending.
void transpose(const SparseCollection& c, std::vector<std::uint64_t>& lstart, std::vector<std::uint32_t>& ldoc,
               std::vector<float>& lw) {
    const std::uint32_t dim = c.dim();
    lstart.assign(static_cast<std::size_t>(dim) + 1, 0);
    for (TermId t : c.terms) ++lstart[t + 1];
    for (std::uint32_t t = 0; t < dim; ++t) lstart[t + 1] += lstart[t];
    ldoc.resize(c.nnz());
    lw.resize(c.nnz());
    std::vector<std::uint64_t> fill(lstart.begin(), lstart.end() - 1);
    for (std::size_t d = 0; d < c.size(); ++d) {
        for (std::uint64_t j = c.offsets[d]; j < c.offsets[d + 1]; ++j) {
            const std::uint64_t at = fill[c.terms[j]]++;
            ldoc[at] = static_cast<std::uint32_t>(d);
            lw[at] = c.weights[j];
        }
    }
}

// The weight above which a posting survives global-threshold pruning, estimated from a strided sample
// of at most ~8M weights (exact when the collection is smaller).
float global_threshold(const SparseCollection& c, std::uint64_t target) {
    const std::size_t nnz = c.nnz();
    if (target >= nnz) return 0.0f;
    const std::size_t stride = std::max<std::size_t>(1, nnz / (8u << 20));
    std::vector<float> sample;
    sample.reserve(nnz / stride + 1);
    for (std::size_t i = 0; i < nnz; i += stride) sample.push_back(c.weights[i]);
    const double frac = static_cast<double>(target) / static_cast<double>(nnz);
    auto pos = static_cast<std::size_t>(frac * static_cast<double>(sample.size()));
    pos = std::min(pos, sample.size() - 1);
    std::nth_element(sample.begin(), sample.begin() + static_cast<std::ptrdiff_t>(pos), sample.end(),
                     std::greater<float>());
    return sample[pos];
}

}  // namespace

Result<SeismicIndex> SeismicBuilder::build(const SparseCollection& c, const SeismicBuildParams& p) {
    QUIVER_TRY(validate(p));
    if (c.size() >= (1ull << 32) - 1) return invalid_argument("seismic: at most 2^32 - 2 documents");
    if (c.offsets.size() != c.size() + 1 || c.ids.size() != c.size() || c.offsets.back() != c.terms.size() ||
        c.weights.size() != c.terms.size())
        return invalid_argument("seismic: inconsistent collection arrays");
    for (TermId t : c.terms)
        if (t >= c.dim()) return invalid_argument(fmt::format("seismic: term id {} is beyond the vocabulary ({} ids)", t, c.dim()));
    const std::uint32_t dim = c.dim();
    const std::size_t n_docs = c.size();
    ThreadPool pool(resolve_threads(p.threads));

    SeismicIndex idx;
    idx.params_ = p;
    idx.vocab_ = c.vocab;
    idx.forward_ = ForwardIndex::build(c, p.weights);
    idx.ids_ = DocIdTable(c.ids);

    // 1. Inverted lists, then static pruning in place: list t keeps its first kept[t] entries.
    std::vector<std::uint64_t> lstart;
    std::vector<std::uint32_t> ldoc;
    std::vector<float> lw;
    transpose(c, lstart, ldoc, lw);
    std::vector<std::uint32_t> kept(dim, 0);
    const bool global = p.pruning == SeismicBuildParams::Pruning::kGlobalThreshold;
    const float threshold = global ? global_threshold(c, static_cast<std::uint64_t>(p.n_postings) * dim) : 0.0f;
    const auto cap = static_cast<std::size_t>(global ? std::floor(p.max_fraction * static_cast<float>(p.n_postings))
                                                     : static_cast<float>(p.n_postings));
    pool.parallel_for(dim, [&](std::size_t t, std::size_t) {
        const std::uint64_t b = lstart[t], e = lstart[t + 1];
        const std::size_t len = e - b;
        std::vector<std::pair<float, std::uint32_t>> v;
        v.reserve(len);
        for (std::uint64_t j = b; j < e; ++j)
            if (lw[j] >= threshold) v.emplace_back(lw[j], ldoc[j]);
        const std::size_t keep = std::min(v.size(), cap);
        if (keep < v.size()) {
            std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(keep), v.end(),
                             [](const auto& x, const auto& y) { return x.first > y.first; });
            v.resize(keep);
        }
        for (std::size_t i = 0; i < keep; ++i) ldoc[b + i] = v[i].second;
        kept[t] = static_cast<std::uint32_t>(keep);
    }, 64);
    std::vector<float>().swap(lw);

    // 2. Each document's doc_cut largest components, for centroid assignment.
    std::vector<TermWeight> top(n_docs * p.doc_cut);
    std::vector<std::uint32_t> top_count(n_docs, 0);
    pool.parallel_for(n_docs, [&](std::size_t d, std::size_t) {
        const SparseVectorView v = c.row(d);
        thread_local std::vector<TermWeight> buf;
        buf.clear();
        for (std::size_t j = 0; j < v.size(); ++j) buf.push_back({v.terms[j], v.weights[j]});
        const std::size_t k = std::min<std::size_t>(p.doc_cut, buf.size());
        std::partial_sort(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k), buf.end(),
                          [](const TermWeight& a, const TermWeight& b) { return a.weight > b.weight; });
        std::copy(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k), top.begin() + static_cast<std::ptrdiff_t>(d * p.doc_cut));
        top_count[d] = static_cast<std::uint32_t>(k);
    }, 1024);

    // 3. Blocks and summaries, list by list (longest first for load balance).
    std::vector<std::uint32_t> order(dim);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return kept[a] > kept[b]; });
    std::vector<ListOut> lists(dim);
    std::vector<Scratch> scratch;
    scratch.reserve(pool.size());
    for (std::size_t w = 0; w < pool.size(); ++w) scratch.emplace_back(dim);
    ListBlocker blocker(c, p, top, top_count);
    ProgressBar bar("seismic: blocking posting lists", dim, "lists");
    pool.parallel_for(dim, [&](std::size_t i, std::size_t worker) {
        const std::uint32_t t = order[i];
        lists[t] = blocker.run(t, std::span<const std::uint32_t>(ldoc.data() + lstart[t], kept[t]), scratch[worker]);
        bar.add();
    });
    bar.finish();
    std::vector<std::uint32_t>().swap(ldoc);
    std::vector<TermWeight>().swap(top);

    // 4. Concatenate.
    std::size_t n_blocks = 0, n_post = 0, n_entries = 0;
    for (std::uint32_t t = 0; t < dim; ++t) {
        n_blocks += lists[t].block_sizes.size();
        n_post += lists[t].docs.size();
        n_entries += lists[t].codes.size();
    }
    if (n_blocks >= (1ull << 32)) return invalid_argument("seismic: more than 2^32 - 1 blocks");
    const bool wide = dim > 65536;
    std::vector<std::uint32_t> list_blocks(static_cast<std::size_t>(dim) + 1, 0);
    std::vector<std::uint64_t> block_post(n_blocks + 1, 0), block_sum(n_blocks + 1, 0);
    std::vector<std::uint32_t> postings, terms32;
    std::vector<std::uint16_t> terms16;
    std::vector<float> scales;
    std::vector<std::uint8_t> codes;
    postings.reserve(n_post);
    scales.reserve(n_blocks);
    codes.reserve(n_entries);
    if (wide) {
        terms32.reserve(n_entries);
    } else {
        terms16.reserve(n_entries);
    }
    std::size_t blk = 0;
    for (std::uint32_t t = 0; t < dim; ++t) {
        ListOut& l = lists[t];
        idx.max_blocks_per_list_ = std::max(idx.max_blocks_per_list_, static_cast<std::uint32_t>(l.block_sizes.size()));
        for (std::size_t i = 0; i < l.block_sizes.size(); ++i) {
            block_post[blk + 1] = block_post[blk] + l.block_sizes[i];
            block_sum[blk + 1] = block_sum[blk] + l.block_terms[i];
            ++blk;
        }
        postings.insert(postings.end(), l.docs.begin(), l.docs.end());
        scales.insert(scales.end(), l.scales.begin(), l.scales.end());
        for (std::uint32_t term : l.terms) {
            if (wide) terms32.push_back(term);
            else terms16.push_back(static_cast<std::uint16_t>(term));
        }
        codes.insert(codes.end(), l.codes.begin(), l.codes.end());
        list_blocks[t + 1] = static_cast<std::uint32_t>(blk);
        l = ListOut();
    }
    idx.list_blocks_ = Buffer<std::uint32_t>(std::move(list_blocks));
    idx.block_post_ = Buffer<std::uint64_t>(std::move(block_post));
    idx.postings_ = Buffer<std::uint32_t>(std::move(postings));
    idx.block_sum_ = Buffer<std::uint64_t>(std::move(block_sum));
    idx.block_scale_ = Buffer<float>(std::move(scales));
    idx.sum_terms16_ = Buffer<std::uint16_t>(std::move(terms16));
    idx.sum_terms32_ = Buffer<std::uint32_t>(std::move(terms32));
    idx.sum_codes_ = Buffer<std::uint8_t>(std::move(codes));

    // 5. Optional k-NN graph: each document's nearest documents by a Seismic search with itself.
    if (p.knn > 0) {
        std::vector<std::uint32_t> graph(n_docs * p.knn, 0xFFFFFFFFu);
        std::vector<std::unique_ptr<SeismicSearcher>> searchers(pool.size());
        SeismicSearchParams sp;
        sp.k = p.knn + 1;
        sp.query_cut = 10;
        sp.heap_factor = 0.7f;
        ProgressBar knn_bar("seismic: k-NN graph", n_docs, "docs");
        pool.parallel_for(n_docs, [&](std::size_t d, std::size_t worker) {
            if (!searchers[worker]) searchers[worker] = std::make_unique<SeismicSearcher>(idx);
            std::size_t j = 0;
            for (const SparseHit& h : searchers[worker]->search(c.row(d), sp)) {
                if (h.doc == d || j == p.knn) continue;
                graph[d * p.knn + j++] = h.doc;
            }
            knn_bar.add();
        }, 64);
        knn_bar.finish();
        idx.knn_ = Buffer<std::uint32_t>(std::move(graph));
    }
    return idx;
}

Result<SeismicIndex> SeismicIndex::build(const SparseCollection& c, const SeismicBuildParams& params) {
    return SeismicBuilder::build(c, params);
}

}  // namespace quiver::sparse
