#include "quiver/sparse/bm25_index.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "quiver/core/thread_pool.h"
#include "quiver/storage/file_format.h"

namespace quiver::sparse {
namespace {

constexpr std::uint32_t kKind = storage::fourcc("BM25");
constexpr std::size_t kAnalysisBatch = 4096;

// Lucene SmallFloat.longToInt4 / int4ToLong: 3 mantissa bits plus an exponent, exact below 8.
std::uint32_t long_to_int4(std::uint64_t i) noexcept {
    const int num_bits = 64 - std::countl_zero(i);
    if (num_bits < 4) return static_cast<std::uint32_t>(i);
    const int shift = num_bits - 4;
    std::uint32_t encoded = static_cast<std::uint32_t>(i >> shift) & 0x07u;
    encoded |= static_cast<std::uint32_t>(shift + 1) << 3;
    return encoded;
}

std::uint64_t int4_to_long(std::uint32_t i) noexcept {
    const std::uint64_t bits = i & 0x07u;
    const int shift = static_cast<int>(i >> 3) - 1;
    return shift == -1 ? bits : (bits | 0x08u) << shift;
}

// 255 - longToInt4(Integer.MAX_VALUE): lengths below this are stored exactly.
const std::uint32_t kNumFreeValues = 255 - long_to_int4(0x7FFFFFFFu);

}  // namespace

std::uint8_t encode_norm(std::uint32_t length) noexcept {
    if (length < kNumFreeValues) return static_cast<std::uint8_t>(length);
    return static_cast<std::uint8_t>(kNumFreeValues + long_to_int4(length - kNumFreeValues));
}

std::uint32_t decode_norm(std::uint8_t norm) noexcept {
    if (norm < kNumFreeValues) return norm;
    return static_cast<std::uint32_t>(kNumFreeValues + int4_to_long(norm - kNumFreeValues));
}

std::string_view Bm25Index::doc_id(DocIndex doc) const noexcept {
    if (doc + 1 >= doc_offsets_.size()) return {};
    return std::string_view(doc_blob_).substr(doc_offsets_[doc], doc_offsets_[doc + 1] - doc_offsets_[doc]);
}

void Bm25Index::index_terms() {
    const std::uint32_t n = num_terms();
    std::size_t cap = 16;
    while (cap < 2 * static_cast<std::size_t>(n)) cap *= 2;
    term_slots_.assign(cap, kTerminated);
    const std::size_t mask = cap - 1;
    for (TermId id = 0; id < n; ++id) {
        std::size_t h = std::hash<std::string_view>{}(term(id)) & mask;
        while (term_slots_[h] != kTerminated) h = (h + 1) & mask;
        term_slots_[h] = id;
    }
}

TermId Bm25Index::find_term(std::string_view t) const noexcept {
    if (term_slots_.empty()) return kTerminated;
    const std::size_t mask = term_slots_.size() - 1;
    for (std::size_t h = std::hash<std::string_view>{}(t) & mask;; h = (h + 1) & mask) {
        const TermId id = term_slots_[h];
        if (id == kTerminated) return kTerminated;
        if (term(id) == t) return id;
    }
}

float bm25_idf(std::uint64_t doc_freq, std::uint64_t doc_count) noexcept {
    const double df = static_cast<double>(doc_freq);
    const double n = static_cast<double>(doc_count);
    return static_cast<float>(std::log(1.0 + (n - df + 0.5) / (df + 0.5)));
}

Bm25QueryStats Bm25QueryStats::for_terms(std::span<const std::string> terms) {
    Bm25QueryStats q;
    for (const std::string& t : terms) {
        const auto it = std::find(q.terms.begin(), q.terms.end(), t);
        if (it != q.terms.end()) {
            q.boosts[static_cast<std::size_t>(it - q.terms.begin())] += 1.0f;
        } else {
            q.terms.push_back(t);
            q.boosts.push_back(1.0f);
        }
    }
    q.doc_freq.assign(q.terms.size(), 0);
    return q;
}

float Bm25Index::idf(TermId term) const noexcept {
    return bm25_idf(postings_.term_info(term).doc_freq, docs_with_tokens_);
}

std::size_t Bm25Index::size_bytes() const noexcept {
    return doc_blob_.size() + doc_offsets_.size() * 8 + term_blob_.size() + term_offsets_.size() * 8 +
           norms_.size() + postings_.num_terms() * sizeof(TermInfo) + postings_.blocks().size() * sizeof(BlockInfo) +
           postings_.data_bytes() + term_slots_.size() * sizeof(TermId);
}

namespace {
// Lucene BM25Similarity: avgdl as a float of sumTotalTermFreq / docCount, the cache in floats.
double average_length_of(std::uint64_t total_tokens, std::uint64_t doc_count) {
    return doc_count == 0 ? 1.0 : static_cast<double>(total_tokens) / static_cast<double>(doc_count);
}
void fill_norm_table(const Bm25Params& params, double avgdl_d, float* out) {
    const float avgdl = static_cast<float>(avgdl_d);
    for (std::uint32_t i = 0; i < 256; ++i) {
        const float len = static_cast<float>(decode_norm(static_cast<std::uint8_t>(i)));
        out[i] = 1.0f / (params.k1 * ((1.0f - params.b) + params.b * len / avgdl));
    }
}
}  // namespace

void Bm25Index::make_norm_table() {
    avgdl_ = average_length_of(total_tokens_, docs_with_tokens_);
    fill_norm_table(params_, avgdl_, norm_inverse_.data());
}

void Bm25Index::document_tokens(text::Analyzer& analyzer, std::string_view title, std::string_view text,
                                std::vector<std::string>& out) {
    analyzer.analyze(title, out);
    analyzer.analyze(text, out);
}

Status Bm25Index::index_structures() {
    make_norm_table();
    const float* ni = norm_inverse_.data();
    const std::uint8_t* norms = norms_.data();
    postings_.compute_block_scores([ni, norms](TermId, DocIndex doc, float tf) {
        return 1.0f - 1.0f / (1.0f + tf * ni[norms[doc]]);
    });
    return ok_status();
}

Status Bm25Index::set_params(Bm25Params params) {
    if (!(params.k1 >= 0.0f) || !(params.b >= 0.0f && params.b <= 1.0f) || !std::isfinite(params.k1)) {
        return invalid_argument(fmt::format("bm25: k1 must be >= 0 and b in [0, 1] (got k1={}, b={})", params.k1,
                                            params.b));
    }
    params_ = params;
    return index_structures();
}

Result<Bm25Index> Bm25Index::build(std::span<const Bm25Document> docs, const BuildOptions& options) {
    return build(docs, options, std::span<const Part>{});
}

Result<Bm25Index> Bm25Index::build(std::span<const Bm25Document> docs, const BuildOptions& options,
                                   std::span<const Part> parts) {
    if (docs.size() >= kTerminated) return invalid_argument("bm25: too many documents for one index");
    std::size_t first = 0;  // documents before it come from the parts
    for (const Part& part : parts) {
        if (part.index == nullptr) return invalid_argument("bm25: a part without an index");
        if (!(part.index->analyzer_ == options.analyzer)) {
            return invalid_argument("bm25: a part must be analysed as the index built from it");
        }
        const std::uint32_t part_docs = part.index->num_docs();
        for (std::size_t i = 0; i < part.removed.size(); ++i) {
            if (part.removed[i] >= part_docs || (i > 0 && part.removed[i] <= part.removed[i - 1])) {
                return invalid_argument("bm25: the removed documents of a part must be ascending documents of it");
            }
        }
        first += part_docs - part.removed.size();
    }
    if (first > docs.size()) return invalid_argument("bm25: the parts' documents outnumber the build's");
    Bm25Index index;
    index.analyzer_ = options.analyzer;
    index.params_ = options.params;
    {
        std::unordered_set<std::string_view> seen;
        seen.reserve(docs.size());
        for (std::size_t i = 0; i < docs.size(); ++i) {
            if (docs[i].id.empty()) return invalid_argument(fmt::format("bm25: document {} has an empty id", i));
            if (!seen.insert(docs[i].id).second) {
                return invalid_argument(fmt::format("bm25: duplicate document id '{}'", docs[i].id));
            }
            index.doc_blob_.append(docs[i].id);
            index.doc_offsets_.push_back(index.doc_blob_.size());
        }
    }
    std::unordered_map<std::string, std::uint32_t> vocab;
    struct Triple {
        std::uint32_t term;
        DocIndex doc;
        std::uint32_t tf;
    };
    std::vector<Triple> triples;
    index.norms_.assign(docs.size(), 0);
    auto add_length = [&](DocIndex doc, std::uint64_t len) {
        index.total_tokens_ += len;
        if (len > 0) ++index.docs_with_tokens_;
        index.norms_[doc] = encode_norm(static_cast<std::uint32_t>(std::min<std::uint64_t>(len, 0x7FFFFFFF)));
    };
    {
        // The parts' postings, renumbered past their removed documents. A document's length is the sum
        // of its term counts (every token is one posting's count), so lengths, norms and the totals
        // come out as analysing the texts again gives them; a term only removed documents held is not
        // in the vocabulary, as it would not be.
        DocIndex offset = 0;
        std::vector<DocIndex> renumbered;
        std::vector<std::uint64_t> lengths;
        std::vector<DocIndex> list_docs;
        std::vector<float> list_tfs;
        for (const Part& part : parts) {
            const Bm25Index& from = *part.index;
            renumbered.assign(from.num_docs(), kTerminated);
            std::size_t r = 0;
            DocIndex next = 0;
            for (DocIndex d = 0; d < from.num_docs(); ++d) {
                if (r < part.removed.size() && part.removed[r] == d) {
                    ++r;
                } else {
                    renumbered[d] = offset + next++;
                }
            }
            lengths.assign(next, 0);
            for (TermId t = 0; t < from.num_terms(); ++t) {
                from.postings_.decode(t, list_docs, list_tfs);
                std::uint32_t id = kTerminated;
                for (std::size_t i = 0; i < list_docs.size(); ++i) {
                    const DocIndex doc = renumbered[list_docs[i]];
                    if (doc == kTerminated) continue;
                    if (id == kTerminated) {
                        id = vocab.try_emplace(std::string(from.term(t)), static_cast<std::uint32_t>(vocab.size())).first->second;
                    }
                    const auto tf = static_cast<std::uint32_t>(list_tfs[i]);
                    triples.push_back({id, doc, tf});
                    lengths[doc - offset] += tf;
                }
            }
            for (DocIndex d = 0; d < next; ++d) add_length(offset + d, lengths[d]);
            offset += next;
        }
        if (options.progress != nullptr) options.progress->add(first);
    }
    ThreadPool pool(resolve_threads(options.threads));
    std::vector<text::Analyzer> analyzers;
    for (std::size_t w = 0; w < pool.size(); ++w) {
        QUIVER_ASSIGN_OR_RETURN(auto a, text::Analyzer::create(options.analyzer));
        analyzers.push_back(std::move(a));
    }
    // Per document of a batch: its distinct terms with their counts, and its number of terms.
    std::vector<std::vector<std::pair<std::string, std::uint32_t>>> counted(std::min(kAnalysisBatch, docs.size() - first));
    std::vector<std::uint64_t> lengths(counted.size());
    for (std::size_t start = first; start < docs.size(); start += kAnalysisBatch) {
        const std::size_t n = std::min(kAnalysisBatch, docs.size() - start);
        pool.parallel_for(n, [&](std::size_t i, std::size_t worker) {
            const Bm25Document& d = docs[start + i];
            counted[i].clear();
            lengths[i] = 0;
            if (d.analysed == nullptr) {
                const std::string_view texts[] = {d.title, d.text};
                lengths[i] = analyzers[worker].analyze_counts(texts, counted[i]);
            }
            if (options.progress != nullptr) options.progress->add(1);
        }, 16);
        for (std::size_t i = 0; i < n; ++i) {
            const auto doc = static_cast<DocIndex>(start + i);
            if (const Bm25AnalysedText* a = docs[start + i].analysed; a != nullptr) {
                // Analysed already (a memtable's documents): each distinct term with its count.
                std::uint64_t len = 0;
                for (const auto& [term, count] : a->terms) {
                    if (count == 0) return invalid_argument(fmt::format("bm25: document {} counts term '{}' zero times", doc, term));
                    const auto it = vocab.try_emplace(term, static_cast<std::uint32_t>(vocab.size())).first;
                    triples.push_back({it->second, doc, count});
                    len += count;
                }
                if (len != a->length) {
                    return invalid_argument(fmt::format("bm25: document {}'s analysed length {} is not its term counts' sum {}",
                                                        doc, a->length, len));
                }
                add_length(doc, len);
                continue;
            }
            add_length(doc, lengths[i]);
            for (auto& [term, count] : counted[i]) {
                const auto it = vocab.try_emplace(std::move(term), static_cast<std::uint32_t>(vocab.size())).first;
                triples.push_back({it->second, doc, count});
            }
        }
    }
    // Term ids are ranks in byte-wise sorted order, so lookups are a binary search over the blob.
    std::vector<const std::string*> by_id(vocab.size());
    for (const auto& [term, id] : vocab) by_id[id] = &term;
    std::vector<std::uint32_t> order(vocab.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return *by_id[a] < *by_id[b]; });
    std::vector<std::uint32_t> rank(vocab.size());
    for (std::uint32_t r = 0; r < order.size(); ++r) {
        rank[order[r]] = r;
        index.term_blob_.append(*by_id[order[r]]);
        index.term_offsets_.push_back(index.term_blob_.size());
    }
    PostingsBuilder builder(WeightType::kFrequency);
    builder.set_num_docs(static_cast<std::uint32_t>(docs.size()));
    for (const Triple& t : triples) builder.add(rank[t.term], t.doc, static_cast<float>(t.tf));
    triples = {};
    QUIVER_ASSIGN_OR_RETURN(index.postings_, builder.build());
    QUIVER_TRY(index.set_params(options.params));
    index.index_terms();
    return index;
}

std::vector<QueryTerm> Bm25Index::make_query(std::span<const std::string> terms) const {
    std::vector<QueryTerm> q;
    for (const std::string& t : terms) {
        const TermId id = find_term(t);
        if (id == kTerminated) continue;
        auto it = std::find_if(q.begin(), q.end(), [id](const QueryTerm& x) { return x.term == id; });
        if (it != q.end()) {
            it->weight += 1.0f;  // counts for now; multiplied by idf below
        } else {
            q.push_back({id, 1.0f});
        }
    }
    for (QueryTerm& x : q) x.weight = x.weight * idf(x.term);
    return q;
}

std::vector<Bm25Hit> Bm25Index::search_terms(std::span<const std::string> terms, std::size_t k,
                                             TopKStats* stats) const {
    const std::vector<QueryTerm> q = make_query(terms);
    const auto top = search_top_k(postings_, q, k, Bm25Scorer{norms_, norm_inverse_}, stats);
    std::vector<Bm25Hit> hits(top.size());
    for (std::size_t i = 0; i < top.size(); ++i) hits[i] = {top[i].doc, top[i].score};
    return hits;
}

std::vector<Bm25Hit> Bm25Index::search_terms_exhaustive(std::span<const std::string> terms, std::size_t k) const {
    const std::vector<QueryTerm> q = make_query(terms);
    const auto top = search_exhaustive(postings_, q, k, Bm25Scorer{norms_, norm_inverse_});
    std::vector<Bm25Hit> hits(top.size());
    for (std::size_t i = 0; i < top.size(); ++i) hits[i] = {top[i].doc, top[i].score};
    return hits;
}

Bm25QueryStats Bm25Index::query_stats(std::span<const std::string> terms) const {
    Bm25QueryStats q = Bm25QueryStats::for_terms(terms);
    q.doc_count = docs_with_tokens_;
    q.total_tokens = total_tokens_;
    for (std::size_t i = 0; i < q.terms.size(); ++i) q.doc_freq[i] = doc_freq(find_term(q.terms[i]));
    return q;
}

std::vector<Bm25Hit> Bm25Index::search_with_stats(const Bm25QueryStats& stats, std::size_t k,
                                                  const AllowedDocs* allowed, TopKStats* top_k_stats,
                                                  bool exhaustive, const FilterWalkParams& walk,
                                                  float min_score) const {
    std::vector<QueryTerm> q;
    for (std::size_t i = 0; i < stats.terms.size(); ++i) {
        const TermId id = find_term(stats.terms[i]);
        if (id == kTerminated) continue;
        q.push_back({id, stats.boosts[i] * bm25_idf(stats.doc_freq[i], stats.doc_count)});
    }
    Bm25Scorer scorer{norms_, norm_inverse_};
    std::vector<float> table;
    if (stats.doc_count != docs_with_tokens_ || stats.total_tokens != total_tokens_) {
        table.resize(256);
        fill_norm_table(params_, average_length_of(stats.total_tokens, stats.doc_count), table.data());
        float scale = 1.0f;
        for (std::size_t i = 0; i < 256; ++i) {
            if (norm_inverse_[i] > 0.0f) scale = std::max(scale, table[i] / norm_inverse_[i]);
        }
        scorer = Bm25Scorer{norms_, table, scale};
    }
    const auto top = exhaustive ? search_exhaustive(postings_, q, k, scorer, allowed)
                                : search_top_k(postings_, q, k, scorer, top_k_stats, allowed, walk, min_score);
    std::vector<Bm25Hit> hits(top.size());
    for (std::size_t i = 0; i < top.size(); ++i) hits[i] = {top[i].doc, top[i].score};
    return hits;
}

// ---------------------------------------------------------------------------------------------
// Persistence

Status Bm25Index::save(const std::string& path) const {
    QUIVER_ASSIGN_OR_RETURN(auto out, storage::FileWriter::create(path, kKind, kFormatVersion));
    const std::uint32_t flags = (analyzer_.lowercase ? 1u : 0u) | (analyzer_.english_possessive ? 2u : 0u);
    QUIVER_TRY(out.write_pod(flags));
    QUIVER_TRY(out.write_pod(static_cast<std::uint32_t>(analyzer_.stop_words)));
    QUIVER_TRY(out.write_pod(analyzer_.max_token_length));
    QUIVER_TRY(out.write_pod(params_.k1));
    QUIVER_TRY(out.write_pod(params_.b));
    QUIVER_TRY(out.write_pod(docs_with_tokens_));
    QUIVER_TRY(out.write_pod(total_tokens_));
    QUIVER_TRY(out.write_string(analyzer_.stemmer));
    QUIVER_TRY(out.align(8));
    QUIVER_TRY(out.write_pod(static_cast<std::uint64_t>(num_docs())));
    QUIVER_TRY(out.write_pod(static_cast<std::uint64_t>(num_terms())));
    QUIVER_TRY(out.write_span(std::span<const std::uint64_t>(doc_offsets_)));
    QUIVER_TRY(out.write_span(std::span<const std::uint64_t>(term_offsets_)));
    QUIVER_TRY(out.write_string(doc_blob_));
    QUIVER_TRY(out.write_string(term_blob_));
    QUIVER_TRY(out.write_span(std::span<const std::uint8_t>(norms_)));
    QUIVER_TRY(postings_.write(out));
    return out.finish();
}

namespace {
Status check_offsets(storage::BinaryReader& in, std::span<const std::uint64_t> offsets, std::size_t blob,
                     std::string_view what) {
    if (offsets.empty() || offsets.front() != 0 || offsets.back() != blob) {
        return in.corrupt(fmt::format("bm25: {} offsets do not span the {} blob", what, what));
    }
    for (std::size_t i = 1; i < offsets.size(); ++i) {
        if (offsets[i] < offsets[i - 1]) return in.corrupt(fmt::format("bm25: {} offsets decrease", what));
    }
    return ok_status();
}
}  // namespace

Result<Bm25Index> Bm25Index::open(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(auto mapped, storage::MappedFile::open(path));
    auto file = std::make_shared<const storage::MappedFile>(std::move(mapped));
    QUIVER_ASSIGN_OR_RETURN(auto in, storage::open_payload(*file, kKind, kFormatVersion));
    Bm25Index index;
    QUIVER_ASSIGN_OR_RETURN(const std::uint32_t flags, in.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(const std::uint32_t stop, in.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(index.analyzer_.max_token_length, in.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(index.params_.k1, in.read_pod<float>());
    QUIVER_ASSIGN_OR_RETURN(index.params_.b, in.read_pod<float>());
    QUIVER_ASSIGN_OR_RETURN(index.docs_with_tokens_, in.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(index.total_tokens_, in.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(index.analyzer_.stemmer, in.read_string(64));
    if (flags > 3 || stop > 1 || index.analyzer_.max_token_length == 0) return in.corrupt("bm25: bad analyzer settings");
    index.analyzer_.lowercase = (flags & 1u) != 0;
    index.analyzer_.english_possessive = (flags & 2u) != 0;
    index.analyzer_.stop_words = static_cast<text::StopWords>(stop);
    QUIVER_TRY(in.align(8));
    QUIVER_ASSIGN_OR_RETURN(const std::uint64_t num_docs, in.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(const std::uint64_t num_terms, in.read_pod<std::uint64_t>());
    if (num_docs >= kTerminated || num_terms >= kTerminated || num_docs + num_terms + 2 > in.remaining() / 8) {
        return in.corrupt("bm25: document or term count exceeds the file");
    }
    QUIVER_ASSIGN_OR_RETURN(auto doc_offsets, in.read_span<std::uint64_t>(num_docs + 1));
    QUIVER_ASSIGN_OR_RETURN(auto term_offsets, in.read_span<std::uint64_t>(num_terms + 1));
    QUIVER_ASSIGN_OR_RETURN(index.doc_blob_, in.read_string());
    QUIVER_ASSIGN_OR_RETURN(index.term_blob_, in.read_string());
    QUIVER_TRY(check_offsets(in, doc_offsets, index.doc_blob_.size(), "document id"));
    QUIVER_TRY(check_offsets(in, term_offsets, index.term_blob_.size(), "term"));
    index.doc_offsets_.assign(doc_offsets.begin(), doc_offsets.end());
    index.term_offsets_.assign(term_offsets.begin(), term_offsets.end());
    QUIVER_ASSIGN_OR_RETURN(auto norms, in.read_span<std::uint8_t>(num_docs));
    index.norms_.assign(norms.begin(), norms.end());
    QUIVER_ASSIGN_OR_RETURN(index.postings_, PostingStore::read(in, file));
    if (index.postings_.num_docs() != num_docs || index.postings_.num_terms() > num_terms ||
        index.postings_.weight_type() != WeightType::kFrequency || index.docs_with_tokens_ > num_docs) {
        return in.corrupt("bm25: postings do not match the document and term tables");
    }
    if (!text::Analyzer::create(index.analyzer_)) return in.corrupt("bm25: unknown stemmer in the file");
    QUIVER_TRY(index.set_params(index.params_).ok() ? ok_status() : Status(in.corrupt("bm25: bad k1/b")));
    index.index_terms();
    return index;
}

// ---------------------------------------------------------------------------------------------

Result<Bm25Searcher> Bm25Searcher::create(const Bm25Index& index) {
    QUIVER_ASSIGN_OR_RETURN(auto analyzer, text::Analyzer::create(index.analyzer_config()));
    return Bm25Searcher(index, std::move(analyzer));
}

std::vector<Bm25Hit> Bm25Searcher::search(std::string_view query, std::size_t k, TopKStats* stats) {
    terms_.clear();
    analyzer_.analyze(query, terms_);
    return index_->search_terms(terms_, k, stats);
}

}  // namespace quiver::sparse
