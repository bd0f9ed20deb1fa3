// Reads: get by id and top-k search over a snapshot (BM25, vectors, reciprocal rank fusion).
#include <algorithm>
#include <cmath>
#include <span>
#include <unordered_map>

#include "engine/collection_state.h"
#include "quiver/text/analyzer.h"

namespace quiver::engine {
namespace {

constexpr double kRrfK = 60.0;
constexpr std::size_t kMaxK = 10000;

struct Hit {
    std::size_t seg;  // index into the snapshot
    std::uint32_t local;
    double score;
};

bool better(const Hit& a, const Hit& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.seg != b.seg) return a.seg < b.seg;
    return a.local < b.local;
}

Document project(Document doc, const std::optional<std::vector<std::string>>& fields) {
    if (!fields) return doc;
    Document out;
    out.id = std::move(doc.id);
    for (const auto& name : *fields) {
        auto it = doc.fields.find(name);
        if (it != doc.fields.end()) out.fields.emplace(name, std::move(it->second));
    }
    return out;
}

// What each segment may return: its live documents and, with a filter, those matching it (one bitmap
// then, kept in `filter_bits`). Walks skip the rest inside the index (no over-fetch).
std::vector<AllowedDocs> allowed_docs(const Snapshot& snap, const Filter* filter, std::vector<Bitmap>& filter_bits) {
    std::vector<AllowedDocs> allowed(snap.segs.size());
    filter_bits.clear();
    filter_bits.reserve(filter != nullptr ? snap.segs.size() : 0);
    for (std::size_t si = 0; si < snap.segs.size(); ++si) {
        allowed[si] = AllowedDocs::of(&snap.segs[si].deleted);
        if (filter != nullptr) {
            filter_bits.push_back(snap.segs[si].seg->matching(*filter));
            if (allowed[si].deleted != nullptr) filter_bits.back().subtract(*allowed[si].deleted);
            allowed[si] = {nullptr, &filter_bits.back()};
        }
    }
    return allowed;
}

// Collection-wide BM25 statistics of `terms` on text field `field` (Lucene's CollectionStatistics and
// TermStatistics): summed over the snapshot's segments, live documents only, so a document's score
// does not depend on how the collection is segmented or on deletes awaiting a merge.
Result<sparse::Bm25QueryStats> collection_text_stats(const Snapshot& snap, const Schema& schema, std::size_t field,
                                                      std::span<const std::string> terms) {
    auto stats = sparse::Bm25QueryStats::for_terms(terms);
    for (const auto& s : snap.segs) {
        const sparse::Bm25Index* bm = s.seg->text_index(field);
        if (bm == nullptr) continue;
        const DeadTextStats* dead = nullptr;
        if (s.dead) {
            QUIVER_ASSIGN_OR_RETURN(const auto* all, s.dead->get(schema));
            dead = &(*all)[field];
        }
        stats.doc_count += bm->docs_with_tokens() - (dead ? dead->docs_with_tokens : 0);
        stats.total_tokens += bm->total_tokens() - (dead ? dead->tokens : 0);
        for (std::size_t t = 0; t < stats.terms.size(); ++t) {
            const sparse::TermId id = bm->find_term(stats.terms[t]);
            if (id == sparse::kTerminated) continue;
            stats.doc_freq[t] += bm->doc_freq(id) - (dead && id < dead->doc_freq.size() ? dead->doc_freq[id] : 0);
        }
    }
    return stats;
}

}  // namespace

Result<Document> Collection::get(const std::string& id) const {
    if (!valid_document_id(id)) return invalid_argument("document id must be 1-512 bytes of valid UTF-8");
    const auto snap = impl_->current();
    for (auto it = snap->segs.rbegin(); it != snap->segs.rend(); ++it) {
        const auto local = it->seg->find(id);
        if (local && !it->deleted.contains(*local)) return it->seg->document(*local);
    }
    return not_found("document '" + id + "' not found");
}

Result<std::vector<SearchHit>> Collection::search(const SearchRequest& request) const {
    const Schema& schema = impl_->schema;
    if (request.clauses.empty()) return invalid_argument("search needs at least one query clause");
    if (request.k == 0 || request.k > kMaxK) return invalid_argument("k must be 1.." + std::to_string(kMaxK));
    if (request.filter) QUIVER_TRY(request.filter->validate(schema));
    if (request.return_fields) {
        for (const auto& f : *request.return_fields) {
            if (schema.find(f) == nullptr) return invalid_argument("unknown return field '" + f + "'");
        }
    }
    std::vector<std::size_t> field_index;
    std::vector<std::pair<const QueryClause*, std::vector<float>>> embedded;  // text queries on vector fields
    for (const auto& c : request.clauses) {
        const FieldSpec* f = schema.find(c.field);
        if (f == nullptr) return invalid_argument("unknown field '" + c.field + "'");
        if (f->type == FieldType::kText) {
            if (!f->indexed) return invalid_argument("field '" + c.field + "' is not indexed");
            if (!c.vector.empty() || !c.sparse.empty()) {
                return invalid_argument("field '" + c.field + "' is text: give a query text");
            }
        } else if (f->type == FieldType::kVector) {
            if (c.vector.empty() && !c.text.empty() && impl_->encoders[static_cast<std::size_t>(f - schema.fields.data())]) {
                auto& enc = *impl_->encoders[static_cast<std::size_t>(f - schema.fields.data())];
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
        } else if (f->type == FieldType::kSparse) {
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
    const auto snap = impl_->current();
    const std::size_t depth = request.clauses.size() == 1 ? request.k : std::max<std::size_t>(request.k, 100);
    std::vector<Bitmap> filter_bits;
    const std::vector<AllowedDocs> allowed = allowed_docs(*snap, request.filter ? &*request.filter : nullptr, filter_bits);
    std::vector<std::vector<Hit>> lists;
    std::vector<std::string> terms;
    for (std::size_t ci = 0; ci < request.clauses.size(); ++ci) {
        const QueryClause& c = request.clauses[ci];
        const std::size_t fi = field_index[ci];
        const FieldSpec& f = schema.fields[fi];
        std::vector<Hit> hits;
        if (f.type == FieldType::kText) {
            QUIVER_ASSIGN_OR_RETURN(auto analyzer, text::Analyzer::create(text::AnalyzerConfig{}));
            terms.clear();
            analyzer.analyze(c.text, terms);
            QUIVER_ASSIGN_OR_RETURN(const auto stats, collection_text_stats(*snap, schema, fi, terms));
            for (std::size_t si = 0; si < snap->segs.size(); ++si) {
                for (const auto& d : snap->segs[si].seg->search_text(fi, stats, depth, allowed[si])) {
                    hits.push_back({si, d.local, d.score});
                }
            }
        } else if (f.type == FieldType::kSparse) {
            for (std::size_t si = 0; si < snap->segs.size(); ++si) {
                for (const auto& d : snap->segs[si].seg->search_sparse(fi, c.sparse, depth, allowed[si])) {
                    hits.push_back({si, d.local, d.score});
                }
            }
        } else {
            const std::vector<float>* qv = &c.vector;
            for (const auto& [clause, v] : embedded) {
                if (clause == &c) qv = &v;
            }
            for (std::size_t si = 0; si < snap->segs.size(); ++si) {
                QUIVER_ASSIGN_OR_RETURN(auto found,
                                        snap->segs[si].seg->search_vector(fi, *qv, depth, request.ef, allowed[si]));
                for (const auto& d : found) hits.push_back({si, d.local, d.score});
            }
        }
        std::sort(hits.begin(), hits.end(), better);
        if (hits.size() > depth) hits.resize(depth);
        lists.push_back(std::move(hits));
    }
    std::vector<Hit> final_hits;
    if (lists.size() == 1) {
        final_hits = std::move(lists[0]);
    } else {
        std::unordered_map<std::uint64_t, Hit> fused;
        for (const auto& list : lists) {
            for (std::size_t r = 0; r < list.size(); ++r) {
                const std::uint64_t key = (static_cast<std::uint64_t>(list[r].seg) << 32) | list[r].local;
                auto [it, inserted] = fused.emplace(key, Hit{list[r].seg, list[r].local, 0.0});
                it->second.score += 1.0 / (kRrfK + static_cast<double>(r + 1));
            }
        }
        for (const auto& [key, h] : fused) final_hits.push_back(h);
        std::sort(final_hits.begin(), final_hits.end(), better);
    }
    if (final_hits.size() > request.k) final_hits.resize(request.k);
    std::vector<SearchHit> out;
    out.reserve(final_hits.size());
    for (const Hit& h : final_hits) {
        const Segment& seg = *snap->segs[h.seg].seg;
        SearchHit sh;
        sh.id = seg.doc_id(h.local);
        sh.score = h.score;
        if (!request.return_fields || !request.return_fields->empty()) {
            QUIVER_ASSIGN_OR_RETURN(Document d, seg.document(h.local));
            sh.document = project(std::move(d), request.return_fields);
        }
        sh.document.id = sh.id;
        out.push_back(std::move(sh));
    }
    return out;
}

}  // namespace quiver::engine
