/// @file progress.h
/// @brief Progress of long CLI work on stderr: a bar on a terminal, plain lines otherwise.
///
/// On a terminal the bar is redrawn at most ~8 times a second. When stderr is not a terminal (a
/// pipe, a log file, CI) it prints one plain line every QUIVER_PROGRESS_INTERVAL seconds (default
/// 5; fractions allowed, 0 = at every add) and, if it printed any, a final line: work shorter than
/// the interval prints nothing. QUIVER_PROGRESS=0 disables both; QUIVER_PROGRESS=1 is the default.
/// Lines happen only inside `add`, so work should add in steps shorter than the interval.
/// `add` is thread-safe and cheap (one relaxed atomic add; printing is rate-limited).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>

namespace quiver {

class ProgressBar {
public:
    /// `label` names the work ("indexing"); `total` items, `unit` names them ("docs", "vectors").
    ProgressBar(std::string label, std::size_t total, std::string unit = "items");
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    void add(std::size_t n = 1);
    /// Draws the final line (100%, elapsed time, rate) and a newline. Idempotent.
    void finish();
    bool enabled() const noexcept { return enabled_; }
    double elapsed_seconds() const;

    /// Global default, e.g. set false by `--quiet` or `--json` to stdout.
    static void set_globally_enabled(bool on) noexcept;

private:
    void draw(std::size_t done, bool final);

    std::string label_;
    std::string unit_;
    std::size_t total_;
    bool enabled_;
    bool lines_;               // not a terminal: plain lines, no carriage returns
    std::int64_t interval_ns_;  // between drawings
    bool printed_ = false;     // any line or bar drawn (guarded by draw_mu_)
    bool finished_ = false;
    std::atomic<std::size_t> done_{0};
    std::atomic<std::int64_t> next_draw_ns_{0};
    std::mutex draw_mu_;
    std::chrono::steady_clock::time_point start_;
};

/// For work that reports no steps of its own (one long library call, a peer engine's build): while
/// alive, prints "<label>: N.N s elapsed" on stderr every QUIVER_PROGRESS_INTERVAL seconds (default
/// 5), so a piped command is never silent for minutes. Work shorter than the interval prints
/// nothing; QUIVER_PROGRESS=0 (or set_globally_enabled(false)) turns it off. The waiting thread
/// sleeps on a condition variable, so it does not disturb timings.
class ProgressHeartbeat {
public:
    explicit ProgressHeartbeat(std::string label);
    ~ProgressHeartbeat();
    ProgressHeartbeat(const ProgressHeartbeat&) = delete;
    ProgressHeartbeat& operator=(const ProgressHeartbeat&) = delete;

private:
    std::string label_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace quiver
