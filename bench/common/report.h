// Private to bench/: timing, memory and output helpers shared by the benchmarks.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace quiver::bench {

/// Resident set size of this process in bytes (after returning free heap pages to the OS).
std::size_t resident_bytes();

class Stopwatch {
public:
    Stopwatch() : start_(std::chrono::steady_clock::now()) {}
    double seconds() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

private:
    std::chrono::steady_clock::time_point start_;
};

/// CPU seconds consumed by this process so far (all threads): robust to other processes' load.
double process_cpu_seconds();

/// CPU seconds consumed by the calling thread: unaffected by time spent descheduled.
double thread_cpu_seconds();

/// Percentile (0..100) of `values` (copied and sorted).
double percentile(std::vector<double> values, double pct);

/// QPS at `target` recall read off the Pareto frontier of (recall, QPS) points: the points no other
/// point beats on both; between the two frontier points bracketing the target, QPS is interpolated
/// linearly in recall. Above every point's recall: 0 (not reached). Below every point: the best QPS.
double qps_at_recall(std::vector<std::pair<double, double>> pts, double target);

struct PlotSeries {
    std::string name;
    std::vector<std::pair<double, double>> points;  ///< (x, y)
};

/// A self-contained SVG line plot; `log_y` puts y on a log10 scale.
std::string svg_plot(const std::string& title, const std::string& x_label, const std::string& y_label,
                     const std::vector<PlotSeries>& series, bool log_y);

/// Writes `text` to `path`, or to standard output when path is "-". False when the file cannot be
/// written.
bool write_output(const std::string& path, const std::string& text);

/// A fixed-width text table: header row, then rows; columns right-aligned except the first.
std::string text_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

}  // namespace quiver::bench
