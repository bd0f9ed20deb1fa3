#include "common/report.h"

#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

namespace quiver::bench {

std::size_t resident_bytes() {
    malloc_trim(0);
    std::ifstream f("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    f >> pages >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double percentile(std::vector<double> values, double pct) {
    if (values.empty()) return 0.0;
    std::sort(values.begin(), values.end());
    const double pos = pct / 100.0 * static_cast<double>(values.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const auto hi = std::min(values.size() - 1, lo + 1);
    return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
}

std::string svg_plot(const std::string& title, const std::string& x_label, const std::string& y_label,
                     const std::vector<PlotSeries>& series, bool log_y) {
    constexpr double kW = 720, kH = 480, kL = 80, kR = 160, kT = 40, kB = 60;
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    auto ty = [&](double y) { return log_y ? std::log10(std::max(y, 1e-12)) : y; };
    for (const auto& s : series) {
        for (auto [x, y] : s.points) {
            x0 = std::min(x0, x); x1 = std::max(x1, x);
            y0 = std::min(y0, ty(y)); y1 = std::max(y1, ty(y));
        }
    }
    if (!(x1 > x0)) { x0 -= 0.5; x1 += 0.5; }
    if (!(y1 > y0)) { y0 -= 0.5; y1 += 0.5; }
    const double pad_y = (y1 - y0) * 0.05;
    y0 -= pad_y; y1 += pad_y;
    auto px = [&](double x) { return kL + (x - x0) / (x1 - x0) * (kW - kL - kR); };
    auto py = [&](double y) { return kH - kB - (ty(y) - y0) / (y1 - y0) * (kH - kT - kB); };
    static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
    std::string out = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
        "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        "<text x=\"{}\" y=\"24\" font-size=\"15\">{}</text>\n",
        kW, kH, kL, title);
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"black\"/>\n", kL, kH - kB, kW - kR);
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n", kL, kT, kH - kB);
    for (int i = 0; i <= 5; ++i) {
        const double xv = x0 + (x1 - x0) * i / 5.0;
        const double yv = y0 + (y1 - y0) * i / 5.0;
        out += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.3g}</text>\n", px(xv), kH - kB + 18, xv);
        const double label = log_y ? std::pow(10.0, yv) : yv;
        const double ypix = kH - kB - (yv - y0) / (y1 - y0) * (kH - kT - kB);
        out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.3g}</text>\n", kL - 6, ypix + 4, label);
        out += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#eee\"/>\n", kL, ypix, kW - kR, ypix);
    }
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (kL + kW - kR) / 2, kH - 15, x_label);
    out += fmt::format("<text x=\"18\" y=\"{}\" transform=\"rotate(-90 18 {})\" text-anchor=\"middle\">{}{}</text>\n",
                       (kT + kH - kB) / 2, (kT + kH - kB) / 2, y_label, log_y ? " (log)" : "");
    for (std::size_t s = 0; s < series.size(); ++s) {
        const char* color = kColors[s % 6];
        std::string pts;
        for (auto [x, y] : series[s].points) pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
        out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n", color, pts);
        for (auto [x, y] : series[s].points) {
            out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(x), py(y), color);
        }
        out += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>\n", kW - kR + 10, kT + 20 + 18 * s, color,
                           series[s].name);
    }
    out += "</svg>\n";
    return out;
}

std::string text_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> w(header.size());
    for (std::size_t c = 0; c < header.size(); ++c) w[c] = header[c].size();
    for (const auto& r : rows)
        for (std::size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], r[c].size());
    auto line = [&](const std::vector<std::string>& r) {
        std::string s;
        for (std::size_t c = 0; c < w.size(); ++c) {
            const std::string cell = c < r.size() ? r[c] : "";
            if (c == 0) s += fmt::format("{:<{}}", cell, w[c]);
            else s += fmt::format("  {:>{}}", cell, w[c]);
        }
        return s + "\n";
    };
    std::string out = line(header);
    std::size_t total = 0;
    for (auto x : w) total += x + 2;
    out += std::string(total - 2, '-') + "\n";
    for (const auto& r : rows) out += line(r);
    return out;
}

bool write_output(const std::string& path, const std::string& text) {
    if (path == "-") return std::fputs(text.c_str(), stdout) >= 0;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    const bool ok = std::fputs(text.c_str(), f) >= 0;
    return std::fclose(f) == 0 && ok;
}

double qps_at_recall(std::vector<std::pair<double, double>> pts, double target) {
    std::sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second > b.second);
    });
    std::vector<std::pair<double, double>> frontier;  // recall descending, QPS ascending
    for (const auto& p : pts) {
        if (frontier.empty() || p.second > frontier.back().second) frontier.push_back(p);
    }
    if (frontier.empty() || frontier.front().first < target) return 0;
    for (std::size_t i = 0; i + 1 < frontier.size(); ++i) {
        const auto& hi = frontier[i];      // recall >= target
        const auto& lo = frontier[i + 1];  // higher QPS
        if (lo.first >= target) continue;
        const double t = (hi.first - target) / (hi.first - lo.first);
        return hi.second + t * (lo.second - hi.second);
    }
    return frontier.back().second;  // every frontier point reaches the target
}


}  // namespace quiver::bench
