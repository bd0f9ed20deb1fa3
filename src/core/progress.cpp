#include "quiver/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace quiver {
namespace {
std::atomic<bool> g_enabled{true};

bool decide_enabled() {
    if (!g_enabled.load()) return false;
    if (const char* env = std::getenv("QUIVER_PROGRESS")) return std::strcmp(env, "0") != 0;
    return true;
}

constexpr std::int64_t kBarIntervalNs = 125'000'000;
constexpr double kDefaultLineIntervalSeconds = 5.0;

std::int64_t line_interval_ns() {
    double seconds = kDefaultLineIntervalSeconds;
    if (const char* env = std::getenv("QUIVER_PROGRESS_INTERVAL")) {
        char* end = nullptr;
        const double v = std::strtod(env, &end);
        if (end != env && v >= 0 && v < 1e6) seconds = v;
    }
    return static_cast<std::int64_t>(seconds * 1e9);
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}
}  // namespace

void ProgressBar::set_globally_enabled(bool on) noexcept { g_enabled.store(on); }

ProgressBar::ProgressBar(std::string label, std::size_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(decide_enabled()),
      lines_(isatty(STDERR_FILENO) == 0),
      interval_ns_(lines_ ? line_interval_ns() : kBarIntervalNs),
      start_(std::chrono::steady_clock::now()) {
    // A bar draws soon; lines wait a whole interval, so short work stays silent.
    next_draw_ns_.store(now_ns() + (lines_ ? interval_ns_ : 0));
}

ProgressBar::~ProgressBar() { finish(); }

double ProgressBar::elapsed_seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::add(std::size_t n) {
    const std::size_t done = done_.fetch_add(n, std::memory_order_relaxed) + n;
    if (!enabled_) return;
    const std::int64_t now = now_ns();
    std::int64_t next = next_draw_ns_.load(std::memory_order_relaxed);
    if (now < next) return;
    if (!next_draw_ns_.compare_exchange_strong(next, now + interval_ns_)) return;
    draw(done, false);
}

void ProgressBar::finish() {
    if (finished_) return;
    finished_ = true;
    if (!enabled_) return;
    bool printed;
    {
        std::lock_guard lock(draw_mu_);
        printed = printed_;
    }
    if (!lines_ || printed) draw(done_.load(), true);
}

void ProgressBar::draw(std::size_t done, bool final) {
    std::lock_guard lock(draw_mu_);
    printed_ = true;
    const double secs = elapsed_seconds();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
    std::string line;
    if (lines_) {
        // One self-contained line per report, for logs: no carriage return, no bar.
        if (total_ > 0) {
            const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
            const double eta = rate > 0 ? static_cast<double>(total_ - std::min(done, total_)) / rate : 0;
            line = fmt::format("{}: {}/{} {} ({:.1f}%), {:.0f} {}/s, {:.1f}s elapsed{}\n", label_, done, total_, unit_,
                               frac * 100.0, rate, unit_, secs, final ? ", done" : fmt::format(", eta {:.0f}s", eta));
        } else {
            line = fmt::format("{}: {} {}, {:.0f} {}/s, {:.1f}s elapsed{}\n", label_, done, unit_, rate, unit_, secs,
                               final ? ", done" : "");
        }
        std::fputs(line.c_str(), stderr);
        std::fflush(stderr);
        return;
    }
    if (total_ > 0) {
        const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
        constexpr int kWidth = 30;
        const int filled = static_cast<int>(frac * kWidth);
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(kWidth, '.');
        const double eta = rate > 0 ? static_cast<double>(total_ - std::min(done, total_)) / rate : 0;
        line = fmt::format("\r{} [{}] {:5.1f}% {}/{} {} {:.0f} {}/s {}", label_, bar, frac * 100.0, done,
                           total_, unit_, rate, unit_,
                           final ? fmt::format("{:.1f}s", secs) : fmt::format("eta {:.0f}s", eta));
    } else {
        line = fmt::format("\r{} {} {} {:.0f} {}/s {:.1f}s", label_, done, unit_, rate, unit_, secs);
    }
    if (final) line += "\n";
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
}

ProgressHeartbeat::ProgressHeartbeat(std::string label) : label_(std::move(label)) {
    if (!decide_enabled()) return;
    const std::int64_t interval = line_interval_ns();
    if (interval <= 0) return;
    thread_ = std::thread([this, interval] {
        const auto start = std::chrono::steady_clock::now();
        const auto step = std::chrono::nanoseconds(interval);
        auto next = start + step;
        std::unique_lock lock(mu_);
        while (!cv_.wait_until(lock, next, [this] { return stop_; })) {
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::fprintf(stderr, "%s: %.1f s elapsed\n", label_.c_str(), secs);
            std::fflush(stderr);
            next += step;
        }
    });
}

ProgressHeartbeat::~ProgressHeartbeat() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

}  // namespace quiver
