// `quiver bench encode`: quiver's transformer runtime against ONNX Runtime (onnxruntime-node, through
// bench/encode/ort_peer.js) and PyTorch (bench/encode/torch_peer.py) on the same weights, token ids,
// threads and batches, in one run. Three shapes by default: batch 32 x 128 tokens (throughput),
// batch 1 x 16 tokens (query latency: p50 / p99 over single-text calls) and batch 8 x 512 tokens.
// Reports sequences/s, tokens/s, GFLOP/s, the share of the machine's nominal peak FLOP/s, and the
// largest absolute difference between each peer's output and quiver's. Rounds alternate the engines
// (quiver, then each peer) so all see the same machine load; the best round per engine is reported.
//
// Without --model, a MiniLM-L6-shaped random model (6 layers, hidden 384, 12 heads, intermediate
// 1536, 30522-token vocab) and its ONNX export are written by scripts/make_encoder_fixtures.py into
// --work-dir. --int8 adds a row for quiver's dynamic int8 mode (LoadOptions::int8).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "quiver/core/json.h"
#include "quiver/encode/encoder.h"
#include "quiver/simd/kernels.h"
#include "quiver/storage/file_format.h"
#include "quiver/text/wordpiece.h"
#include "registry.h"

namespace quiver::bench {
namespace {

namespace fs = std::filesystem;

struct Options {
    std::string model;
    std::string peers = "onnxruntime,torch";
    std::string python = "/usr/bin/python3";
    std::string node = "node";
    std::string work_dir = "/tmp/quiver-bench-encode";
    std::string shapes = "32x128,1x16,8x512";
    std::size_t texts = 0;  // per shape; 0 = 8 batches (throughput) or 200 calls (batch 1)
    std::size_t threads = 2;
    std::size_t repeat = 3;
    bool int8 = false;
    std::string texts_file;  // JSONL with "title"/"text" (real text: SciFact, ...) instead of random words
    std::string json_out;
};

struct Shape {
    std::size_t batch = 0;
    std::size_t seq_len = 0;
};

// The source tree (for the fixture script and the peers): $QUIVER_SOURCE_DIR, else derived from this
// file's compile-time path (bench/encode/encode_bench.cpp), which Ninja gives relative to the build
// folder (the parent of bin/, where quiver-bench is).
std::string source_dir() {
    if (const char* env = std::getenv("QUIVER_SOURCE_DIR"); env != nullptr && *env != 0) return env;
    fs::path src = fs::path(__FILE__).parent_path().parent_path().parent_path();
    if (src.is_relative()) {
        std::error_code ec;
        const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
        if (!ec) src = exe.parent_path().parent_path() / src;
    }
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(src, ec);
    return (ec ? src : canonical).string();
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
        // O_CLOEXEC: a peer started later must not inherit this one's pipe ends, or closing our end
        // would never reach this peer as end of input (and the destructor's waitpid would hang).
        if (::pipe2(to_child, O_CLOEXEC) != 0) return false;
        if (::pipe2(from_child, O_CLOEXEC) != 0) return false;
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

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
    return v[std::min(i, v.size() - 1)];
}

// One engine's best round on one shape.
struct Row {
    std::string engine;
    double seconds = 1e300;          // whole pass (best round)
    std::vector<double> latencies;   // per call / per batch, all rounds (batch 1: p50 / p99)
    double max_diff = -1.0;          // vs quiver float32 (peers, int8)
    double min_cosine = -1.0;        // int8: worst cosine to float32
    double mean_cosine = -1.0;       // int8: mean cosine to float32
};

struct Peer {
    std::string name;
    std::unique_ptr<PeerProcess> proc;
};

int fail(const std::string& msg) {
    std::fprintf(stderr, "quiver bench encode: error: %s\n", msg.c_str());
    return 1;
}

int run(const Options& o) {
    std::string model = o.model;
    std::error_code ec;
    fs::create_directories(o.work_dir, ec);
    if (model.empty()) {
        model = o.work_dir + "/minilm-l6-random";
        if (!fs::exists(model + "/model.safetensors") || !fs::exists(model + "/model.onnx")) {
            std::fprintf(stderr, "writing a MiniLM-L6-shaped random model and its ONNX export to %s\n", model.c_str());
            const std::string cmd = fmt::format("'{}' '{}/scripts/make_encoder_fixtures.py' bench-model '{}' 2>/dev/null",
                                                o.python, source_dir(), model);
            if (run_command(cmd, nullptr) != 0) {
                return fail(fmt::format("'{}' failed (python3-torch installed? scripts/install-deps --with-torch)", cmd));
            }
        }
    }
    auto tok = text::HfTokenizer::load(model + "/tokenizer.json");
    if (!tok) return fail(tok.error().to_string());
    auto cfg_text = storage::read_file(model + "/config.json");
    auto cfg = json::parse(cfg_text ? *cfg_text : std::string("{}"));
    auto num = [&](const char* k) { return cfg && cfg->find(k) ? cfg->find(k)->as_number() : 0.0; };
    const double H = num("hidden_size"), I = num("intermediate_size"), NL = num("num_hidden_layers");

    // Peers: started once (model loaded, warmed up by their first request), then fed one request per round.
    std::vector<Peer> peers;
    for (const std::string& name : split(o.peers, ',')) {
        if (name == "none") continue;
        std::string cmd;
        if (name == "onnxruntime") {
            if (!fs::exists(model + "/model.onnx")) {
                return fail(fmt::format("'{}/model.onnx' is missing (scripts/make_encoder_fixtures.py onnx '{}')", model, model));
            }
            cmd = fmt::format("'{}' '{}/bench/encode/ort_peer.js' --modules '{}/tools/node_modules' --model '{}/model.onnx' "
                              "--threads {} --serve", o.node, source_dir(), source_dir(), model, o.threads);
        } else if (name == "torch") {
            cmd = fmt::format("OMP_NUM_THREADS={} '{}' '{}/bench/encode/torch_peer.py' --model '{}' --threads {} --serve",
                              o.threads, o.python, source_dir(), model, o.threads);
        } else {
            std::fprintf(stderr, "quiver bench encode: error: unknown peer '%s' (onnxruntime, torch, none)\n", name.c_str());
            return 2;
        }
        Peer p{name, std::make_unique<PeerProcess>()};
        if (!p.proc->start(cmd) || p.proc->exchange("").find("ready") == std::string::npos) {
            return fail(fmt::format("the {} peer did not start: {}", name, cmd));
        }
        peers.push_back(std::move(p));
    }

    const double mhz = cpu_mhz();
    const simd::SimdLevel level = simd::active_simd_level();
    const double lanes = level == simd::SimdLevel::kAvx512 ? 16 : level == simd::SimdLevel::kAvx2 ? 8 : 1;
    const double peak = static_cast<double>(o.threads) * lanes * 2 * 2 * mhz * 1e6;
    std::printf("encode: %s, %zu threads per engine, best of %zu alternating rounds (machine load: see uptime)\n",
                model.c_str(), o.threads, o.repeat);
    std::printf("peak FLOP/s: %zu cores x %.0f lanes x 2 FMA x 2 flops x %.0f MHz (nominal) = %.1f GFLOP/s\n", o.threads,
                lanes, mhz, peak / 1e9);
    json::Value report = json::Value::array();

    for (const std::string& spec : split(o.shapes, ',')) {
        Shape shape;
        if (std::sscanf(spec.c_str(), "%zux%zu", &shape.batch, &shape.seq_len) != 2 || shape.batch == 0 ||
            shape.seq_len < 4) {
            std::fprintf(stderr, "quiver bench encode: error: bad shape '%s' (BATCHxTOKENS, e.g. 32x128)\n", spec.c_str());
            return 2;
        }
        const bool latency = shape.batch == 1;
        std::size_t n = o.texts != 0 ? o.texts : latency ? 200 : 8 * shape.batch;
        // Random-word texts of exactly seq_len tokens (truncated), so every engine sees the same shapes;
        // or the first n real texts, sorted longest first (every engine gets the same length-bucketed
        // batches: ONNX Runtime and PyTorch pad each batch to its longest text).
        std::vector<std::string> texts;
        if (o.texts_file.empty()) {
            texts = make_texts(*tok, n, shape.seq_len);
        } else {
            std::ifstream in(o.texts_file);
            std::string line;
            while (texts.size() < n && std::getline(in, line)) {
                auto doc = json::parse(line);
                if (!doc || !doc->is_object()) continue;
                std::string t;
                for (const char* key : {"title", "text"}) {
                    if (const json::Value* v = doc->find(key); v != nullptr && v->is_string() && !v->as_string().empty()) {
                        if (!t.empty()) t += ' ';
                        t += v->as_string();
                    }
                }
                if (!t.empty()) texts.push_back(std::move(t));
            }
            if (texts.empty()) return fail(fmt::format("no texts in '{}'", o.texts_file));
            std::vector<std::pair<std::size_t, std::string>> keyed;
            for (std::string& t : texts) {
                auto ids = tok->encode(t, shape.seq_len);
                keyed.emplace_back(ids ? ids->size() : 0, std::move(t));
            }
            std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
            texts.clear();
            for (auto& [len, t] : keyed) texts.push_back(std::move(t));
        }
        n = texts.size();
        std::vector<std::string_view> views(texts.begin(), texts.end());
        const std::string ids_path = fmt::format("{}/ids-{}x{}.bin", o.work_dir, shape.batch, shape.seq_len);
        double flops = 0.0;
        std::size_t tokens = 0;
        {
            std::ofstream f(ids_path, std::ios::binary);
            const auto n32 = static_cast<std::uint32_t>(n);
            const auto width = static_cast<std::uint32_t>(shape.seq_len);
            f.write(reinterpret_cast<const char*>(&n32), 4);
            f.write(reinterpret_cast<const char*>(&width), 4);
            std::vector<std::int32_t> lengths;
            for (const std::string& t : texts) {
                auto ids = tok->encode(t, shape.seq_len);
                std::vector<std::int32_t> row = ids ? *ids : std::vector<std::int32_t>{};
                const double L = static_cast<double>(row.size());
                flops += NL * (2 * L * (4 * H * H + 2 * H * I) + 4 * L * L * H);
                tokens += row.size();
                lengths.push_back(static_cast<std::int32_t>(row.size()));
                row.resize(shape.seq_len, 0);
                f.write(reinterpret_cast<const char*>(row.data()), static_cast<std::streamsize>(row.size() * 4));
            }
            f.write(reinterpret_cast<const char*>(lengths.data()), static_cast<std::streamsize>(lengths.size() * 4));
        }

        std::vector<Row> rows;
        struct QuiverEngine {
            std::string name;
            std::unique_ptr<encode::Encoder> enc;
        };
        std::vector<QuiverEngine> engines;
        for (bool int8 : {false, true}) {
            if (int8 && !o.int8) continue;
            encode::LoadOptions lo;
            lo.threads = o.threads;
            lo.batch = shape.batch;
            lo.max_length = shape.seq_len;
            lo.int8 = int8;
            auto enc = encode::load_encoder(model, lo);
            if (!enc) return fail(enc.error().to_string());
            // Warm-up (page in weights, grow workspaces).
            (void)(*enc)->encode(std::span(views).first(std::min(views.size(), shape.batch * o.threads)), {});
            engines.push_back({int8 ? "quiver int8" : "quiver", std::move(*enc)});
            rows.push_back({engines.back().name});
        }
        for (const Peer& p : peers) rows.push_back({p.name});
        std::vector<encode::Embeddings> outs(engines.size());
        const std::string out_path = fmt::format("{}/peer-out-{}x{}.bin", o.work_dir, shape.batch, shape.seq_len);

        for (std::size_t r = 0; r < o.repeat; ++r) {
            for (std::size_t e = 0; e < engines.size(); ++e) {
                Row& row = rows[e];
                const auto t0 = std::chrono::steady_clock::now();
                if (latency) {
                    // One call per text: a query's latency, as a server sees it.
                    encode::Embeddings all;
                    all.dense = Matrix<float>(n, (*engines[e].enc).info().dim);
                    for (std::size_t i = 0; i < n; ++i) {
                        const auto c0 = std::chrono::steady_clock::now();
                        auto one = engines[e].enc->encode(std::span(views).subspan(i, 1), {});
                        row.latencies.push_back(
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count());
                        if (!one) return fail(one.error().to_string());
                        std::copy(one->dense.values.begin(), one->dense.values.end(), all.dense.row_ptr(i));
                        all.num_tokens += one->num_tokens;
                    }
                    outs[e] = std::move(all);
                } else {
                    auto all = engines[e].enc->encode(views, {});
                    if (!all) return fail(all.error().to_string());
                    outs[e] = std::move(*all);
                }
                row.seconds = std::min(row.seconds,
                                       std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
            for (std::size_t pi = 0; pi < peers.size(); ++pi) {
                Row& row = rows[engines.size() + pi];
                json::Value req = json::Value::object();
                req.set("ids", json::Value::string(ids_path));
                req.set("batch", json::Value::number(static_cast<double>(shape.batch)));
                req.set("out", json::Value::string(out_path));
                const std::string reply = peers[pi].proc->exchange(json::dump(req, false));
                auto res = json::parse(reply);
                const json::Value* paths = res ? res->find("paths") : nullptr;
                if (paths == nullptr || !paths->is_object() || paths->as_object().empty()) {
                    return fail(fmt::format("unexpected {} peer output: {}", peers[pi].name, reply));
                }
                // A peer with several code paths (PyTorch: fastpath, eager) reports its fastest.
                const json::Value* best = nullptr;
                std::string best_name;
                for (const auto& [name, v] : paths->as_object()) {
                    if (best == nullptr || v.find("seconds")->as_number() < best->find("seconds")->as_number()) {
                        best = &v;
                        best_name = name;
                    }
                }
                const double secs = best->find("seconds")->as_number();
                if (secs < row.seconds) {
                    row.seconds = secs;
                    if (paths->as_object().size() > 1) row.engine = peers[pi].name + " (" + best_name + ")";
                }
                for (const auto& b : best->find("batches")->as_array()) row.latencies.push_back(b.as_number());
                // Output agreement (the peer wrote its embeddings in text order).
                auto bytes = storage::read_file(out_path);
                const auto& ref = outs[0].dense.values;
                if (bytes && bytes->size() == ref.size() * 4) {
                    const auto* t = reinterpret_cast<const float*>(bytes->data());
                    double m = 0.0;
                    for (std::size_t i = 0; i < ref.size(); ++i) m = std::max(m, static_cast<double>(std::abs(t[i] - ref[i])));
                    row.max_diff = m;
                }
            }
        }
        if (engines.size() > 1) {
            // int8 vs float32: largest difference and worst cosine.
            const auto& a = outs[0].dense;
            const auto& b = outs[1].dense;
            double m = 0.0, worst = 1.0, sum = 0.0;
            for (std::size_t i = 0; i < a.rows; ++i) {
                double dot = 0, na = 0, nb = 0;
                for (std::size_t j = 0; j < a.dim; ++j) {
                    const double x = a.row_ptr(i)[j], y = b.row_ptr(i)[j];
                    m = std::max(m, std::abs(x - y));
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                }
                worst = std::min(worst, dot / std::sqrt(na * nb));
                sum += dot / std::sqrt(na * nb);
            }
            rows[1].max_diff = m;
            rows[1].min_cosine = worst;
            rows[1].mean_cosine = sum / static_cast<double>(a.rows);
        }

        std::printf("\nbatch %zu x %zu tokens: %zu texts, %zu tokens, %.1f GFLOP per pass\n", shape.batch, shape.seq_len, n,
                    tokens, flops / 1e9);
        std::printf("%-22s %9s %9s %10s %9s %7s %8s %9s %9s %10s\n", "engine", "seconds", "seq/s", "tokens/s", "GFLOP/s",
                    "%peak", "vs ORT", latency ? "p50 ms" : "", latency ? "p99 ms" : "", "max|diff|");
        double ort_s = 0.0;
        for (const Row& row : rows) {
            if (row.engine.rfind("onnxruntime", 0) == 0) ort_s = row.seconds;
        }
        json::Value shape_json = json::Value::object();
        shape_json.set("batch", json::Value::number(static_cast<double>(shape.batch)));
        shape_json.set("seq_len", json::Value::number(static_cast<double>(shape.seq_len)));
        shape_json.set("texts", json::Value::number(static_cast<double>(n)));
        shape_json.set("tokens", json::Value::number(static_cast<double>(tokens)));
        json::Value arr = json::Value::array();
        for (const Row& row : rows) {
            const double p50 = percentile(row.latencies, 0.5) * 1e3;
            const double p99 = percentile(row.latencies, 0.99) * 1e3;
            std::printf("%-22s %9.3f %9.1f %10.0f %9.1f %6.1f%% %7s %9s %9s %10s\n", row.engine.c_str(), row.seconds,
                        static_cast<double>(n) / row.seconds, static_cast<double>(tokens) / row.seconds,
                        flops / row.seconds / 1e9, 100.0 * flops / row.seconds / peak,
                        ort_s > 0 ? fmt::format("{:.2f}x", ort_s / row.seconds).c_str() : "-",
                        latency ? fmt::format("{:.2f}", p50).c_str() : "", latency ? fmt::format("{:.2f}", p99).c_str() : "",
                        row.max_diff >= 0 ? fmt::format("{:.2g}", row.max_diff).c_str() : "-");
            json::Value x = json::Value::object();
            x.set("engine", json::Value::string(row.engine));
            x.set("seconds", json::Value::number(row.seconds));
            x.set("seq_per_s", json::Value::number(static_cast<double>(n) / row.seconds));
            x.set("tokens_per_s", json::Value::number(static_cast<double>(tokens) / row.seconds));
            x.set("gflops", json::Value::number(flops / row.seconds / 1e9));
            x.set("peak_share", json::Value::number(flops / row.seconds / peak));
            if (latency) {
                x.set("p50_ms", json::Value::number(p50));
                x.set("p99_ms", json::Value::number(p99));
            }
            x.set("max_abs_diff", json::Value::number(row.max_diff));
            if (row.min_cosine >= 0) x.set("min_cosine", json::Value::number(row.min_cosine));
            if (row.mean_cosine >= 0) x.set("mean_cosine", json::Value::number(row.mean_cosine));
            arr.as_array().push_back(std::move(x));
        }
        if (rows.size() > 1 && rows[1].min_cosine >= 0) {
            std::printf("quiver int8 vs float32 over %zu texts: mean cosine %.5f, worst %.5f\n", n, rows[1].mean_cosine,
                        rows[1].min_cosine);
        }
        std::fflush(stdout);  // each shape's table as soon as it is measured (runs are long on a loaded machine)
        shape_json.set("rows", std::move(arr));
        report.as_array().push_back(std::move(shape_json));
    }
    if (!o.json_out.empty()) std::ofstream(o.json_out) << json::dump(report, true) << "\n";
    return 0;  // the peers see end of input and exit when their pipes close
}

int run_encode(int argc, char** argv) {
    CLI::App app{"quiver's transformer runtime vs ONNX Runtime and PyTorch (same weights, token ids, threads, batches)"};
    Options o;
    app.add_option("--model", o.model, "Model folder with model.onnx for ONNX Runtime (default: a MiniLM-L6-shaped random model)");
    app.add_option("--peers", o.peers, "Comma-separated: onnxruntime, torch, none")->capture_default_str();
    app.add_option("--python", o.python, "Python with torch (Debian python3-torch)")->capture_default_str();
    app.add_option("--node", o.node, "Node.js for onnxruntime-node (tools/node_modules)")->capture_default_str();
    app.add_option("--work-dir", o.work_dir, "Scratch folder (random model, ids, peer outputs)")->capture_default_str();
    app.add_option("--shapes", o.shapes, "Comma-separated BATCHxTOKENS; batch 1 reports p50/p99 latency")->capture_default_str();
    app.add_option("--texts", o.texts, "Texts per shape (0: 8 batches, or 200 calls at batch 1)")->capture_default_str();
    app.add_option("--threads", o.threads, "Threads for every engine")->capture_default_str();
    app.add_option("--repeat", o.repeat, "Alternating timed rounds (best per engine is reported)")->capture_default_str();
    app.add_flag("--int8", o.int8, "Also time quiver's dynamic int8 mode (and its drift from float32)");
    app.add_option("--texts-file", o.texts_file, "JSONL of real texts (title + text fields), e.g. SciFact's corpus.jsonl");
    app.add_option("--json", o.json_out, "Also write the results as JSON");
    CLI11_PARSE(app, argc, argv);
    if (o.threads == 0 || o.repeat == 0) {
        std::fprintf(stderr, "quiver bench encode: error: --threads and --repeat must be > 0\n");
        return 2;
    }
    return run(o);
}

const BenchRegistrar kReg{"encode", "transformer encoder vs ONNX Runtime and PyTorch (MiniLM-L6 shape by default)",
                          &run_encode};

}  // namespace
}  // namespace quiver::bench
