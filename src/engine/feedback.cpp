// Pseudo-relevance feedback of a search clause over a snapshot (see feedback.h).
#include "engine/feedback.h"

#include <algorithm>
#include <set>

#include "quiver/text/analyzer.h"

namespace quiver::engine {

std::optional<LiveRef> find_live(const Snapshot& snap, std::string_view id) {
    if (snap.mem) {
        if (const auto local = snap.mem->find(id, snap.mem_n, snap.seq)) return LiveRef{snap.segs.size(), *local};
    }
    for (std::size_t si = snap.segs.size(); si-- > 0;) {
        const auto local = snap.segs[si].seg->find(id);
        if (local && !snap.segs[si].deleted.contains(*local)) return LiveRef{si, *local};
    }
    return std::nullopt;
}

Result<sparse::Bm25QueryStats> expanded_text_query(const Snapshot& snap, const FieldSpec& field,
                                                   std::span<const std::string> query_terms,
                                                   std::span<const FeedbackHit> first, const pipeline::PrfSpec& spec,
                                                   const TextStatsFn& stats_of) {
    // The feedback documents' tokens, analysed as the index analysed them (title, then text).
    QUIVER_ASSIGN_OR_RETURN(auto analyzer, text::Analyzer::create(text::AnalyzerConfig{}));
    const std::size_t n = std::min(first.size(), spec.fb_docs);
    std::vector<std::vector<std::string>> tokens(n);
    std::vector<pipeline::FeedbackDoc> docs(n);
    std::set<std::string, std::less<>> candidates;
    for (std::size_t i = 0; i < n; ++i) {
        QUIVER_ASSIGN_OR_RETURN(const Document doc, snap.document(first[i].ref.seg, first[i].ref.local));
        std::string_view title, body;
        text_views(field, doc, title, body);
        sparse::Bm25Index::document_tokens(analyzer, title, body, tokens[i]);
        candidates.insert(tokens[i].begin(), tokens[i].end());
        docs[i] = {tokens[i], first[i].score};
    }
    // Anserini's feedback-term filter with collection-wide document frequencies over live documents.
    const std::vector<std::string> cand(candidates.begin(), candidates.end());
    QUIVER_ASSIGN_OR_RETURN(const sparse::Bm25QueryStats cand_stats, stats_of(cand));
    std::uint64_t live = 0;
    for (std::size_t s = 0; s < snap.sources(); ++s) live += snap.live_count(s);
    std::map<std::string, std::uint64_t, std::less<>> df;
    for (std::size_t t = 0; t < cand_stats.terms.size(); ++t) df.emplace(cand_stats.terms[t], cand_stats.doc_freq[t]);
    const auto keep = [&](std::string_view t) {
        const auto it = df.find(t);
        return pipeline::anserini_feedback_term(t, it == df.end() ? 0 : it->second, live);
    };
    const std::vector<pipeline::WeightedTerm> expanded = pipeline::expand_query(query_terms, docs, spec, keep);
    if (expanded.empty()) return stats_of(query_terms);
    std::vector<std::string> terms;
    terms.reserve(expanded.size());
    for (const auto& t : expanded) terms.push_back(t.term);
    QUIVER_ASSIGN_OR_RETURN(sparse::Bm25QueryStats stats, stats_of(terms));
    for (std::size_t j = 0; j < stats.terms.size(); ++j) {
        for (const auto& t : expanded) {
            if (t.term == stats.terms[j]) stats.boosts[j] = static_cast<float>(t.weight);
        }
    }
    return stats;
}

Result<std::vector<float>> rocchio_query(const Snapshot& snap, const FieldSpec& field, std::span<const float> query,
                                         std::span<const FeedbackHit> first, const pipeline::PrfSpec& spec) {
    const std::size_t n = std::min(first.size(), spec.fb_docs);
    std::vector<float> rows;
    rows.reserve(n * field.dim);
    for (std::size_t i = 0; i < n; ++i) {
        QUIVER_ASSIGN_OR_RETURN(const Document doc, snap.document(first[i].ref.seg, first[i].ref.local));
        const auto it = doc.fields.find(field.name);
        const auto* v = it == doc.fields.end() ? nullptr : std::get_if<std::vector<float>>(&it->second);
        if (v == nullptr || v->size() != field.dim) continue;
        rows.insert(rows.end(), v->begin(), v->end());
    }
    return pipeline::rocchio_vector(query, rows, field.dim, spec, false);
}

}  // namespace quiver::engine
