// `quiver bench encode`: quiver's BERT runtime against PyTorch on the same weights, token ids,
// threads, batch size and lengths. Reports sequences/s, tokens/s, GFLOP/s, the share of the
// machine's peak FLOP/s, and the largest absolute difference between the two outputs.
//
// Without --model, a MiniLM-L6-shaped random model (6 layers, hidden 384, 12 heads, intermediate
// 1536, 30522-token vocab) is written by scripts/make_encoder_fixtures.py into --work-dir.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "quiver/core/json.h"
#include "quiver/encode/encoder.h"
#include "quiver/storage/file_format.h"
#include "quiver/text/wordpiece.h"
#include "registry.h"

namespace quiver::bench {
namespace {

namespace fs = std::filesystem;

struct Options {
    std::string model;
    std::string peer = "torch";
    std::string python = "/usr/bin/python3";
    std::string work_dir = "/tmp/quiver-bench-encode";
    std::size_t texts = 256;
    std::size_t seq_len = 128;
    std::size_t batch = 32;
    std::size_t threads = 2;
    std::size_t repeat = 3;
    std::string json_out;
};

// The source tree (for the fixture script and the peer): $QUIVER_SOURCE_DIR, else derived from this
// file's compile-time path (bench/encode/encode_bench.cpp).
std::string source_dir() {
    if (const char* env = std::getenv("QUIVER_SOURCE_DIR"); env != nullptr && *env != 0) return env;
    return fs::path(__FILE__).parent_path().parent_path().parent_path().string();
}

int run_command(const std::string& cmd, std::string* output) {
    std::FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return -1;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        if (output != nullptr) output->append(buf, n);
    }
    return ::pclose(p);
}

// A child process (`/bin/sh -c cmd`) with its stdin and stdout connected to us, for the PyTorch
// peer's --serve mode: the model loads once, then rounds alternate with quiver's.
class PeerProcess {
public:
    bool start(const std::string& cmd) {
        int to_child[2];
        int from_child[2];
        if (::pipe(to_child) != 0) return false;
        if (::pipe(from_child) != 0) return false;
        pid_ = ::fork();
        if (pid_ < 0) return false;
        if (pid_ == 0) {
            ::dup2(to_child[0], 0);
            ::dup2(from_child[1], 1);
            ::close(to_child[1]);
            ::close(from_child[0]);
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(to_child[0]);
        ::close(from_child[1]);
        in_ = ::fdopen(to_child[1], "w");
        out_ = ::fdopen(from_child[0], "r");
        return in_ != nullptr && out_ != nullptr;
    }
    /// Sends `line` (if not empty) and returns the next line of output ("" at end of output).
    std::string exchange(const std::string& line) {
        if (!line.empty()) {
            std::fputs((line + "\n").c_str(), in_);
            std::fflush(in_);
        }
        std::string result;
        int c;
        while ((c = std::fgetc(out_)) != EOF && c != '\n') result.push_back(static_cast<char>(c));
        return result;
    }
    ~PeerProcess() {
        if (in_ != nullptr) std::fclose(in_);
        if (out_ != nullptr) std::fclose(out_);
        if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
    }

private:
    pid_t pid_ = -1;
    std::FILE* in_ = nullptr;
    std::FILE* out_ = nullptr;
};

double cpu_mhz() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("cpu MHz", 0) == 0) {
            auto pos = line.find(':');
            if (pos != std::string::npos) return std::stod(line.substr(pos + 1));
        }
    }
    return 0.0;
}

// Texts of random vocabulary words, long enough that each has at least `tokens` word pieces.
std::vector<std::string> make_texts(const text::HfTokenizer& tok, std::size_t count, std::size_t tokens) {
    std::vector<std::string> words;
    for (std::size_t i = 0; i < tok.vocab_size(); ++i) {
        std::string_view t = tok.id_to_token(static_cast<std::int32_t>(i));
        if (t.size() >= 3 && t[0] != '#' && t[0] != '[' &&
            std::all_of(t.begin(), t.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
            words.emplace_back(t);
        }
    }
    std::mt19937_64 rng(42);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < count; ++i) {
        std::string s;
        for (std::size_t w = 0; w < tokens + 8; ++w) {
            if (!s.empty()) s += ' ';
            s += words[rng() % words.size()];
        }
        out.push_back(std::move(s));
    }
    return out;
}

int run(const Options& o) {
    std::string model = o.model;
    std::error_code ec;
    fs::create_directories(o.work_dir, ec);
    if (model.empty()) {
        model = o.work_dir + "/minilm-l6-random";
        if (!fs::exists(model + "/model.safetensors")) {
            std::fprintf(stderr, "writing a MiniLM-L6-shaped random model to %s\n", model.c_str());
            const std::string cmd = fmt::format("'{}' '{}/scripts/make_encoder_fixtures.py' bench-model '{}'", o.python,
                                                source_dir(), model);
            if (run_command(cmd, nullptr) != 0) {
                std::fprintf(stderr, "quiver bench encode: error: '%s' failed (python3-torch installed? "
                                     "scripts/install-deps --with-torch)\n", cmd.c_str());
                return 1;
            }
        }
    }
    auto tok = text::HfTokenizer::load(model + "/tokenizer.json");
    if (!tok) {
        std::fprintf(stderr, "quiver bench encode: error: %s\n", tok.error().to_string().c_str());
        return 1;
    }
    const std::vector<std::string> texts = make_texts(*tok, o.texts, o.seq_len);
    std::vector<std::string_view> views(texts.begin(), texts.end());

    encode::LoadOptions lo;
    lo.threads = o.threads;
    lo.batch = o.batch;
    lo.max_length = o.seq_len;
    auto enc = encode::load_encoder(model, lo);
    if (!enc) {
        std::fprintf(stderr, "quiver bench encode: error: %s\n", enc.error().to_string().c_str());
        return 1;
    }
    // Warm-up (page-in weights, grow workspaces).
    (void)(*enc)->encode(std::span(views).first(std::min(views.size(), o.batch * o.threads)), {});

    const std::string ids_path = o.work_dir + "/ids.bin";
    const std::string out_path = o.work_dir + "/torch_out.bin";
    const bool torch = o.peer == "torch";
    if (torch) {
        std::ofstream f(ids_path, std::ios::binary);
        const auto n = static_cast<std::uint32_t>(o.texts);
        const auto width = static_cast<std::uint32_t>(o.seq_len);
        f.write(reinterpret_cast<const char*>(&n), 4);
        f.write(reinterpret_cast<const char*>(&width), 4);
        std::vector<std::int32_t> lengths;
        for (const std::string& t : texts) {
            auto ids = tok->encode(t, o.seq_len);
            std::vector<std::int32_t> row = ids ? *ids : std::vector<std::int32_t>{};
            lengths.push_back(static_cast<std::int32_t>(row.size()));
            row.resize(o.seq_len, 0);
            f.write(reinterpret_cast<const char*>(row.data()), static_cast<std::streamsize>(row.size() * 4));
        }
        f.write(reinterpret_cast<const char*>(lengths.data()), static_cast<std::streamsize>(lengths.size() * 4));
    }
    const std::string peer_cmd = fmt::format(
        "OMP_NUM_THREADS={} '{}' '{}/bench/encode/torch_peer.py' --model '{}' --ids '{}' --out '{}' --threads {} "
        "--batch {} --serve",
        o.threads, o.python, source_dir(), model, ids_path, out_path, o.threads, o.batch);

    // Rounds alternate the engines, so both see the same machine load (the machine may be shared):
    // each round times one full quiver encode, then one full PyTorch encode per path in the peer
    // process (started once, warmed up). Each engine's best round is reported; every pair is printed.
    PeerProcess peer;
    if (torch) {
        if (!peer.start(peer_cmd) || peer.exchange("").find("ready") == std::string::npos) {
            std::fprintf(stderr, "quiver bench encode: error: the PyTorch peer did not start: %s\n", peer_cmd.c_str());
            return 1;
        }
    }
    double quiver_s = 1e300;
    std::vector<std::pair<std::string, double>> torch_best;  // path -> best seconds
    std::vector<std::string> round_lines;
    encode::Embeddings out;
    for (std::size_t r = 0; r < o.repeat; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        auto e = (*enc)->encode(views, {});
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!e) {
            std::fprintf(stderr, "quiver bench encode: error: %s\n", e.error().to_string().c_str());
            return 1;
        }
        quiver_s = std::min(quiver_s, s);
        out = std::move(*e);
        if (!torch) continue;
        const std::string output = peer.exchange("run");
        auto res = json::parse(output);
        const json::Value* paths = res ? res->find("paths") : nullptr;
        if (paths == nullptr || !paths->is_object()) {
            std::fprintf(stderr, "quiver bench encode: error: unexpected peer output: %s\n", output.c_str());
            return 1;
        }
        double round_best = 1e300;
        std::string round_path;
        for (const auto& [name, secs] : paths->as_object()) {
            auto it = std::find_if(torch_best.begin(), torch_best.end(), [&](const auto& p) { return p.first == name; });
            if (it == torch_best.end()) torch_best.emplace_back(name, secs.as_number());
            else it->second = std::min(it->second, secs.as_number());
            if (secs.as_number() < round_best) {
                round_best = secs.as_number();
                round_path = name;
            }
        }
        round_lines.push_back(fmt::format("round {}: quiver {:.3f} s, torch {:.3f} s ({}), speedup {:.2f}x", r + 1, s,
                                          round_best, round_path, round_best / s));
    }
    const std::size_t tokens = out.num_tokens;

    // FLOPs per sequence of length L: per layer 2L(4H^2 + 2HI) for projections + 4L^2 H for attention.
    auto cfg_text = storage::read_file(model + "/config.json");
    auto cfg = json::parse(cfg_text ? *cfg_text : std::string("{}"));
    auto num = [&](const char* k) { return cfg && cfg->find(k) ? cfg->find(k)->as_number() : 0.0; };
    const double H = num("hidden_size"), I = num("intermediate_size"), NL = num("num_hidden_layers");
    const double L = static_cast<double>(tokens) / static_cast<double>(o.texts);
    const double flops = static_cast<double>(o.texts) * NL * (2 * L * (4 * H * H + 2 * H * I) + 4 * L * L * H);
    const double mhz = cpu_mhz();
    const double peak = static_cast<double>(o.threads) * 8 * 2 * 2 * mhz * 1e6;  // AVX2: 8 lanes, 2 FMA units

    struct Row {
        std::string engine;
        double seconds;
    };
    std::vector<Row> rows{{"quiver", quiver_s}};
    std::sort(torch_best.begin(), torch_best.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    for (const auto& [name, secs] : torch_best) rows.push_back({"torch (" + name + ")", secs});
    double max_diff = -1.0;
    if (torch) {
        // The peer writes the output of its fastest path of the last round.
        auto bytes = storage::read_file(out_path);
        if (bytes && bytes->size() == out.dense.values.size() * 4) {
            max_diff = 0.0;
            const auto* t = reinterpret_cast<const float*>(bytes->data());
            for (std::size_t i = 0; i < out.dense.values.size(); ++i) {
                max_diff = std::max(max_diff, static_cast<double>(std::abs(t[i] - out.dense.values[i])));
            }
        }
    }

    std::printf("encode: %s, %zu texts x %.0f tokens, batch %zu, %zu threads, best of %zu alternating rounds\n",
                model.c_str(), o.texts, L, o.batch, o.threads, o.repeat);
    for (const std::string& line : round_lines) std::printf("%s\n", line.c_str());
    std::printf("peak FLOP/s: %zu cores x 8 lanes x 2 FMA x 2 flops x %.0f MHz = %.1f GFLOP/s\n", o.threads, mhz,
                peak / 1e9);
    std::printf("%-20s %9s %10s %12s %10s %8s %8s\n", "engine", "seconds", "seq/s", "tokens/s", "GFLOP/s", "%peak",
                "speedup");
    for (const Row& r : rows) {
        std::printf("%-20s %9.3f %10.1f %12.0f %10.1f %7.1f%% %7.2fx\n", r.engine.c_str(), r.seconds,
                    static_cast<double>(o.texts) / r.seconds, static_cast<double>(tokens) / r.seconds,
                    flops / r.seconds / 1e9, 100.0 * flops / r.seconds / peak, r.seconds / quiver_s);
    }
    if (max_diff >= 0) std::printf("max |quiver - torch| over %zu x %zu outputs: %.3g\n", out.dense.rows, out.dense.dim, max_diff);
    if (!o.json_out.empty()) {
        json::Value j = json::Value::object();
        j.set("texts", json::Value::number(static_cast<double>(o.texts)));
        j.set("tokens", json::Value::number(static_cast<double>(tokens)));
        j.set("peak_gflops", json::Value::number(peak / 1e9));
        j.set("max_abs_diff", json::Value::number(max_diff));
        json::Value arr = json::Value::array();
        for (const Row& r : rows) {
            json::Value x = json::Value::object();
            x.set("engine", json::Value::string(r.engine));
            x.set("seconds", json::Value::number(r.seconds));
            x.set("seq_per_s", json::Value::number(static_cast<double>(o.texts) / r.seconds));
            x.set("gflops", json::Value::number(flops / r.seconds / 1e9));
            arr.as_array().push_back(std::move(x));
        }
        j.set("rows", std::move(arr));
        std::ofstream(o.json_out) << json::dump(j, true) << "\n";
    }
    return 0;
}

int run_encode(int argc, char** argv) {
    CLI::App app{"quiver's BERT encoder vs PyTorch (same weights, token ids, threads, batch, lengths)"};
    Options o;
    app.add_option("--model", o.model, "BERT model folder (default: a MiniLM-L6-shaped random model)");
    app.add_option("--peer", o.peer, "torch | none")->capture_default_str();
    app.add_option("--python", o.python, "Python with torch (Debian python3-torch)")->capture_default_str();
    app.add_option("--work-dir", o.work_dir, "Scratch folder (random model, ids, peer outputs)")->capture_default_str();
    app.add_option("--texts", o.texts, "Number of texts")->capture_default_str();
    app.add_option("--seq-len", o.seq_len, "Tokens per text (special tokens included)")->capture_default_str();
    app.add_option("--batch", o.batch, "Sequences per forward pass")->capture_default_str();
    app.add_option("--threads", o.threads, "Threads for both engines")->capture_default_str();
    app.add_option("--repeat", o.repeat, "Alternating timed rounds (best per engine is reported)")->capture_default_str();
    app.add_option("--json", o.json_out, "Also write the results as JSON");
    CLI11_PARSE(app, argc, argv);
    if (o.texts == 0 || o.seq_len < 4 || o.batch == 0 || o.threads == 0 || o.repeat == 0) {
        std::fprintf(stderr, "quiver bench encode: error: --texts, --batch, --threads, --repeat must be > 0, --seq-len >= 4\n");
        return 2;
    }
    return run(o);
}

const BenchRegistrar kReg{"encode", "BERT encoder throughput vs PyTorch (MiniLM-L6 shape by default)", &run_encode};

}  // namespace
}  // namespace quiver::bench
