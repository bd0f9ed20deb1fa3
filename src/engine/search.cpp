// Reads: get by id and top-k search over a snapshot (BM25, vectors, sparse, multi-vector MaxSim; fusion in
// pipeline/fusion.cpp).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <span>
#include <unordered_map>

#include "engine/collection_state.h"
#include "engine/feedback.h"
#include "quiver/text/analyzer.h"

namespace quiver::engine {
namespace {

constexpr std::size_t kMaxK = 10000;  // deepest rank a scored query reaches (offset + k, search_after)
constexpr std::size_t kFusionDepth = 100;  // least depth of each clause's list when fusing

constexpr std::size_t kMaxChunkDepth = std::size_t{1} << 20;  // deepest chunk list of a chunked clause
// Least chunk depth of a sump clause: `quiver eval --chunking`'s default (3 x its 1,000 documents), so a
// sum does not depend on the page (offset + limit <= 1,000) and equals eval's.
constexpr std::size_t kSumPChunkDepth = 3000;

struct Hit {
    std::size_t seg;  // index into the snapshot
    std::uint32_t local;
    double score;
    std::int64_t chunk = -1;  // chunked clauses (text, vector): the document's best chunk
};

// What each segment may return: its live documents and, with a filter, those matching it (one bitmap
// then, kept in `filter_bits`). Walks skip the rest inside the index (no over-fetch). The evaluation
// is charged to the request's `budget`.
Result<std::vector<AllowedDocs>> allowed_docs(const Snapshot& snap, const Filter* filter, std::vector<Bitmap>& filter_bits,
                                              FilterBudget& budget, SearchExplain* explain) {
    std::vector<AllowedDocs> allowed(snap.segs.size());
    filter_bits.clear();
    filter_bits.reserve(filter != nullptr ? snap.segs.size() : 0);
    FilterEvalStats stats;
    for (std::size_t si = 0; si < snap.segs.size(); ++si) {
        allowed[si] = AllowedDocs::of(&snap.segs[si].deleted);
        if (filter != nullptr) {
            QUIVER_ASSIGN_OR_RETURN(Bitmap bits, snap.segs[si].seg->matching(*filter, budget, &stats));
            filter_bits.push_back(std::move(bits));
            if (allowed[si].deleted != nullptr) filter_bits.back().subtract(*allowed[si].deleted);
            allowed[si] = {nullptr, &filter_bits.back()};
            if (explain != nullptr) explain->filter_matches += filter_bits.back().cardinality();
        }
    }
    if (explain != nullptr) {
        explain->filtered = filter != nullptr;
        explain->index_lookups = stats.index_lookups;
        explain->docs_scanned = stats.docs_scanned;
        explain->filter_work = budget.used();
    }
    return allowed;
}

// The explain strategy of a text or sparse posting walk.
const char* walk_strategy(sparse::FilterWalk w) {
    switch (w) {
        case sparse::FilterWalk::kBitmap: return "posting_bitmap";
        case sparse::FilterWalk::kSeek: return "posting_walk_seek";
        case sparse::FilterWalk::kMask: return "posting_walk_mask";
        default: return "unfiltered";
    }
}
const char* walk_reason(sparse::FilterWalk w) {
    switch (w) {
        case sparse::FilterWalk::kBitmap:
            return "few matches for the query's postings: the filter's members are scored directly (bitmap-driven)";
        case sparse::FilterWalk::kSeek:
            return "selective filter: the posting walk seeks from each rejected candidate to the filter's next member";
        case sparse::FilterWalk::kMask:
            return "permissive filter: the filter bitmap masks candidates inside the posting walk";
        default: return "no filter";
    }
}

// Collection-wide BM25 statistics of `terms` on text field `field` (Lucene's CollectionStatistics and
// TermStatistics): summed over the snapshot's segments and memtable prefix, live documents only, so a document's score
// does not depend on how the collection is segmented or on deletes awaiting a merge.
Result<sparse::Bm25QueryStats> collection_text_stats(const Snapshot& snap, const Schema& schema, std::size_t field,
                                                      std::span<const std::string> terms) {
    auto stats = sparse::Bm25QueryStats::for_terms(terms);
    std::vector<sparse::TermId> ids;
    std::vector<std::uint32_t> dead_df;
    for (const auto& s : snap.segs) {
        const sparse::Bm25Index* bm = s.seg->text_index(field);
        if (bm == nullptr) continue;
        ids.resize(stats.terms.size());
        for (std::size_t t = 0; t < stats.terms.size(); ++t) ids[t] = bm->find_term(stats.terms[t]);
        DeadTextCounts dead;
        dead_df.assign(ids.size(), 0);
        if (s.dead) QUIVER_TRY(s.dead->text_stats(schema, field, ids, dead, dead_df));
        stats.doc_count += bm->docs_with_tokens() - dead.docs_with_tokens;
        stats.total_tokens += bm->total_tokens() - dead.tokens;
        for (std::size_t t = 0; t < stats.terms.size(); ++t) {
            if (ids[t] == sparse::kTerminated) continue;
            stats.doc_freq[t] += bm->doc_freq(ids[t]) - dead_df[t];
        }
    }
    if (snap.mem) snap.mem->add_text_stats(field, stats, snap.mem_n, snap.seq);
    return stats;
}

// Receives one source's best-first chunk hits (ScoredDoc::chunk set) of a chunked clause.
using ChunkSink = std::function<void(std::size_t source, const std::vector<ScoredDoc>& found)>;

// A chunked clause (text or vector) as documents: the best 3 x depth chunks (`quiver eval --chunking`'s
// rule; sump at least kSumPChunkDepth) aggregated, four times deeper while fewer than `depth` documents
// come out and chunks were left (so a page has `limit` documents when that many match). Maxp and firstp
// are then exact; sump sums the retrieved chunks (docs/collections.md). `fetch_chunks(fetch, add)` asks
// every source for its best `fetch` chunks. Sets *exhausted = false when chunks were left.
Result<std::vector<Hit>> aggregate_chunk_lists(const Snapshot& snap, pipeline::ChunkAggregation aggregation,
                                               std::size_t depth, bool* exhausted,
                                               const std::function<Status(std::size_t, const ChunkSink&)>& fetch_chunks) {
    auto by_chunk = [&](const Hit& a, const Hit& b) {
        if (a.score != b.score) return a.score > b.score;
        const std::string_view ia = snap.doc_id(a.seg, a.local);
        const std::string_view ib = snap.doc_id(b.seg, b.local);
        return ia != ib ? ia < ib : a.chunk < b.chunk;
    };
    // `cdepth` chunks are aggregated: exactly the best cdepth in (score desc, parent id asc, chunk asc)
    // order. Sources are asked for `fetch` >= cdepth chunks, deeper while one was cut at a score tying
    // the cdepth-th (its unseen chunks might sort before it by id).
    std::size_t cdepth = std::min(kMaxChunkDepth, 3 * depth);
    if (aggregation == pipeline::ChunkAggregation::kSumP) cdepth = std::max(cdepth, kSumPChunkDepth);
    std::size_t fetch = cdepth;
    std::vector<Hit> hits;
    for (;;) {
        std::vector<Hit> chunks;
        bool source_cut = false;
        double source_floor = -std::numeric_limits<double>::infinity();
        QUIVER_TRY(fetch_chunks(fetch, [&](std::size_t source, const std::vector<ScoredDoc>& found) {
            for (const auto& d : found) chunks.push_back({source, d.local, d.score, d.chunk});
            if (!found.empty() && found.size() >= fetch) {
                source_cut = true;
                source_floor = std::max(source_floor, found.back().score);
            }
        }));
        std::sort(chunks.begin(), chunks.end(), by_chunk);
        const bool more = source_cut || chunks.size() > cdepth;  // chunks beyond the best cdepth
        if (source_cut && !(chunks[cdepth - 1].score > source_floor) && fetch < kMaxChunkDepth) {
            fetch = std::min(kMaxChunkDepth, 4 * fetch);
            continue;
        }
        if (chunks.size() > cdepth) chunks.resize(cdepth);
        // Documents numbered in order of first appearance; aggregated in the chunks' order.
        std::unordered_map<std::uint64_t, std::uint32_t> number;
        std::vector<std::pair<std::size_t, std::uint32_t>> parent;
        std::vector<pipeline::ChunkHit> chunk_hits;
        chunk_hits.reserve(chunks.size());
        for (const Hit& h : chunks) {
            const std::uint64_t key = (static_cast<std::uint64_t>(h.seg) << 32) | h.local;
            const auto [it, added] = number.emplace(key, static_cast<std::uint32_t>(parent.size()));
            if (added) parent.emplace_back(h.seg, h.local);
            chunk_hits.push_back({it->second, static_cast<std::uint32_t>(h.chunk), h.score});
        }
        hits.clear();
        for (const auto& d : pipeline::aggregate_chunks(chunk_hits, aggregation)) {
            hits.push_back({parent[d.doc].first, parent[d.doc].second, d.score, d.chunk});
        }
        if (hits.size() >= depth || !more || cdepth == kMaxChunkDepth) {
            // The documents are an exact prefix of the aggregated order (maxp and firstp: of the order
            // over all chunks; sump: by definition), so no tie needs a wider window.
            if (more) *exhausted = false;
            return hits;
        }
        cdepth = std::min(kMaxChunkDepth, 4 * cdepth);
        fetch = std::max(fetch, cdepth);
    }
}

// The score a document needs to enter the best `depth` of `hits` (0 while fewer are held); hits
// scoring below it are dropped (ties at it stay, for the id order applied later). Passed to the next
// posting walk as its min_score, so segments searched later prune from their first posting.
double depth_floor(std::vector<Hit>& hits, std::size_t depth) {
    if (depth == 0 || hits.size() < depth) return 0.0;
    std::vector<double> scores(hits.size());
    for (std::size_t i = 0; i < hits.size(); ++i) scores[i] = hits[i].score;
    std::nth_element(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(depth - 1), scores.end(),
                     std::greater<>());
    const double floor = scores[depth - 1];
    std::erase_if(hits, [floor](const Hit& h) { return h.score < floor; });
    return floor;
}

// Segment indices, most documents first: the walks that set the best floor early go first.
std::vector<std::size_t> largest_first(const Snapshot& snap) {
    std::vector<std::size_t> order(snap.segs.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return snap.segs[a].seg->size() > snap.segs[b].seg->size(); });
    return order;
}

// Appends one source's best-first hits; a source that filled `depth` was cut at its last score.
void take(std::size_t source, const std::vector<ScoredDoc>& found, std::size_t depth, std::vector<Hit>& hits,
          double* cut_floor) {
    for (const auto& d : found) hits.push_back({source, d.local, d.score});
    if (!found.empty() && found.size() >= depth) *cut_floor = std::max(*cut_floor, found.back().score);
}

}  // namespace

Result<Document> Collection::get(const std::string& id) const {
    if (!valid_document_id(id)) return invalid_argument("document id must be 1-512 bytes of valid UTF-8");
    const auto snap = impl_->current();
    if (snap->mem) {
        if (const auto local = snap->mem->find(id, snap->mem_n, snap->seq)) return snap->mem->document(*local);
    }
    for (auto it = snap->segs.rbegin(); it != snap->segs.rend(); ++it) {
        const auto local = it->seg->find(id);
        if (local && !it->deleted.contains(*local)) return it->seg->document(*local);
    }
    return not_found("document '" + id + "' not found");
}

Result<std::vector<SearchHit>> Collection::search(const SearchRequest& request) const {
    const auto snap = impl_->current();
    return search_snapshot(*impl_, *snap, request);
}

Result<std::vector<SearchHit>> Collection::search(const SearchRequest& request, SearchExplain* explain) const {
    const auto snap = impl_->current();
    if (explain != nullptr) *explain = SearchExplain{};
    return search_snapshot(*impl_, *snap, request, explain);
}

Result<std::vector<std::vector<SearchHit>>> Collection::search_batch(const std::vector<SearchRequest>& requests) const {
    const auto snap = impl_->current();
    std::vector<std::vector<SearchHit>> out;
    out.reserve(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
        auto hits = search_snapshot(*impl_, *snap, requests[i]);
        if (!hits) return Error(hits.error().code(), "search " + std::to_string(i) + ": " + hits.error().message());
        out.push_back(std::move(hits).value());
    }
    return out;
}

Result<std::vector<SearchHit>> search_snapshot(const Collection::Impl& impl, const Snapshot& snapshot,
                                               const SearchRequest& request, SearchExplain* explain) {
    const Schema& schema = impl.schema;
    if (request.k == 0 || request.k > kMaxK) return invalid_argument("k must be 1.." + std::to_string(kMaxK));
    if (request.filter) QUIVER_TRY(request.filter->validate(schema));
    if (request.return_fields) {
        for (const auto& f : *request.return_fields) {
            if (schema.find(f) == nullptr) return invalid_argument("unknown return field '" + f + "'");
        }
    }
    if (request.score_threshold && !std::isfinite(*request.score_threshold)) {
        return invalid_argument("score_threshold must be finite");
    }
    if (request.search_after && !std::isfinite(request.search_after->score)) {
        return invalid_argument("search_after needs a finite score");
    }
    if (request.cutoff) {
        if (request.clauses.empty()) return invalid_argument("a calibrated cutoff needs a scored query (a clause)");
        QUIVER_TRY(pipeline::validate_calibration(*request.cutoff));
    }
    if (request.min_relevance) {
        if (!request.cutoff) return invalid_argument("min_relevance needs a calibrated cutoff (\"cutoff\")");
        if (!(*request.min_relevance >= 0.0 && *request.min_relevance <= 1.0)) {
            return invalid_argument("min_relevance must be a probability in [0, 1]");
        }
    }
    const Filter* filter = request.filter ? &*request.filter : nullptr;
    auto materialise = [&](std::size_t source, std::uint32_t local, double score) -> Result<SearchHit> {
        SearchHit sh;
        sh.id = std::string(snapshot.doc_id(source, local));
        sh.score = score;
        if (!request.return_fields) {
            QUIVER_ASSIGN_OR_RETURN(sh.document, snapshot.document(source, local));
        } else if (!request.return_fields->empty()) {
            QUIVER_ASSIGN_OR_RETURN(sh.document, snapshot.document(source, local, *request.return_fields));
        }
        sh.document.id = sh.id;
        return sh;
    };
    if (request.clauses.empty()) {  // filter-only: every match scores 1, in id order
        std::vector<SearchHit> out;
        if (request.score_threshold && *request.score_threshold > 1.0) return out;
        std::string after;
        if (request.search_after) {
            if (request.search_after->score > 1.0) {
                after.clear();
            } else if (request.search_after->score < 1.0) {
                return out;
            } else {
                after = request.search_after->id;
            }
        }
        FilterBudget budget(impl.options.filter_budget);
        const auto refs = live_in_id_order(snapshot, filter, after, request.offset + request.k, &budget);
        QUIVER_TRY(budget.status());
        if (explain != nullptr) explain->filter_work = budget.used();
        for (std::size_t i = request.offset; i < refs.size(); ++i) {
            QUIVER_ASSIGN_OR_RETURN(auto sh, materialise(refs[i].seg, refs[i].local, 1.0));
            out.push_back(std::move(sh));
        }
        return out;
    }
    if (request.offset + request.k > kMaxK) {
        return invalid_argument("offset + limit must be at most " + std::to_string(kMaxK) +
                                " (page deeper with search_after, or scroll)");
    }
    FusionSpec fusion = request.fusion;
    fusion.weights.clear();
    for (const auto& c : request.clauses) fusion.weights.push_back(c.weight);
    QUIVER_TRY(validate_fusion(fusion, request.clauses.size()));
    std::vector<std::size_t> field_index;
    std::vector<std::pair<const QueryClause*, std::vector<float>>> embedded;  // text queries on vector fields
    std::vector<std::pair<const QueryClause*, SparseTerms>> embedded_sparse;  // text queries on SPLADE fields
    std::vector<std::pair<const QueryClause*, TokenVectors>> embedded_tokens;  // text queries on ColBERT fields
    for (const auto& c : request.clauses) {
        const FieldSpec* f = schema.find(c.field);
        if (f == nullptr) return invalid_argument("unknown field '" + c.field + "'");
        const std::size_t fi = static_cast<std::size_t>(f - schema.fields.data());
        if (f->type != FieldType::kMultiVector && c.tokens.rows() > 0) {
            return invalid_argument("field '" + c.field + "' is " + std::string(to_string(f->type)) +
                                    ": token vectors query multi_vector fields");
        }
        if (f->type == FieldType::kText) {
            if (!f->indexed) return invalid_argument("field '" + c.field + "' is not indexed");
            if (!c.vector.empty() || !c.sparse.empty()) {
                return invalid_argument("field '" + c.field + "' is text: give a query text");
            }
        } else if (f->type == FieldType::kMultiVector) {
            if (!c.vector.empty() || !c.sparse.empty()) {
                return invalid_argument("field '" + c.field + "' is multi_vector: give query token vectors or text");
            }
            if (c.tokens.values.empty() && !c.text.empty() && impl.encoders[fi]) {
                QUIVER_ASSIGN_OR_RETURN(auto tv, embed_query_tokens(*impl.encoders[fi], *f, c.text));
                embedded_tokens.emplace_back(&c, std::move(tv));
                field_index.push_back(fi);
                continue;
            }
            if (c.tokens.values.empty()) {
                return invalid_argument("field '" + c.field + "' has no encoder: give query token vectors");
            }
            if (c.tokens.dim != f->dim || c.tokens.values.size() % f->dim != 0) {
                return invalid_argument("query token vectors for '" + c.field + "' have dimension " +
                                        std::to_string(c.tokens.dim) + ", schema says " + std::to_string(f->dim));
            }
            if (c.tokens.rows() > kMaxTokenVectors) {
                return invalid_argument("query for '" + c.field + "' has more than " + std::to_string(kMaxTokenVectors) +
                                        " token vectors");
            }
            for (float x : c.tokens.values) {
                if (!std::isfinite(x)) return invalid_argument("query token vectors for '" + c.field + "' are not finite");
            }
        } else if (f->type == FieldType::kVector) {
            if (c.vector.empty() && !c.text.empty() && impl.encoders[static_cast<std::size_t>(f - schema.fields.data())]) {
                auto& enc = *impl.encoders[static_cast<std::size_t>(f - schema.fields.data())];
                QUIVER_ASSIGN_OR_RETURN(auto v, embed_query(enc, *f, c.text));
                embedded.emplace_back(&c, std::move(v));
                field_index.push_back(static_cast<std::size_t>(f - schema.fields.data()));
                continue;
            }
            if (c.vector.empty()) {
                return invalid_argument("field '" + c.field + "' has no encoder: give a query vector");
            }
            if (c.vector.size() != f->dim) {
                return invalid_argument("query vector for '" + c.field + "' has dimension " +
                                        std::to_string(c.vector.size()) + ", schema says " + std::to_string(f->dim));
            }
            for (float x : c.vector) {
                if (!std::isfinite(x)) return invalid_argument("query vector for '" + c.field + "' is not finite");
            }
            if (!index::norm_in_range(c.vector, f->metric)) {
                return invalid_argument("query vector for '" + c.field + "' has a norm above 9.2e18 (distances would overflow)");
            }
        } else if (f->type == FieldType::kSparse) {
            if (c.sparse.empty() && !c.text.empty() && impl.encoders[fi]) {
                QUIVER_ASSIGN_OR_RETURN(auto terms, embed_query_sparse(*impl.encoders[fi], *f, c.text));
                embedded_sparse.emplace_back(&c, std::move(terms));
                field_index.push_back(fi);
                continue;
            }
            if (c.sparse.empty()) return invalid_argument("field '" + c.field + "' is sparse: give query terms");
            for (const auto& [term, w] : c.sparse) {
                if (!std::isfinite(w) || w < 0.0f) {
                    return invalid_argument("query term '" + term + "' needs a finite weight >= 0");
                }
            }
        } else {
            return invalid_argument("field '" + c.field + "' is an attribute; use it in a filter");
        }
        field_index.push_back(static_cast<std::size_t>(f - schema.fields.data()));
    }
    // Pseudo-relevance feedback: a first retrieval of each such clause (same snapshot and filter), then
    // its expanded text query or moved query vector replaces the clause's query below.
    std::vector<std::optional<sparse::Bm25QueryStats>> expanded(request.clauses.size());
    for (std::size_t ci = 0; ci < request.clauses.size(); ++ci) {
        const QueryClause& c = request.clauses[ci];
        if (!c.prf) continue;
        const FieldSpec& f = schema.fields[field_index[ci]];
        QUIVER_TRY(pipeline::validate_prf(*c.prf));
        if (f.type == FieldType::kSparse || f.type == FieldType::kMultiVector) {
            return invalid_argument("prf applies to text and vector fields; '" + c.field + "' is " +
                                    std::string(to_string(f.type)));
        }
        if (chunked_vectors(f)) {
            return invalid_argument("prf does not apply to chunked vector field '" + c.field +
                                    "' (its documents have one vector per chunk)");
        }
        if (f.type == FieldType::kVector && c.prf->method != pipeline::PrfMethod::kRocchio) {
            return invalid_argument("prf on vector field '" + c.field + "' takes method rocchio");
        }
        SearchRequest inner;
        QueryClause first_clause = c;
        first_clause.prf.reset();
        first_clause.weight = 1.0;
        for (const auto& [clause, v] : embedded) {
            if (clause == &c) {
                first_clause.vector = v;
                first_clause.text.clear();
            }
        }
        inner.clauses.push_back(std::move(first_clause));
        inner.k = c.prf->fb_docs;
        inner.filter = request.filter;
        inner.ef = request.ef;
        inner.return_fields = std::vector<std::string>{};
        QUIVER_ASSIGN_OR_RETURN(const auto first_hits, search_snapshot(impl, snapshot, inner));
        std::vector<FeedbackHit> first;
        for (const SearchHit& h : first_hits) {
            if (const auto ref = find_live(snapshot, h.id)) first.push_back({*ref, h.score});
        }
        if (f.type == FieldType::kText) {
            QUIVER_ASSIGN_OR_RETURN(auto analyzer, text::Analyzer::create(text::AnalyzerConfig{}));
            const std::vector<std::string> query_terms = analyzer.analyze(c.text);
            const std::size_t fi = field_index[ci];
            const TextStatsFn stats_of = [&](std::span<const std::string> terms) {
                return collection_text_stats(snapshot, schema, fi, terms);
            };
            QUIVER_ASSIGN_OR_RETURN(auto stats, expanded_text_query(snapshot, f, query_terms, first, *c.prf, stats_of));
            expanded[ci] = std::move(stats);
        } else {
            std::span<const float> q = c.vector;
            for (const auto& [clause, v] : embedded) {
                if (clause == &c) q = v;
            }
            QUIVER_ASSIGN_OR_RETURN(auto moved, rocchio_query(snapshot, f, q, first, *c.prf));
            embedded.emplace_back(&c, std::move(moved));  // the last entry of a clause is its query
        }
    }
    const Snapshot* snap = &snapshot;
    const std::size_t mem_index = snap->segs.size();  // the memtable's source index (Snapshot)
    std::vector<Bitmap> filter_bits;
    FilterBudget budget(impl.options.filter_budget);
    QUIVER_ASSIGN_OR_RETURN(const std::vector<AllowedDocs> allowed, allowed_docs(*snap, filter, filter_bits, budget, explain));
    // The memtable tests the whole filter per document, once per clause: charged up front.
    if (filter != nullptr && snap->mem && snap->mem_n > 0) {
        budget.charge(static_cast<std::uint64_t>(snap->mem_n) * filter_nodes(*filter) * request.clauses.size());
        QUIVER_TRY(budget.status());
        if (explain != nullptr) explain->filter_work = budget.used();
    }
    // Records how one source answered one clause (explain only).
    auto note = [&](const std::string& field, std::size_t si, const char* strategy, const index::FilterPlan* plan,
                    const sparse::TopKStats* walk = nullptr) {
        if (explain == nullptr) return;
        SearchExplain::Plan p;
        p.field = field;
        const bool mem = si == mem_index;
        p.source = mem ? "memtable" : "segment " + std::to_string(snap->segs[si].seg->id());
        p.size = mem ? snap->mem_n : snap->segs[si].seg->size();
        if (plan != nullptr) {
            p.strategy = std::string(index::to_string(plan->strategy));
            p.matches = plan->matches;
            p.size = plan->size;
            p.selectivity = plan->selectivity;
            p.reason = plan->reason;
            p.fallback = plan->fallback;
        } else {
            p.strategy = strategy;
            p.matches = mem || allowed[si].filter == nullptr ? p.size : allowed[si].filter->cardinality();
            p.selectivity = p.size == 0 ? 1.0 : static_cast<double>(p.matches) / static_cast<double>(p.size);
            p.reason = mem ? "the memtable is searched exactly, testing the filter per document"
                       : filter == nullptr ? "no filter"
                       : walk != nullptr   ? walk_reason(walk->walk)
                                           : "the filter bitmap masks candidates inside the posting walk (no top-k widening)";
            if (mem) p.matches = 0;
            if (!mem && p.strategy == "maxsim_exact") {
                p.reason = "exact MaxSim over every allowed document";
            } else if (!mem && p.strategy == "muvera_rerank") {
                p.reason = "MUVERA encodings' graph walks allowed documents; candidates re-ranked by exact MaxSim";
            } else if (!mem && p.strategy == "muvera_blocks") {
                p.reason = "the query's MUVERA partition blocks scanned over allowed documents; candidates re-ranked by "
                           "exact MaxSim";
            }
        }
        explain->plans.push_back(std::move(p));
    };
    // Score descending, then id ascending: the order of a clause's list (so fused ranks of tied hits do
    // not depend on segmentation) and of the page (stable across snapshots, for search_after).
    auto by_score_then_id = [&](const Hit& a, const Hit& b) {
        if (a.score != b.score) return a.score > b.score;
        return snap->doc_id(a.seg, a.local) < snap->doc_id(b.seg, b.local);
    };
    // One retrieval at `depth` per clause, fused; *exhausted = no list was cut at `depth`. *cut_floor =
    // the highest score at which a source's list was cut: documents not retrieved score at most that,
    // so a page boundary above it is exact, and one at or below it may miss ties (ids not yet seen).
    auto retrieve = [&](std::size_t window, bool* exhausted, double* cut_floor) -> Result<std::vector<Hit>> {
        const std::size_t depth = request.clauses.size() == 1 ? window : std::max(window, kFusionDepth);
        // A single clause asks every source for one hit beyond the page: a source's list cut there is
        // cut below its depth-th score, so an untied page boundary is exact (boundary_exact below)
        // instead of tying the cut and costing a second, 4x deeper retrieval. Sources score documents
        // bit-identically whatever the depth (sparse/maxscore.h), so the deeper list cannot reorder ties.
        const std::size_t fetch = request.clauses.size() == 1 ? depth + 1 : depth;
        if (explain != nullptr) ++explain->retrievals;
        *exhausted = true;
        *cut_floor = -std::numeric_limits<double>::infinity();
        if (explain != nullptr) explain->plans.clear();
        std::vector<std::vector<Hit>> lists;
        std::vector<std::string> terms;
        for (std::size_t ci = 0; ci < request.clauses.size(); ++ci) {
            const QueryClause& c = request.clauses[ci];
            const FieldSpec& f = schema.fields[field_index[ci]];
            std::vector<Hit> hits;
            if (f.type == FieldType::kText && f.chunking) {
                // Chunks, aggregated to documents (aggregate_chunk_lists).
                sparse::Bm25QueryStats stats;
                if (expanded[ci]) {
                    stats = *expanded[ci];
                } else {
                    QUIVER_ASSIGN_OR_RETURN(auto analyzer, text::Analyzer::create(text::AnalyzerConfig{}));
                    terms.clear();
                    analyzer.analyze(c.text, terms);
                    QUIVER_ASSIGN_OR_RETURN(stats, collection_text_stats(*snap, schema, field_index[ci], terms));
                }
                std::vector<sparse::TopKStats> walks(snap->segs.size());
                const auto fetch_chunks = [&](std::size_t fetch, const ChunkSink& add) -> Status {
                    for (std::size_t si = 0; si < snap->segs.size(); ++si) {
                        walks[si] = {};
                        add(si, snap->segs[si].seg->search_text(field_index[ci], stats, fetch, allowed[si], &walks[si],
                                                                impl.options.posting_walk));
                    }
                    if (snap->mem) {
                        add(mem_index, snap->mem->search_text(field_index[ci], stats, fetch, snap->mem_n, snap->seq, filter));
                    }
                    return ok_status();
                };
                QUIVER_ASSIGN_OR_RETURN(hits, aggregate_chunk_lists(*snap, f.chunking->aggregation, depth, exhausted,
                                                                    fetch_chunks));
                for (std::size_t si = 0; si < snap->segs.size(); ++si) {
                    note(f.name, si, filter == nullptr ? "unfiltered" : walk_strategy(walks[si].walk), nullptr, &walks[si]);
                }
                if (snap->mem) note(f.name, mem_index, "exact", nullptr);
            } else if (chunked_vectors(f)) {
                // Chunk vectors, aggregated to documents as a chunked text clause's chunks. A chunk scores
                // its similarity: 1 - distance (the cosine or inner product; in float, as `quiver eval`'s
                // dense retriever scores) for cosine and ip fields, -distance for l2.
                const std::vector<float>* qv = &c.vector;
                for (const auto& [clause, v] : embedded) {
                    if (clause == &c) qv = &v;
                }
                auto similarity = [&](std::vector<ScoredDoc>& found) {
                    if (f.metric == simd::Metric::kL2) return;
                    for (ScoredDoc& d : found) d.score = static_cast<double>(1.0f - static_cast<float>(-d.score));
                };
                std::vector<index::FilterPlan> plans(snap->segs.size());
                const auto fetch_chunks = [&](std::size_t fetch, const ChunkSink& add) -> Status {
                    for (std::size_t si = 0; si < snap->segs.size(); ++si) {
                        plans[si] = {};
                        plans[si].strategy = index::FilterStrategy::kUnfiltered;
                        plans[si].reason = "no filter";
                        QUIVER_ASSIGN_OR_RETURN(auto found,
                                                snap->segs[si].seg->search_vector(field_index[ci], *qv, fetch, request.ef,
                                                                                  allowed[si], &plans[si],
                                                                                  impl.options.filter_planner));
                        similarity(found);
                        add(si, found);
                    }
                    if (snap->mem) {
                        auto found = snap->mem->search_vector(field_index[ci], *qv, fetch, snap->mem_n, snap->seq, filter);
                        similarity(found);
                        add(mem_index, found);
                    }
                    return ok_status();
                };
                QUIVER_ASSIGN_OR_RETURN(hits, aggregate_chunk_lists(*snap, f.chunking->aggregation, depth, exhausted,
                                                                    fetch_chunks));
                for (std::size_t si = 0; si < snap->segs.size(); ++si) {
                    if (allowed[si].filter != nullptr) {
                        note(f.name, si, "", &plans[si]);
                    } else {
                        note(f.name, si, "unfiltered", nullptr);
                    }
                }
                if (snap->mem) note(f.name, mem_index, "exact", nullptr);
            } else if (f.type == FieldType::kText) {
                sparse::Bm25QueryStats stats;
                if (expanded[ci]) {
                    stats = *expanded[ci];
                } else {
                    QUIVER_ASSIGN_OR_RETURN(auto analyzer, text::Analyzer::create(text::AnalyzerConfig{}));
                    terms.clear();
                    analyzer.analyze(c.text, terms);
                    QUIVER_ASSIGN_OR_RETURN(stats, collection_text_stats(*snap, schema, field_index[ci], terms));
                }
                std::vector<sparse::TopKStats> walks(snap->segs.size());
                for (const std::size_t si : largest_first(*snap)) {
                    const double floor = depth_floor(hits, depth);
                    take(si, snap->segs[si].seg->search_text(field_index[ci], stats, fetch, allowed[si], &walks[si],
                                                             impl.options.posting_walk, floor),
                         fetch, hits, cut_floor);
                }
                for (std::size_t si = 0; si < snap->segs.size(); ++si) {
                    note(f.name, si, filter == nullptr ? "unfiltered" : walk_strategy(walks[si].walk), nullptr, &walks[si]);
                }
                if (snap->mem) {
                    note(f.name, mem_index, "exact", nullptr);
                    take(mem_index, snap->mem->search_text(field_index[ci], stats, fetch, snap->mem_n, snap->seq, filter),
                         fetch, hits, cut_floor);
                }
            } else if (f.type == FieldType::kSparse) {
                const SparseTerms* qs = &c.sparse;
                for (const auto& [clause, terms] : embedded_sparse) {
                    if (clause == &c) qs = &terms;
                }
                std::vector<sparse::TopKStats> walks(snap->segs.size());
                for (const std::size_t si : largest_first(*snap)) {
                    const double floor = depth_floor(hits, depth);
                    take(si, snap->segs[si].seg->search_sparse(field_index[ci], *qs, fetch, allowed[si], &walks[si],
                                                               impl.options.posting_walk, floor),
                         fetch, hits, cut_floor);
                }
                for (std::size_t si = 0; si < snap->segs.size(); ++si) {
                    note(f.name, si, filter == nullptr ? "unfiltered" : walk_strategy(walks[si].walk), nullptr, &walks[si]);
                }
                if (snap->mem) {
                    note(f.name, mem_index, "exact", nullptr);
                    take(mem_index, snap->mem->search_sparse(field_index[ci], *qs, fetch, snap->mem_n, snap->seq, filter),
                         fetch, hits, cut_floor);
                }
            } else if (f.type == FieldType::kMultiVector) {
                const TokenVectors* qt = &c.tokens;
                for (const auto& [clause, tv] : embedded_tokens) {
                    if (clause == &c) qt = &tv;
                }
                const MatrixView<float> q{qt->values.data(), qt->rows(), qt->dim};
                // One hit beyond depth per source, as every clause (the re-rank has scored it anyway).
                const std::size_t mv_depth = depth + 1;
                for (std::size_t si = 0; si < snap->segs.size(); ++si) {
                    const char* method = "maxsim_exact";
                    QUIVER_ASSIGN_OR_RETURN(auto found, snap->segs[si].seg->search_multivector(field_index[ci], q, mv_depth,
                                                                                                request.ef, allowed[si],
                                                                                                &method));
                    take(si, found, mv_depth, hits, cut_floor);
                    note(f.name, si, method, nullptr);
                }
                if (snap->mem) {
                    note(f.name, mem_index, "exact", nullptr);
                    take(mem_index,
                         snap->mem->search_multivector(field_index[ci], q, mv_depth, snap->mem_n, snap->seq, filter),
                         mv_depth, hits, cut_floor);
                }
            } else {
                const std::vector<float>* qv = &c.vector;
                for (const auto& [clause, v] : embedded) {
                    if (clause == &c) qv = &v;
                }
                std::vector<index::FilterPlan> plans(snap->segs.size());
                for (const std::size_t si : largest_first(*snap)) {
                    plans[si].strategy = index::FilterStrategy::kUnfiltered;
                    plans[si].reason = "no filter";
                    // The best `depth` so far bar the next walk (CollectionOptions::vector_segment_bar).
                    // Scores are -distance, of either sign: no bar until `depth` hits are held.
                    const double floor = impl.options.vector_segment_bar && hits.size() >= depth
                                             ? depth_floor(hits, depth)
                                             : -std::numeric_limits<double>::infinity();
                    QUIVER_ASSIGN_OR_RETURN(auto found, snap->segs[si].seg->search_vector(field_index[ci], *qv, fetch,
                                                                                           request.ef, allowed[si],
                                                                                           &plans[si],
                                                                                           impl.options.filter_planner,
                                                                                           floor));
                    take(si, found, fetch, hits, cut_floor);
                }
                for (std::size_t si = 0; si < snap->segs.size(); ++si) {  // explain: segment order
                    if (allowed[si].filter != nullptr) {
                        note(f.name, si, "", &plans[si]);
                    } else {
                        note(f.name, si, "unfiltered", nullptr);
                    }
                }
                if (snap->mem) {
                    note(f.name, mem_index, "exact", nullptr);
                    take(mem_index, snap->mem->search_vector(field_index[ci], *qv, fetch, snap->mem_n, snap->seq, filter),
                         fetch, hits, cut_floor);
                }
            }
            std::sort(hits.begin(), hits.end(), by_score_then_id);
            if (hits.size() >= depth) *exhausted = false;
            if (hits.size() > depth) hits.resize(depth);
            lists.push_back(std::move(hits));
        }
        std::vector<Hit> final_hits;
        if (lists.size() == 1) {
            final_hits = std::move(lists[0]);
        } else {
            std::vector<std::vector<RankedItem>> ranked(lists.size());
            std::unordered_map<std::uint64_t, std::int64_t> best_chunk;  // from the first chunked clause listing it
            for (std::size_t i = 0; i < lists.size(); ++i) {
                for (const Hit& h : lists[i]) {
                    const std::uint64_t key = (static_cast<std::uint64_t>(h.seg) << 32) | h.local;
                    ranked[i].push_back({key, h.score});
                    if (h.chunk >= 0) best_chunk.emplace(key, h.chunk);
                }
            }
            for (const RankedItem& r : fuse(ranked, fusion)) {
                const auto it = best_chunk.find(r.key);
                final_hits.push_back({static_cast<std::size_t>(r.key >> 32), static_cast<std::uint32_t>(r.key), r.score,
                                      it == best_chunk.end() ? std::int64_t{-1} : it->second});
            }
        }
        std::sort(final_hits.begin(), final_hits.end(), by_score_then_id);
        return final_hits;
    };
    const std::size_t wanted = request.offset + request.k;
    auto is_after = [&](const Hit& h) {
        if (!request.search_after) return true;
        if (h.score != request.search_after->score) return h.score < request.search_after->score;
        return snap->doc_id(h.seg, h.local) > request.search_after->id;
    };
    if (request.cutoff) {  // the calibrated cut-off over the query's top `depth` hits
        const pipeline::CalibrationModel& model = *request.cutoff;
        bool exhausted = true;
        double cut_floor = 0.0;
        QUIVER_ASSIGN_OR_RETURN(auto ordered, retrieve(model.depth, &exhausted, &cut_floor));
        if (ordered.size() > model.depth) ordered.resize(model.depth);
        std::vector<double> scores;
        scores.reserve(ordered.size());
        for (const Hit& h : ordered) scores.push_back(h.score);
        const std::vector<double> relevance = pipeline::calibrated_probabilities(scores, model);
        const double min_relevance = request.min_relevance.value_or(model.threshold);
        std::vector<SearchHit> out;
        std::size_t skipped = 0;
        for (std::size_t i = 0; i < ordered.size() && out.size() < request.k; ++i) {
            if (relevance[i] < min_relevance || !is_after(ordered[i])) continue;
            if (request.score_threshold && ordered[i].score < *request.score_threshold) break;
            if (skipped < request.offset) {
                ++skipped;
                continue;
            }
            QUIVER_ASSIGN_OR_RETURN(auto sh, materialise(ordered[i].seg, ordered[i].local, ordered[i].score));
            if (ordered[i].chunk >= 0) sh.chunk = static_cast<std::uint32_t>(ordered[i].chunk);
            sh.relevance = relevance[i];
            out.push_back(std::move(sh));
        }
        return out;
    }
    std::vector<Hit> page;
    for (std::size_t window = request.search_after ? std::min(kMaxK, std::max(2 * wanted, kFusionDepth)) : wanted;;
         window = std::min(kMaxK, window * 4)) {
        bool exhausted = true;
        double cut_floor = 0.0;
        QUIVER_ASSIGN_OR_RETURN(auto ordered, retrieve(window, &exhausted, &cut_floor));
        page.clear();
        for (const Hit& h : ordered) {
            if (is_after(h)) page.push_back(h);
        }
        // A single clause's page is exact once its last hit scores above every cut: no unseen document
        // can tie with it and sort before it by id. (Fused scores are over each clause's top list.)
        const bool boundary_exact = request.clauses.size() > 1 || page.size() < wanted || page[wanted - 1].score > cut_floor;
        if ((page.size() >= wanted && boundary_exact) || exhausted || window == kMaxK) break;
    }
    std::vector<SearchHit> out;
    for (std::size_t i = request.offset; i < page.size() && out.size() < request.k; ++i) {
        if (request.score_threshold && page[i].score < *request.score_threshold) break;
        QUIVER_ASSIGN_OR_RETURN(auto sh, materialise(page[i].seg, page[i].local, page[i].score));
        if (page[i].chunk >= 0) sh.chunk = static_cast<std::uint32_t>(page[i].chunk);
        out.push_back(std::move(sh));
    }
    return out;
}

}  // namespace quiver::engine
