#include "quiver/eval/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>

namespace quiver::eval {
namespace {

// One query's run after trec_eval ranking: relevance of each ranked document.
struct RankedQuery {
    std::vector<int> rels;        // trec_eval order (score desc, docid desc)
    std::vector<int> beir_rels;   // BEIR MRR order (stable by score desc)
    std::vector<int> ideal;       // positive qrels relevance values, descending
    std::size_t num_rel = 0;      // R
};

double metric_value(const MetricSpec& m, const RankedQuery& q, int level) {
    const std::size_t n = q.rels.size();
    const std::size_t cut = m.k == 0 ? n : std::min(m.k, n);
    switch (m.kind) {
        case MetricKind::kNdcg: {
            double dcg = 0.0;
            for (std::size_t i = 0; i < cut; ++i) {
                if (q.rels[i] > 0) dcg += q.rels[i] / std::log2(static_cast<double>(i) + 2.0);
            }
            double idcg = 0.0;
            const std::size_t icut = m.k == 0 ? q.ideal.size() : std::min(m.k, q.ideal.size());
            for (std::size_t i = 0; i < icut; ++i) idcg += q.ideal[i] / std::log2(static_cast<double>(i) + 2.0);
            return idcg > 0.0 ? dcg / idcg : 0.0;
        }
        case MetricKind::kRecall: {
            if (q.num_rel == 0) return 0.0;
            std::size_t hit = 0;
            for (std::size_t i = 0; i < cut; ++i) hit += q.rels[i] >= level ? 1 : 0;
            return static_cast<double>(hit) / static_cast<double>(q.num_rel);
        }
        case MetricKind::kMap: {
            if (q.num_rel == 0) return 0.0;
            std::size_t hit = 0;
            double sum = 0.0;
            for (std::size_t i = 0; i < cut; ++i) {
                if (q.rels[i] >= level) {
                    ++hit;
                    sum += static_cast<double>(hit) / static_cast<double>(i + 1);
                }
            }
            return sum / static_cast<double>(q.num_rel);
        }
        case MetricKind::kPrecision: {
            std::size_t hit = 0;
            for (std::size_t i = 0; i < cut; ++i) hit += q.rels[i] >= level ? 1 : 0;
            const std::size_t denom = m.k == 0 ? n : m.k;
            return denom == 0 ? 0.0 : static_cast<double>(hit) / static_cast<double>(denom);
        }
        case MetricKind::kRecipRank: {
            for (std::size_t i = 0; i < cut; ++i) {
                if (q.rels[i] >= level) return 1.0 / static_cast<double>(i + 1);
            }
            return 0.0;
        }
        case MetricKind::kMrr: {
            const std::size_t bcut = m.k == 0 ? q.beir_rels.size() : std::min(m.k, q.beir_rels.size());
            for (std::size_t i = 0; i < bcut; ++i) {
                if (q.beir_rels[i] > 0) return 1.0 / static_cast<double>(i + 1);
            }
            return 0.0;
        }
    }
    return 0.0;
}

}  // namespace

std::string MetricSpec::name() const {
    const char* base = "";
    switch (kind) {
        case MetricKind::kNdcg: base = "ndcg"; break;
        case MetricKind::kRecall: base = "recall"; break;
        case MetricKind::kMap: base = "map"; break;
        case MetricKind::kPrecision: base = "p"; break;
        case MetricKind::kRecipRank: base = "recip_rank"; break;
        case MetricKind::kMrr: base = "mrr"; break;
    }
    return k == 0 ? std::string(base) : fmt::format("{}@{}", base, k);
}

Result<MetricSpec> parse_metric(std::string_view name) {
    std::string lower;
    for (char c : name) lower.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    while (!lower.empty() && lower.back() == ' ') lower.pop_back();
    while (!lower.empty() && lower.front() == ' ') lower.erase(lower.begin());
    const std::size_t at = lower.find_last_of("@_.");
    std::string base = lower.substr(0, at == std::string::npos ? lower.size() : at);
    std::size_t k = 0;
    if (lower == "recip_rank") {
        return MetricSpec{MetricKind::kRecipRank, 0};
    }
    if (at != std::string::npos) {
        const std::string_view digits = std::string_view(lower).substr(at + 1);
        const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), k);
        if (ec != std::errc() || ptr != digits.data() + digits.size() || k == 0) {
            return invalid_argument(fmt::format("metric '{}': the cutoff must be a positive integer", name));
        }
    }
    MetricKind kind;
    if (base == "ndcg" || base == "ndcg_cut") {
        kind = MetricKind::kNdcg;
    } else if (base == "recall") {
        kind = MetricKind::kRecall;
    } else if (base == "map" || base == "map_cut") {
        kind = MetricKind::kMap;
    } else if (base == "p" || base == "precision") {
        kind = MetricKind::kPrecision;
    } else if (base == "mrr") {
        kind = MetricKind::kMrr;
    } else {
        return invalid_argument(fmt::format("unknown metric '{}' (known: ndcg@K, recall@K, map@K, p@K, mrr@K, "
                                            "recip_rank)", name));
    }
    return MetricSpec{kind, k};
}

Result<std::vector<MetricSpec>> parse_metrics(std::string_view list) {
    std::vector<MetricSpec> out;
    std::size_t start = 0;
    while (start <= list.size()) {
        const std::size_t comma = std::min(list.find(',', start), list.size());
        const std::string_view item = list.substr(start, comma - start);
        if (!item.empty()) {
            QUIVER_ASSIGN_OR_RETURN(MetricSpec m, parse_metric(item));
            const bool dup = std::any_of(out.begin(), out.end(),
                                         [&](const MetricSpec& x) { return x.kind == m.kind && x.k == m.k; });
            if (!dup) out.push_back(m);
        }
        start = comma + 1;
    }
    if (out.empty()) return invalid_argument("no metrics given (e.g. --metrics ndcg@10,recall@100)");
    return out;
}

Result<EvalReport> evaluate(const Qrels& qrels, const Run& run, const std::vector<MetricSpec>& metrics,
                            const EvalOptions& options) {
    EvalReport report;
    report.queries_in_qrels = qrels.size();
    report.metrics.resize(metrics.size());
    for (std::size_t m = 0; m < metrics.size(); ++m) report.metrics[m].spec = metrics[m];

    std::vector<std::size_t> order;
    for (const auto& [qid, judged] : qrels) {
        auto it = run.find(qid);
        // An empty result list is the same as no lines in a run file: the query is absent.
        const bool in_run = it != run.end() && !it->second.empty();
        RankedQuery q;
        for (const auto& [doc, rel] : judged) {
            if (rel > 0) q.ideal.push_back(rel);
            if (rel >= options.relevance_level) ++q.num_rel;
        }
        std::sort(q.ideal.begin(), q.ideal.end(), std::greater<>());
        if (in_run) {
            std::vector<const RunEntry*> entries;
            entries.reserve(it->second.size());
            for (const RunEntry& e : it->second) {
                if (options.ignore_identical_ids && e.doc_id == qid) continue;
                entries.push_back(&e);
            }
            std::vector<const RunEntry*> by_id = entries;
            std::sort(by_id.begin(), by_id.end(), [](const RunEntry* a, const RunEntry* b) { return a->doc_id < b->doc_id; });
            for (std::size_t i = 1; i < by_id.size(); ++i) {
                if (by_id[i]->doc_id == by_id[i - 1]->doc_id) {
                    return invalid_argument(fmt::format("run: document '{}' appears twice for query '{}'",
                                                        by_id[i]->doc_id, qid));
                }
            }
            auto rel_of = [&](const RunEntry* e) {
                auto r = judged.find(e->doc_id);
                return r == judged.end() ? 0 : r->second;
            };
            std::vector<const RunEntry*> beir = entries;
            std::stable_sort(beir.begin(), beir.end(), [](const RunEntry* a, const RunEntry* b) { return a->score > b->score; });
            for (const RunEntry* e : beir) q.beir_rels.push_back(rel_of(e));
            std::sort(entries.begin(), entries.end(), [](const RunEntry* a, const RunEntry* b) {
                return a->score > b->score || (a->score == b->score && a->doc_id > b->doc_id);
            });
            for (const RunEntry* e : entries) q.rels.push_back(rel_of(e));
            ++report.queries_evaluated;
        }
        for (std::size_t m = 0; m < metrics.size(); ++m) {
            MetricResult& r = report.metrics[m];
            const bool counts = in_run || options.all_queries || metrics[m].kind == MetricKind::kMrr;
            if (!counts) continue;
            const double v = in_run ? metric_value(metrics[m], q, options.relevance_level) : 0.0;
            r.per_query[qid] = v;
            r.mean += v;
            ++r.num_queries;
        }
    }
    for (const auto& [qid, entries] : run) {
        if (qrels.find(qid) == qrels.end()) ++report.run_queries_skipped;
    }
    for (MetricResult& r : report.metrics) {
        if (r.num_queries > 0) r.mean /= static_cast<double>(r.num_queries);
    }
    return report;
}

}  // namespace quiver::eval
