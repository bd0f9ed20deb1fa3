#include "quiver/index/code_index.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "index/codec/kmeans.h"
#include "index/prepare.h"
#include "index/topk.h"
#include "quiver/core/thread_pool.h"

namespace quiver::index {
namespace {
constexpr std::size_t kScanChunk = 1024;  // codes estimated per scan call (a multiple of every block size)
constexpr std::size_t kEncodeChunk = 4096;

std::size_t default_depth(std::size_t k) { return std::max<std::size_t>(10 * k, 100); }
}  // namespace

double CodeIndexFootprint::resident_per_vector() const noexcept {
    if (vectors == 0) return 0;
    return static_cast<double>(code_bytes + id_bytes + parameter_bytes) / static_cast<double>(vectors);
}

CodeIndex::CodeIndex(std::size_t dim, Metric metric, const CodeIndexParams& params)
    : dim_(dim), metric_(metric), params_(params), distance_(simd::distance_fn(metric)) {}

Result<std::unique_ptr<CodeIndex>> CodeIndex::create(std::size_t dim, Metric metric, const CodeIndexParams& params) {
    if (dim == 0 || dim > (1u << 16)) {
        return invalid_argument(fmt::format("dimension {} is out of range (1 to 65536)", dim));
    }
    if (params.nlist > (1u << 20)) return invalid_argument(fmt::format("nlist {} is above 2^20", params.nlist));
    const Metric codec_metric = metric == Metric::kCosine ? Metric::kInnerProduct : metric;
    QUIVER_ASSIGN_OR_RETURN(auto codec, Codec::create(params.codec, dim, codec_metric, params.seed));
    std::unique_ptr<CodeIndex> idx(new CodeIndex(dim, metric, params));
    idx->codec_ = std::move(codec);
    // Float32 codes are exact: nothing to rescore.
    if (params.codec.kind == CodecKind::kNone) idx->params_.keep_vectors = false;
    idx->lists_.resize(std::max<std::size_t>(params.nlist, 1));
    return idx;
}

CodeIndex::~CodeIndex() {
    if (disk_fd_ >= 0) ::close(disk_fd_);
}

float CodeIndex::exact_distance(const float* q, std::uint32_t slot, float* buf, float fallback) const noexcept {
    if (disk_fd_ < 0) return distance_(q, vector(slot), dim_);
    const std::size_t bytes = dim_ * sizeof(float);
    auto* dst = reinterpret_cast<char*>(buf);
    const auto base = static_cast<off_t>(disk_offset_ + static_cast<std::uint64_t>(slot) * bytes);
    for (std::size_t done = 0; done < bytes;) {
        const ssize_t got = ::pread(disk_fd_, dst + done, bytes - done, base + static_cast<off_t>(done));
        if (got <= 0) return fallback;
        done += static_cast<std::size_t>(got);
    }
    return distance_(q, buf, dim_);
}

Status CodeIndex::load_disk_vectors() {
    if (disk_fd_ < 0) return {};
    std::vector<float> all(labels_.size() * dim_);
    const std::size_t bytes = all.size() * sizeof(float);
    auto* dst = reinterpret_cast<char*>(all.data());
    for (std::size_t done = 0; done < bytes;) {
        const ssize_t got = ::pread(disk_fd_, dst + done, bytes - done, static_cast<off_t>(disk_offset_ + done));
        if (got <= 0) return data_loss(fmt::format("reading the float vectors of a code index from disk failed at byte {}", done));
        done += static_cast<std::size_t>(got);
    }
    owned_vectors_ = std::move(all);
    vectors_ = owned_vectors_.data();
    ::close(disk_fd_);
    disk_fd_ = -1;
    return {};
}

IndexInfo CodeIndex::info() const { return {params_.nlist > 0 ? "ivf" : "flat-codes", dim_, metric_, live_}; }

CodeIndexFootprint CodeIndex::footprint() const {
    CodeIndexFootprint f;
    f.vectors = labels_.size();
    for (const auto& l : lists_) {
        f.code_bytes += l.codes.size();
        f.id_bytes += l.slots.size() * sizeof(std::uint32_t);
    }
    f.id_bytes += labels_.size() * (sizeof(Label) + 1) + slot_of_.size() * 32;
    f.parameter_bytes = codec_->parameter_bytes() + centroids_.size() * sizeof(float);
    f.float_bytes = has_vectors() ? labels_.size() * dim_ * sizeof(float) : 0;
    f.floats_mapped = mapping_ != nullptr && vectors_ != nullptr;
    f.floats_on_disk = disk_fd_ >= 0;
    return f;
}

std::size_t CodeIndex::memory_bytes() const {
    const auto f = footprint();
    return f.code_bytes + f.id_bytes + f.parameter_bytes + (f.floats_mapped || f.floats_on_disk ? 0 : f.float_bytes);
}

std::int64_t CodeIndex::find_slot(std::uint64_t label) const {
    if (sequential_) {
        return label < labels_.size() && removed_[label] == 0 ? static_cast<std::int64_t>(label) : -1;
    }
    const auto it = slot_of_.find(label);
    return it == slot_of_.end() ? -1 : static_cast<std::int64_t>(it->second);
}

Status CodeIndex::train(MatrixView<float> x) {
    const std::size_t want = params_.train_rows > 0 ? params_.train_rows : codec_->default_train_rows();
    Matrix<float> sample;
    MatrixView<float> s = x;
    std::mt19937_64 rng(params_.seed);
    if (x.rows > want) {
        std::vector<std::size_t> idx(x.rows);
        std::iota(idx.begin(), idx.end(), 0);
        for (std::size_t i = 0; i < want; ++i) std::swap(idx[i], idx[i + rng() % (x.rows - i)]);
        std::sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(want));
        sample = Matrix<float>(want, dim_);
        for (std::size_t i = 0; i < want; ++i) std::copy_n(x.row_ptr(idx[i]), dim_, sample.row_ptr(i));
        s = sample.view();
    }
    if (params_.nlist > 0) {
        // Coarse k-means on the whole first batch (subsampled to 256 per list inside; spherical for
        // cosine: unit-length centroids, as FAISS trains IVF on inner product), then the codec
        // on the residuals of its sample.
        QUIVER_ASSIGN_OR_RETURN(Matrix<float> cent, detail::kmeans(x, {.k = params_.nlist,
                                                                        .iterations = 10,
                                                                        .seed = params_.seed,
                                                                        .threads = params_.threads,
                                                                        .spherical = metric_ == Metric::kCosine}));
        std::vector<std::uint32_t> assign(s.rows);
        detail::assign_nearest(s, cent, assign.data(), nullptr, params_.threads);
        Matrix<float> resid(s.rows, dim_);
        for (std::size_t i = 0; i < s.rows; ++i) {
            const float* c = cent.row_ptr(assign[i]);
            for (std::size_t j = 0; j < dim_; ++j) resid.row_ptr(i)[j] = s.row_ptr(i)[j] - c[j];
        }
        QUIVER_TRY(codec_->train(resid));
        centroids_ = std::move(cent.values);
        return {};
    }
    return codec_->train(s);
}

void CodeIndex::append_codes(List& list, const std::uint32_t* slots, const std::uint8_t* codes, std::size_t n) {
    if (n == 0) return;
    const std::size_t cs = codec_->code_size();
    const std::size_t block = codec_->block_size();
    // Re-pack from the start of the last partial block: unpack its codes, append the new ones.
    const std::size_t start = list.count / block * block;
    std::vector<std::uint8_t> rows((list.count - start + n) * cs);
    for (std::size_t i = start; i < list.count; ++i) {
        codec_->unpack(list.codes.data(), i, rows.data() + (i - start) * cs);
    }
    std::memcpy(rows.data() + (list.count - start) * cs, codes, n * cs);
    const std::size_t total = list.count + n;
    list.codes.resize(codec_->packed_bytes(total));
    codec_->pack(rows.data(), total - start, list.codes.data() + codec_->packed_bytes(start));
    if (params_.nlist > 0) list.slots.insert(list.slots.end(), slots, slots + n);
    list.count = total;
}

Status CodeIndex::verify() const { return deferred_ ? deferred_->run() : ok_status(); }

Status CodeIndex::add(MatrixView<float> vectors, std::span<const Label> labels) {
    QUIVER_TRY(verify());
    if (vectors.rows != labels.size()) {
        return invalid_argument(fmt::format("{} vectors but {} labels", vectors.rows, labels.size()));
    }
    QUIVER_TRY(detail::validate_rows(vectors, dim_, metric_, "vectors"));
    if (vectors.rows == 0) return {};
    for (Label l : labels) {
        if (l == kNoLabel) return invalid_argument("label 2^64 - 1 is reserved (no label)");
    }
    if (labels_.size() + vectors.rows > std::numeric_limits<std::uint32_t>::max()) {
        return resource_exhausted("a code index holds at most 2^32 - 1 vectors");
    }
    const auto prepared = detail::prepare_rows(vectors, metric_);
    const MatrixView<float> x = prepared.view;
    if (!trained()) QUIVER_TRY(train(x));

    QUIVER_TRY(load_disk_vectors());
    if (params_.keep_vectors && mapping_) {  // copy the mapped floats before the first mutation
        owned_vectors_.assign(vectors_, vectors_ + labels_.size() * dim_);
        mapping_.reset();
    }
    const std::size_t first = labels_.size();
    // Labels: replace existing ones, keep the sequential fast path while labels equal slot numbers.
    for (std::size_t r = 0; r < vectors.rows; ++r) {
        const std::uint64_t label = to_int(labels[r]);
        const std::int64_t old = find_slot(label);
        const std::uint32_t slot = static_cast<std::uint32_t>(first + r);
        if (sequential_ && (old >= 0 || label != slot)) {
            sequential_ = false;
            for (std::size_t s = 0; s < labels_.size(); ++s) {
                if (removed_[s] == 0) slot_of_[to_int(labels_[s])] = static_cast<std::uint32_t>(s);
            }
        }
        if (old >= 0) {
            removed_[static_cast<std::size_t>(old)] = 1;
            --live_;
        }
        if (!sequential_) slot_of_[label] = slot;
        labels_.push_back(labels[r]);
        removed_.push_back(0);
        ++live_;
    }
    if (params_.keep_vectors) {
        owned_vectors_.insert(owned_vectors_.end(), x.data, x.data + x.size());
        vectors_ = owned_vectors_.data();
    }

    const std::size_t cs = codec_->code_size();
    std::vector<std::uint32_t> assign(std::min(kEncodeChunk, x.rows));
    Matrix<float> resid;
    std::vector<std::uint8_t> codes;
    ThreadPool pool(resolve_threads(params_.threads));
    for (std::size_t r0 = 0; r0 < x.rows; r0 += kEncodeChunk) {
        const std::size_t rn = std::min(kEncodeChunk, x.rows - r0);
        MatrixView<float> chunk = x.slice(r0, rn);
        if (params_.nlist > 0) {
            detail::assign_nearest(chunk, {centroids_.data(), params_.nlist, dim_}, assign.data(), nullptr,
                                   params_.threads);
            resid = Matrix<float>(rn, dim_);
            for (std::size_t i = 0; i < rn; ++i) {
                const float* c = centroids_.data() + assign[i] * dim_;
                for (std::size_t j = 0; j < dim_; ++j) resid.row_ptr(i)[j] = chunk.row_ptr(i)[j] - c[j];
            }
            chunk = resid.view();
        }
        codes.resize(rn * cs);
        // Encode in parallel slices of 256 rows.
        pool.parallel_for((rn + 255) / 256, [&](std::size_t b, std::size_t) {
            const std::size_t b0 = b * 256, bn = std::min<std::size_t>(256, rn - b0);
            codec_->encode(chunk.slice(b0, bn), codes.data() + b0 * cs);
        });
        if (params_.nlist == 0) {
            append_codes(lists_[0], nullptr, codes.data(), rn);
            continue;
        }
        // Group by list (stable, so each list's slots ascend).
        std::vector<std::uint32_t> order(rn);
        std::iota(order.begin(), order.end(), 0u);
        std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return assign[a] < assign[b]; });
        std::vector<std::uint8_t> group;
        std::vector<std::uint32_t> slots;
        for (std::size_t i = 0; i < rn;) {
            const std::uint32_t l = assign[order[i]];
            group.clear();
            slots.clear();
            for (; i < rn && assign[order[i]] == l; ++i) {
                group.insert(group.end(), codes.data() + order[i] * cs, codes.data() + (order[i] + 1) * cs);
                slots.push_back(static_cast<std::uint32_t>(first + r0 + order[i]));
            }
            append_codes(lists_[l], slots.data(), group.data(), slots.size());
        }
    }
    return {};
}

Result<std::size_t> CodeIndex::remove(std::span<const Label> labels) {
    QUIVER_TRY(verify());
    std::size_t n = 0;
    for (Label l : labels) {
        const std::int64_t s = find_slot(to_int(l));
        if (s < 0) continue;
        removed_[static_cast<std::size_t>(s)] = 1;
        if (!sequential_) slot_of_.erase(to_int(l));
        --live_;
        ++n;
    }
    return n;
}

void CodeIndex::search_one(const float* q, const SearchParams& params, std::size_t nprobe, Label* out_labels,
                           float* out_dist) const {
    const std::size_t k = params.k;
    const bool rescore_possible = has_vectors();
    const bool by_bound = rescore_possible && codec_->has_error_bound() &&
                          params.rescore == SearchParams::kRescoreDefault;
    std::size_t depth = k;
    if (rescore_possible && !by_bound) {
        depth = params.rescore == SearchParams::kRescoreDefault ? default_depth(k) : std::max(params.rescore, k);
    }
    const bool rescore = rescore_possible && (by_bound || params.rescore != 0);

    // Lists to probe.
    std::vector<std::pair<float, std::uint32_t>> probe;
    if (params_.nlist == 0) {
        probe.emplace_back(0.0f, 0u);
    } else {
        const auto l2 = simd::distance_fn(Metric::kL2);
        probe.resize(params_.nlist);
        for (std::size_t c = 0; c < params_.nlist; ++c) {
            probe[c] = {l2(q, centroids_.data() + c * dim_, dim_), static_cast<std::uint32_t>(c)};
        }
        const std::size_t np = std::min(nprobe, params_.nlist);
        std::partial_sort(probe.begin(), probe.begin() + static_cast<std::ptrdiff_t>(np), probe.end());
        probe.resize(np);
    }

    detail::TopK cand(by_bound ? 0 : depth);
    detail::TopK exact(by_bound ? k : 0);
    std::vector<float> est(kScanChunk), err(by_bound ? kScanChunk : 0), qr(dim_);
    std::vector<std::uint32_t> sel(by_bound ? 0 : kScanChunk);  // estimates that beat the threshold
    std::vector<float> vbuf(disk_fd_ >= 0 ? dim_ : 0);  // a candidate's vector read from disk
    const bool l2 = metric_ == Metric::kL2;
    std::unique_ptr<CodeEstimator> shared;
    if (!l2 || params_.nlist == 0) shared = codec_->estimator(q);
    const auto& fk = simd::active_kernels();
    for (const auto& [unused, l] : probe) {
        (void)unused;
        const List& list = lists_[l];
        if (list.count == 0) continue;
        const CodeEstimator* e = shared.get();
        std::unique_ptr<CodeEstimator> own;
        float offset = 0;
        if (params_.nlist > 0) {
            const float* c = centroids_.data() + l * dim_;
            if (l2) {
                for (std::size_t j = 0; j < dim_; ++j) qr[j] = q[j] - c[j];
                own = codec_->estimator(qr.data());
                e = own.get();
            } else {
                offset = -fk.dot(q, c, dim_);  // 1 - <q, x> = (1 - <q, r>) - <q, c>
            }
        }
        for (std::size_t i0 = 0; i0 < list.count; i0 += kScanChunk) {
            const std::size_t n = std::min(kScanChunk, list.count - i0);
            if (by_bound) {
                e->scan(list.codes.data() + codec_->packed_bytes(i0), n, est.data(), err.data());
                for (std::size_t i = 0; i < n; ++i) {
                    const std::uint32_t slot = params_.nlist > 0 ? list.slots[i0 + i] : static_cast<std::uint32_t>(i0 + i);
                    const float d = est[i] + offset;
                    if (d - err[i] > exact.threshold() || !live(slot, params.filter)) continue;
                    exact.push(exact_distance(q, slot, vbuf.data(), d), slot);
                }
                continue;
            }
            // Most estimates lose to the current depth-th candidate: the estimator returns only those that
            // may beat it (the threshold only falls while pushing; the limit has slack for the rounding of
            // `+ offset`), and slots are loaded and compared exactly for those alone.
            const float bound = cand.threshold();
            const float limit = bound - offset + (std::fabs(bound) + std::fabs(offset)) * 0x1p-20f;
            const std::size_t m = e->scan_below(list.codes.data() + codec_->packed_bytes(i0), n, limit, sel.data(),
                                                est.data());
            for (std::size_t j = 0; j < m; ++j) {
                const std::size_t i = sel[j];
                const std::uint32_t slot = params_.nlist > 0 ? list.slots[i0 + i] : static_cast<std::uint32_t>(i0 + i);
                const float d = est[j] + offset;
                if (d <= cand.threshold() && live(slot, params.filter)) cand.push(d, slot);
            }
        }
    }
    std::vector<std::pair<float, std::uint64_t>> best;
    if (by_bound) {
        best = exact.take_sorted();
    } else if (rescore) {
        auto c = cand.take_sorted();
        detail::TopK top(k);
        for (const auto& [d, slot] : c) top.push(exact_distance(q, slot, vbuf.data(), d), slot);
        best = top.take_sorted();
    } else {
        best = cand.take_sorted();
    }
    for (std::size_t j = 0; j < best.size() && j < k; ++j) {
        out_labels[j] = labels_[best[j].second];
        out_dist[j] = best[j].first;
    }
}

Result<SearchResults> CodeIndex::search(MatrixView<float> queries, const SearchParams& params) const {
    if (params.k == 0) return invalid_argument("k must be at least 1");
    QUIVER_TRY(detail::validate_rows(queries, dim_, metric_, "queries"));
    QUIVER_TRY(verify());
    SearchResults results(queries.rows, params.k);
    if (queries.rows == 0 || live_ == 0) return results;
    const auto prepared = detail::prepare_rows(queries, metric_);
    std::size_t nprobe = params.nprobe > 0 ? params.nprobe : params_.nprobe;
    if (nprobe == 0) nprobe = std::max<std::size_t>(1, params_.nlist / 32);
    ThreadPool pool(resolve_threads(params.threads));
    pool.parallel_for(queries.rows, [&](std::size_t q, std::size_t) {
        search_one(prepared.view.row_ptr(q), params, nprobe, results.labels.data() + q * params.k,
                   results.distances.data() + q * params.k);
    });
    return results;
}

}  // namespace quiver::index
