// The mutable memtable: small batches appended, searched by brute force over a snapshot's prefix.
// See memtable.h.
#include "engine/memtable.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "quiver/multivector/maxsim.h"
#include "quiver/simd/kernels.h"
#include "quiver/sparse/bm25_index.h"
#include "quiver/text/analyzer.h"

namespace quiver::engine {
namespace {

bool is_attribute_value(const FieldSpec& f) { return is_attribute_type(f.type); }

const std::string* text_value(const Document& d, const std::string& name) {
    const auto it = d.fields.find(name);
    if (it == d.fields.end()) return nullptr;
    return std::get_if<std::string>(&it->second);
}

// Best first, ties by lower slot (the order segment searches return).
void keep_top_k(std::vector<ScoredDoc>& hits, std::size_t k) {
    auto better = [](const ScoredDoc& a, const ScoredDoc& b) {
        return a.score != b.score ? a.score > b.score : a.local < b.local;
    };
    if (hits.size() > k) {
        std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(k), hits.end(), better);
        hits.resize(k);
    } else {
        std::sort(hits.begin(), hits.end(), better);
    }
}

// Sorted distinct terms of `texts` (analysed in order as one text) with their frequencies, and the length.
MemDoc::Text count_terms(text::Analyzer& analyzer, std::span<const std::string_view> texts) {
    MemDoc::Text t;
    const std::uint64_t tokens = analyzer.analyze_counts(texts, t.terms);
    t.length = static_cast<std::uint32_t>(std::min<std::uint64_t>(tokens, 0x7FFFFFFF));
    return t;
}

// One term's BM25 contribution to a document (or chunk) of `length` tokens, exactly as Bm25Index
// computes it: the length goes through the same one-byte norm encoding.
float bm25_term(float weight, std::uint32_t tf, std::uint32_t length, float k1, float b, float avgdl) {
    const float len = static_cast<float>(sparse::decode_norm(sparse::encode_norm(length)));
    const float norm_inverse = 1.0f / (k1 * ((1.0f - b) + b * len / avgdl));
    return weight - weight / (1.0f + static_cast<float>(tf) * norm_inverse);
}

}  // namespace

Memtable::Memtable(const Schema& schema, std::size_t capacity)
    : schema_(&schema),
      capacity_(capacity),
      slots_(std::make_unique<Slot[]>(capacity)),
      text_index_(schema.fields.size()) {}

Result<MemDoc> Memtable::prepare(const Schema& schema, Document doc) {
    // One analyzer per thread (Analyzer is not thread-safe); the segment indexes use the default config.
    thread_local std::optional<text::Analyzer> analyzer;
    MemDoc m;
    m.text.resize(schema.fields.size());
    m.vectors.resize(schema.fields.size());
    for (std::size_t fi = 0; fi < schema.fields.size(); ++fi) {
        const FieldSpec& f = schema.fields[fi];
        if (is_attribute_value(f)) {
            if (auto it = doc.fields.find(f.name); it != doc.fields.end()) m.attrs.fields.emplace(f.name, it->second);
        } else if (f.type == FieldType::kText && f.indexed) {
            if (!analyzer) {
                QUIVER_ASSIGN_OR_RETURN(auto a, text::Analyzer::create(text::AnalyzerConfig{}));
                analyzer.emplace(std::move(a));
            }
            if (f.chunking) {  // as Segment::build: each chunk analysed as its own BM25 document
                m.chunks.resize(schema.fields.size());
                for (const std::string& chunk : field_chunks(f, doc)) {
                    const std::string_view one[] = {chunk};
                    m.chunks[fi].push_back(count_terms(*analyzer, one));
                }
                continue;
            }
            // As Segment::build: no sources = the field itself; one = the body; two = title + body.
            std::string_view texts[2];
            std::size_t n = 0;
            if (f.sources.empty()) {
                if (const auto* s = text_value(doc, f.name)) texts[n++] = *s;
            } else {
                for (std::size_t si = 0; si < f.sources.size() && si < 2; ++si) {
                    if (const auto* s = text_value(doc, f.sources[si])) texts[n++] = *s;
                }
            }
            m.text[fi] = count_terms(*analyzer, std::span<const std::string_view>(texts, n));
        } else if (chunked_vectors(f)) {
            // As Segment::build: every chunk whose vector is not zero, normalised for cosine.
            const auto it = doc.fields.find(f.name);
            const auto* tv = it == doc.fields.end() ? nullptr : std::get_if<TokenVectors>(&it->second);
            if (tv == nullptr || tv->dim != f.dim) continue;
            if (m.vector_chunks.empty()) m.vector_chunks.resize(schema.fields.size());
            for (std::size_t r = 0; r < tv->rows(); ++r) {
                const float* row = tv->values.data() + r * f.dim;
                if (std::all_of(row, row + f.dim, [](float x) { return x == 0.0f; })) continue;
                const std::size_t at = m.vectors[fi].size();
                m.vectors[fi].insert(m.vectors[fi].end(), row, row + f.dim);
                if (f.metric == simd::Metric::kCosine) simd::normalize(m.vectors[fi].data() + at, f.dim);
                m.vector_chunks[fi].push_back(static_cast<std::uint32_t>(r));
            }
        } else if (f.type == FieldType::kVector) {
            const auto it = doc.fields.find(f.name);
            const auto* v = it == doc.fields.end() ? nullptr : std::get_if<std::vector<float>>(&it->second);
            if (v == nullptr) continue;
            std::vector<float> row = *v;
            if (f.metric == simd::Metric::kCosine && !simd::normalize(row.data(), row.size())) {
                return invalid_argument("document '" + doc.id + "': field '" + f.name +
                                        "' is a zero vector, which cosine cannot normalise");
            }
            m.vectors[fi] = std::move(row);
        }
    }
    m.doc = std::move(doc);
    return m;
}

void Memtable::append(MemDoc doc, std::uint64_t seq) {
    Slot& s = slots_[size_];
    s.doc = std::move(doc);
    s.seq = seq;
    {
        std::unique_lock lock(index_mu_);
        latest_[s.doc.doc.id] = size_;
        for (std::size_t fi = 0; fi < s.doc.text.size() && fi < text_index_.size(); ++fi) {
            for (const auto& [term, tf] : s.doc.text[fi].terms) text_index_[fi][term].push_back({size_, tf, 0});
        }
        for (std::size_t fi = 0; fi < s.doc.chunks.size() && fi < text_index_.size(); ++fi) {
            for (std::uint32_t c = 0; c < s.doc.chunks[fi].size(); ++c) {
                for (const auto& [term, tf] : s.doc.chunks[fi][c].terms) text_index_[fi][term].push_back({size_, tf, c});
            }
        }
    }
    ++size_;
}

const std::vector<Memtable::Posting>* Memtable::postings(std::size_t field, std::string_view term) const {
    if (field >= text_index_.size()) return nullptr;
    const Postings& index = text_index_[field];
    const auto it = index.find(std::string(term));
    return it == index.end() ? nullptr : &it->second;
}

std::optional<std::uint32_t> Memtable::find_live(const std::string& id) const {
    const auto it = latest_.find(id);
    // Older versions of an id were deleted when the newer one was appended.
    if (it == latest_.end() || slots_[it->second].deleted_at.load(std::memory_order_relaxed) != 0) return std::nullopt;
    return it->second;
}

void Memtable::mark_deleted(std::uint32_t local, std::uint64_t seq) {
    slots_[local].deleted_at.store(seq, std::memory_order_release);
}

void Memtable::live_prefix(std::uint32_t n, std::vector<const Document*>& docs, std::vector<std::uint64_t>& seqs,
                           std::vector<std::uint32_t>& slots, std::vector<const MemDoc*>* analysed) const {
    for (std::uint32_t i = 0; i < n; ++i) {
        if (deleted(i)) continue;
        docs.push_back(&slots_[i].doc.doc);
        if (analysed != nullptr) analysed->push_back(&slots_[i].doc);
        seqs.push_back(slots_[i].seq);
        slots.push_back(i);
    }
}

std::shared_ptr<Memtable> Memtable::tail(std::uint32_t from, std::size_t capacity) const {
    auto out = std::make_shared<Memtable>(*schema_, std::max<std::size_t>(capacity, size_ - std::min(from, size_)));
    for (std::uint32_t i = from; i < size_; ++i) {
        out->append(slots_[i].doc, slots_[i].seq);
        const std::uint64_t d = slots_[i].deleted_at.load(std::memory_order_relaxed);
        // A deleted slot's id may have a newer slot (appended later here): keep latest_ pointing at it.
        if (d != 0) out->slots_[out->size_ - 1].deleted_at.store(d, std::memory_order_relaxed);
    }
    return out;
}

std::optional<std::uint32_t> Memtable::find(std::string_view id, std::uint32_t n, std::uint64_t seq) const {
    {
        // The newest slot of `id`: the one visible to the snapshot unless it came after it (then an
        // older slot may be, found by the scan below).
        std::shared_lock lock(index_mu_);
        const auto it = latest_.find(std::string(id));
        if (it == latest_.end()) return std::nullopt;  // never written here
        if (it->second < n) {
            if (visible(it->second, seq)) return it->second;
            return std::nullopt;  // deleted (or replaced) as of the snapshot: older slots were deleted before it
        }
    }
    for (std::uint32_t i = n; i-- > 0;) {
        if (slots_[i].doc.doc.id == id && visible(i, seq)) return i;
    }
    return std::nullopt;
}

std::size_t Memtable::live_count(std::uint32_t n, std::uint64_t seq) const {
    std::size_t live = 0;
    for (std::uint32_t i = 0; i < n; ++i) live += visible(i, seq) ? 1 : 0;
    return live;
}

void Memtable::add_text_stats(std::size_t field, sparse::Bm25QueryStats& stats, std::uint32_t n,
                              std::uint64_t seq) const {
    if (field >= schema_->fields.size()) return;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (!visible(i, seq)) continue;  // live documents only, as the segments count theirs
        const MemDoc& d = slots_[i].doc;
        if (field < d.chunks.size() && !d.chunks[field].empty()) {  // chunked: every chunk is a BM25 document
            for (const MemDoc::Text& t : d.chunks[field]) {
                stats.total_tokens += t.length;
                if (t.length > 0) ++stats.doc_count;
            }
            continue;
        }
        const MemDoc::Text& t = d.text[field];
        stats.total_tokens += t.length;
        if (t.length > 0) ++stats.doc_count;
    }
    std::shared_lock lock(index_mu_);
    for (std::size_t q = 0; q < stats.terms.size(); ++q) {
        const auto* list = postings(field, stats.terms[q]);
        if (list == nullptr) continue;
        for (const Posting& p : *list) {
            if (p.slot >= n) break;  // ascending: the rest are beyond the snapshot's prefix
            if (visible(p.slot, seq)) ++stats.doc_freq[q];
        }
    }
}

template <class Length, class Add>
void Memtable::score_postings(std::size_t field, const sparse::Bm25QueryStats& stats, std::uint32_t n,
                              std::uint64_t seq, Length&& length, Add&& add) const {
    const float k1 = schema_->bm25_k1;
    const float b = schema_->bm25_b;
    const float avgdl = static_cast<float>(static_cast<double>(stats.total_tokens) / static_cast<double>(stats.doc_count));
    std::shared_lock lock(index_mu_);
    for (std::size_t q = 0; q < stats.terms.size(); ++q) {
        const float weight = stats.boosts[q] * sparse::bm25_idf(stats.doc_freq[q], stats.doc_count);
        if (weight <= 0.0f) continue;
        const auto* list = postings(field, stats.terms[q]);
        if (list == nullptr) continue;
        for (const Posting& p : *list) {
            if (p.slot >= n) break;
            if (!visible(p.slot, seq)) continue;
            add(p, bm25_term(weight, p.tf, length(p), k1, b, avgdl));
        }
    }
}

std::vector<ScoredDoc> Memtable::search_text(std::size_t field, const sparse::Bm25QueryStats& stats, std::size_t k,
                                             std::uint32_t n, std::uint64_t seq, const Filter* filter) const {
    std::vector<ScoredDoc> out;
    if (n == 0 || k == 0 || stats.terms.empty() || stats.doc_count == 0 || field >= schema_->fields.size()) return out;
    if (schema_->fields[field].chunking) return search_chunks(field, stats, k, n, seq, filter);
    const std::optional<CompiledFilter> compiled = compile(filter);
    // Per slot, the query terms' contributions are summed in query-term order (as Bm25Index does).
    std::vector<float> score(n, 0.0f);
    std::vector<std::uint8_t> matched(n, 0);
    score_postings(
        field, stats, n, seq, [&](const Posting& p) { return slots_[p.slot].doc.text[field].length; },
        [&](const Posting& p, float contribution) {
            score[p.slot] += contribution;
            matched[p.slot] = 1;
        });
    for (std::uint32_t i = 0; i < n; ++i) {
        if (!matched[i] || !accepts(i, seq, compiled)) continue;
        out.push_back({i, static_cast<double>(score[i])});
    }
    keep_top_k(out, k);
    return out;
}

std::vector<ScoredDoc> Memtable::search_chunks(std::size_t field, const sparse::Bm25QueryStats& stats, std::size_t k,
                                               std::uint32_t n, std::uint64_t seq, const Filter* filter) const {
    const std::optional<CompiledFilter> compiled = compile(filter);
    // (slot, chunk) -> score, summed in query-term order as search_text (and Bm25Index) do.
    std::unordered_map<std::uint64_t, float> score;
    score_postings(
        field, stats, n, seq, [&](const Posting& p) { return slots_[p.slot].doc.chunks[field][p.chunk].length; },
        [&](const Posting& p, float contribution) {
            score[(static_cast<std::uint64_t>(p.slot) << 32) | p.chunk] += contribution;
        });
    std::vector<ScoredDoc> out;
    for (const auto& [key, s] : score) {
        const auto slot = static_cast<std::uint32_t>(key >> 32);
        if (!accepts(slot, seq, compiled)) continue;
        out.push_back({slot, static_cast<double>(s), static_cast<std::uint32_t>(key)});
    }
    auto better = [](const ScoredDoc& a, const ScoredDoc& b) {
        if (a.score != b.score) return a.score > b.score;
        return a.local != b.local ? a.local < b.local : a.chunk < b.chunk;
    };
    if (out.size() > k) {
        std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k), out.end(), better);
        out.resize(k);
    } else {
        std::sort(out.begin(), out.end(), better);
    }
    return out;
}

std::vector<ScoredDoc> Memtable::search_sparse(std::size_t field, const SparseTerms& query, std::size_t k,
                                               std::uint32_t n, std::uint64_t seq, const Filter* filter) const {
    const std::optional<CompiledFilter> compiled = compile(filter);
    std::vector<ScoredDoc> out;
    if (n == 0 || k == 0 || field >= schema_->fields.size()) return out;
    const std::string& name = schema_->fields[field].name;
    std::map<std::string_view, float> q;
    for (const auto& [term, w] : query) q[term] += w;
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto it = slots_[i].doc.doc.fields.find(name);
        const auto* terms = it == slots_[i].doc.doc.fields.end() ? nullptr : std::get_if<SparseTerms>(&it->second);
        if (terms == nullptr) continue;
        float score = 0.0f;
        for (const auto& [term, w] : *terms) {
            if (const auto qit = q.find(term); qit != q.end()) score += qit->second * w;
        }
        if (score <= 0.0f || !accepts(i, seq, compiled)) continue;
        out.push_back({i, static_cast<double>(score)});
    }
    keep_top_k(out, k);
    return out;
}

std::vector<ScoredDoc> Memtable::search_multivector(std::size_t field, MatrixView<float> query, std::size_t k,
                                                   std::uint32_t n, std::uint64_t seq, const Filter* filter) const {
    const std::optional<CompiledFilter> compiled = compile(filter);
    std::vector<ScoredDoc> out;
    if (n == 0 || k == 0 || query.rows == 0 || field >= schema_->fields.size()) return out;
    const std::string& name = schema_->fields[field].name;
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto it = slots_[i].doc.doc.fields.find(name);
        const auto* tv = it == slots_[i].doc.doc.fields.end() ? nullptr : std::get_if<TokenVectors>(&it->second);
        if (tv == nullptr || tv->rows() == 0 || tv->dim != query.dim || !accepts(i, seq, compiled)) continue;
        out.push_back({i, static_cast<double>(multivector::maxsim(query, tv->values.data(), tv->rows()))});
    }
    keep_top_k(out, k);
    return out;
}

std::vector<ScoredDoc> Memtable::search_vector(std::size_t field, std::span<const float> query, std::size_t k,
                                               std::uint32_t n, std::uint64_t seq, const Filter* filter) const {
    const std::optional<CompiledFilter> compiled = compile(filter);
    std::vector<ScoredDoc> out;
    if (n == 0 || k == 0 || field >= schema_->fields.size()) return out;
    const FieldSpec& f = schema_->fields[field];
    if (chunked_vectors(f)) return search_vector_chunks(field, query, k, n, seq, filter);
    std::vector<float> q(query.begin(), query.end());
    if (f.metric == simd::Metric::kCosine && !simd::normalize(q.data(), q.size())) return out;
    const simd::DistanceFn dist = simd::distance_fn(f.metric);
    for (std::uint32_t i = 0; i < n; ++i) {
        const std::vector<float>& v = slots_[i].doc.vectors[field];
        if (v.size() != q.size() || !accepts(i, seq, compiled)) continue;
        out.push_back({i, -static_cast<double>(dist(q.data(), v.data(), q.size()))});
    }
    keep_top_k(out, k);
    return out;
}

std::vector<ScoredDoc> Memtable::search_vector_chunks(std::size_t field, std::span<const float> query, std::size_t k,
                                                      std::uint32_t n, std::uint64_t seq, const Filter* filter) const {
    const std::optional<CompiledFilter> compiled = compile(filter);
    std::vector<ScoredDoc> out;
    const FieldSpec& f = schema_->fields[field];
    std::vector<float> q(query.begin(), query.end());
    if (q.size() != f.dim || (f.metric == simd::Metric::kCosine && !simd::normalize(q.data(), q.size()))) return out;
    const simd::DistanceFn dist = simd::distance_fn(f.metric);
    for (std::uint32_t i = 0; i < n; ++i) {
        const MemDoc& d = slots_[i].doc;
        if (field >= d.vector_chunks.size() || d.vector_chunks[field].empty() || !accepts(i, seq, compiled)) continue;
        const std::vector<std::uint32_t>& chunks = d.vector_chunks[field];
        for (std::size_t r = 0; r < chunks.size(); ++r) {
            const float* v = d.vectors[field].data() + r * f.dim;
            out.push_back({i, -static_cast<double>(dist(q.data(), v, f.dim)), chunks[r]});
        }
    }
    auto better = [](const ScoredDoc& a, const ScoredDoc& b) {
        if (a.score != b.score) return a.score > b.score;
        return a.local != b.local ? a.local < b.local : a.chunk < b.chunk;
    };
    if (out.size() > k) {
        std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k), out.end(), better);
        out.resize(k);
    } else {
        std::sort(out.begin(), out.end(), better);
    }
    return out;
}

}  // namespace quiver::engine
