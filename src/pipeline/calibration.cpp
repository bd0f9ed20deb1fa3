// Calibrated relevance cut-offs (see calibration.h).
#include "quiver/pipeline/calibration.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

namespace quiver::pipeline {
namespace {

constexpr std::size_t kFeatures = 6;

// Entries as trec_eval ranks them (score descending, doc id descending), cut at depth.
std::vector<eval::RunEntry> ranked(const std::vector<eval::RunEntry>& entries, std::size_t depth) {
    std::vector<eval::RunEntry> out = entries;
    std::sort(out.begin(), out.end(), [](const eval::RunEntry& a, const eval::RunEntry& b) {
        if (a.score != b.score) return a.score > b.score;
        return a.doc_id > b.doc_id;
    });
    if (out.size() > depth) out.resize(depth);
    return out;
}

std::vector<double> raw_features(std::span<const double> top) {
    std::vector<double> f(kFeatures, 0.0);
    f[0] = 1.0;
    if (top.empty()) return f;
    const std::size_t n10 = std::min<std::size_t>(10, top.size());
    double mean10 = 0.0, all = 0.0;
    for (std::size_t i = 0; i < n10; ++i) mean10 += top[i];
    mean10 /= static_cast<double>(n10);
    double var10 = 0.0;
    for (std::size_t i = 0; i < n10; ++i) var10 += (top[i] - mean10) * (top[i] - mean10);
    for (const double s : top) all += s;
    f[1] = top[0];
    f[2] = mean10;
    f[3] = std::sqrt(var10 / static_cast<double>(n10));
    f[4] = top[0] - top[n10 - 1];
    f[5] = all / static_cast<double>(top.size());
    return f;
}

std::vector<double> raw_features(const std::vector<eval::RunEntry>& top) {
    std::vector<double> scores;
    scores.reserve(top.size());
    for (const auto& e : top) scores.push_back(e.score);
    return raw_features(std::span<const double>(scores));
}

std::vector<double> standardised(std::vector<double> f, const CalibrationModel& m) {
    for (std::size_t i = 1; i < kFeatures; ++i) f[i] = (f[i] - m.feature_mean[i]) / m.feature_scale[i];
    return f;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z)); }

double f1_of(std::size_t returned, std::size_t hits, std::size_t relevant) {
    if (returned == 0 || hits == 0 || relevant == 0) return 0.0;
    const double p = static_cast<double>(hits) / static_cast<double>(returned);
    const double r = static_cast<double>(hits) / static_cast<double>(relevant);
    return 2 * p * r / (p + r);
}

struct Candidate {
    double value;
    std::size_t query;
    bool relevant;
};

// The threshold (among candidate values) maximising the mean F1 over `relevant.size()` queries, where a
// query returns its candidates with value >= threshold. Ties keep the highest threshold.
std::pair<double, double> best_threshold(std::vector<Candidate> c, const std::vector<std::size_t>& relevant) {
    std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) { return a.value > b.value; });
    std::vector<std::size_t> returned(relevant.size(), 0), hits(relevant.size(), 0);
    double sum = 0.0, best = -1.0, best_t = c.empty() ? 0.0 : c.front().value + 1.0;
    for (std::size_t i = 0; i < c.size();) {
        const double v = c[i].value;
        for (; i < c.size() && c[i].value == v; ++i) {
            const std::size_t q = c[i].query;
            sum -= f1_of(returned[q], hits[q], relevant[q]);
            ++returned[q];
            hits[q] += c[i].relevant ? 1 : 0;
            sum += f1_of(returned[q], hits[q], relevant[q]);
        }
        if (sum > best) {
            best = sum;
            best_t = v;
        }
    }
    return {best_t, relevant.empty() ? 0.0 : std::max(best, 0.0) / static_cast<double>(relevant.size())};
}

std::size_t relevant_count(const std::map<std::string, int>& judged) {
    std::size_t n = 0;
    for (const auto& [d, rel] : judged) n += rel >= 1 ? 1 : 0;
    return n;
}

}  // namespace

Result<CalibrationModel> train_calibration(const eval::Run& run, const eval::Qrels& qrels, const CalibrationOptions& o) {
    CalibrationModel m;
    m.depth = o.depth;
    struct QueryData {
        std::vector<double> f;
        std::vector<eval::RunEntry> top;
        std::size_t relevant;
    };
    std::vector<QueryData> qs;
    std::size_t with_hit = 0;
    for (const auto& [qid, judged] : qrels) {
        const auto it = run.find(qid);
        const std::size_t rel = relevant_count(judged);
        if (it == run.end() || rel == 0) continue;
        QueryData d{{}, ranked(it->second, o.depth), rel};
        if (d.top.empty()) continue;
        d.f = raw_features(d.top);
        bool hit = false;
        for (const auto& e : d.top) {
            const auto j = judged.find(e.doc_id);
            hit = hit || (j != judged.end() && j->second >= 1);
        }
        with_hit += hit ? 1 : 0;
        qs.push_back(std::move(d));
    }
    if (with_hit < 2) return invalid_argument("calibration needs at least two training queries with a retrieved relevant document");
    m.feature_mean.assign(kFeatures, 0.0);
    m.feature_scale.assign(kFeatures, 1.0);
    for (std::size_t i = 1; i < kFeatures; ++i) {
        double mean = 0.0, var = 0.0;
        for (const auto& q : qs) mean += q.f[i];
        mean /= static_cast<double>(qs.size());
        for (const auto& q : qs) var += (q.f[i] - mean) * (q.f[i] - mean);
        const double sd = std::sqrt(var / static_cast<double>(qs.size()));
        m.feature_mean[i] = mean;
        m.feature_scale[i] = sd > 1e-12 ? sd : 1.0;
    }
    for (auto& q : qs) q.f = standardised(q.f, m);
    // Training pairs.
    struct Pair {
        std::size_t q;
        double delta;  // s - s_1
        double y;
    };
    std::vector<Pair> pairs;
    std::size_t qi = 0;
    for (const auto& [qid, judged] : qrels) {
        const auto it = run.find(qid);
        if (it == run.end() || relevant_count(judged) == 0 || it->second.empty()) continue;
        const auto& q = qs[qi++];
        for (const auto& e : q.top) {
            const auto j = judged.find(e.doc_id);
            pairs.push_back({qi - 1, e.score - q.top[0].score, (j != judged.end() && j->second >= 1) ? 1.0 : 0.0});
        }
    }
    m.wa.assign(kFeatures, 0.0);
    m.wb.assign(kFeatures, 0.0);
    std::vector<double> ma(2 * kFeatures, 0.0), va(2 * kFeatures, 0.0), g(2 * kFeatures);
    std::vector<double> slope(qs.size()), bias(qs.size());
    const double n = static_cast<double>(pairs.size());
    for (std::size_t step = 1; step <= o.steps; ++step) {
        for (std::size_t i = 0; i < qs.size(); ++i) {
            slope[i] = std::exp(std::clamp(dot(m.wa, qs[i].f), -30.0, 30.0));
            bias[i] = dot(m.wb, qs[i].f);
        }
        std::fill(g.begin(), g.end(), 0.0);
        for (const Pair& p : pairs) {
            const double z = slope[p.q] * p.delta + bias[p.q];
            const double dz = (sigmoid(z) - p.y) / n;
            const auto& f = qs[p.q].f;
            for (std::size_t k = 0; k < kFeatures; ++k) {
                g[k] += dz * slope[p.q] * p.delta * f[k];
                g[kFeatures + k] += dz * f[k];
            }
        }
        const double c1 = 1.0 - std::pow(0.9, static_cast<double>(step)), c2 = 1.0 - std::pow(0.999, static_cast<double>(step));
        for (std::size_t k = 0; k < 2 * kFeatures; ++k) {
            ma[k] = 0.9 * ma[k] + 0.1 * g[k];
            va[k] = 0.999 * va[k] + 0.001 * g[k] * g[k];
            double& w = k < kFeatures ? m.wa[k] : m.wb[k - kFeatures];
            w -= o.learning_rate * (ma[k] / c1) / (std::sqrt(va[k] / c2) + 1e-8);
        }
    }
    // The global threshold on the calibrated probabilities, chosen on the training split.
    std::vector<Candidate> cands;
    std::vector<std::size_t> relevant;
    for (std::size_t i = 0; i < qs.size(); ++i) relevant.push_back(qs[i].relevant);
    for (const Pair& p : pairs) {
        cands.push_back({sigmoid(std::exp(std::clamp(dot(m.wa, qs[p.q].f), -30.0, 30.0)) * p.delta + dot(m.wb, qs[p.q].f)),
                         p.q, p.y > 0.5});
    }
    const auto [t, f1] = best_threshold(std::move(cands), relevant);
    m.threshold = t;
    m.train_f1 = f1;
    return m;
}

Status validate_calibration(const CalibrationModel& m) {
    if (m.depth < 1 || m.depth > 10000) return invalid_argument("cutoff: depth must be 1..10000");
    if (!(m.threshold >= 0.0 && m.threshold <= 1.0)) return invalid_argument("cutoff: threshold must be in [0, 1]");
    for (const auto* v : {&m.feature_mean, &m.feature_scale, &m.wa, &m.wb}) {
        if (v->size() != kFeatures) return invalid_argument("cutoff: the model needs 6 numbers per weight vector");
        for (double x : *v) {
            if (!std::isfinite(x)) return invalid_argument("cutoff: the model's numbers must be finite");
        }
    }
    for (double x : m.feature_scale) {
        if (!(x > 0.0)) return invalid_argument("cutoff: feature_scale must be > 0");
    }
    return ok_status();
}

std::vector<double> calibrated_probabilities(std::span<const double> scores, const CalibrationModel& m) {
    std::vector<double> p;
    if (scores.empty()) return p;
    const std::vector<double> f = standardised(raw_features(scores), m);
    const double slope = std::exp(std::clamp(dot(m.wa, f), -30.0, 30.0));
    const double bias = dot(m.wb, f);
    const double s1 = scores[0];
    p.reserve(scores.size());
    for (const double s : scores) p.push_back(sigmoid(slope * (s - s1) + bias));
    return p;
}

std::vector<eval::RunEntry> calibrated_scores(const std::vector<eval::RunEntry>& entries, const CalibrationModel& m) {
    std::vector<eval::RunEntry> top = ranked(entries, m.depth);
    std::vector<double> scores;
    scores.reserve(top.size());
    for (const auto& e : top) scores.push_back(e.score);
    const std::vector<double> p = calibrated_probabilities(scores, m);
    for (std::size_t i = 0; i < top.size(); ++i) top[i].score = p[i];
    return top;
}

eval::Run apply_calibrated_cutoff(const eval::Run& run, const CalibrationModel& m) {
    eval::Run out;
    for (const auto& [qid, entries] : run) {
        auto& kept = out[qid];
        for (auto& e : calibrated_scores(entries, m)) {
            if (e.score >= m.threshold) kept.push_back(std::move(e));
        }
    }
    return out;
}

eval::Run apply_global_cutoff(const eval::Run& run, double threshold, std::size_t depth) {
    eval::Run out;
    for (const auto& [qid, entries] : run) {
        auto& kept = out[qid];
        for (auto& e : ranked(entries, depth)) {
            if (e.score >= threshold) kept.push_back(std::move(e));
        }
    }
    return out;
}

SetMetrics set_metrics(const eval::Run& returned, const eval::Qrels& qrels) {
    SetMetrics m;
    for (const auto& [qid, judged] : qrels) {
        const std::size_t rel = relevant_count(judged);
        const auto it = returned.find(qid);
        if (rel == 0 || it == returned.end()) continue;
        std::size_t hits = 0;
        for (const auto& e : it->second) {
            const auto j = judged.find(e.doc_id);
            hits += (j != judged.end() && j->second >= 1) ? 1 : 0;
        }
        const std::size_t n = it->second.size();
        m.precision += n > 0 ? static_cast<double>(hits) / static_cast<double>(n) : 0.0;
        m.recall += static_cast<double>(hits) / static_cast<double>(rel);
        m.f1 += f1_of(n, hits, rel);
        ++m.queries;
    }
    if (m.queries > 0) {
        const double q = static_cast<double>(m.queries);
        m.precision /= q;
        m.recall /= q;
        m.f1 /= q;
    }
    return m;
}

double best_global_threshold(const eval::Run& run, const eval::Qrels& qrels, std::size_t depth) {
    std::vector<Candidate> cands;
    std::vector<std::size_t> relevant;
    for (const auto& [qid, judged] : qrels) {
        const std::size_t rel = relevant_count(judged);
        const auto it = run.find(qid);
        if (rel == 0 || it == run.end()) continue;
        const std::size_t q = relevant.size();
        relevant.push_back(rel);
        for (const auto& e : ranked(it->second, depth)) {
            const auto j = judged.find(e.doc_id);
            cands.push_back({e.score, q, j != judged.end() && j->second >= 1});
        }
    }
    return best_threshold(std::move(cands), relevant).first;
}

}  // namespace quiver::pipeline
