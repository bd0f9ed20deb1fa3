// `quiver tokenize`: the token ids and tokens of every text of a JSONL file, with a model's Hugging
// Face tokenizer (tokenizer.json, or a BERT vocab.txt), for users and for checks against the
// `tokenizers` library.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/storage/file_format.h"
#include "quiver/text/wordpiece.h"

namespace quiver::cli {
namespace {

namespace fs = std::filesystem;

struct TokenizeCliOptions {
    std::string model;
    std::string input;
    std::string output;
    std::size_t max_length = 0;
    bool no_special_tokens = false;
    bool json = false;
};

// --model: a tokenizer.json, or a folder holding tokenizer.json or vocab.txt (lower-cased unless
// tokenizer_config.json says do_lower_case: false).
Result<text::HfTokenizer> load_tokenizer(const std::string& model) {
    std::error_code ec;
    if (!fs::is_directory(model, ec)) {
        if (!fs::exists(model, ec)) return not_found(fmt::format("--model '{}' does not exist", model));
        return text::HfTokenizer::load(model);
    }
    const std::string dir = model;
    if (fs::exists(fs::path(dir) / "tokenizer.json", ec)) return text::HfTokenizer::load((fs::path(dir) / "tokenizer.json").string());
    if (fs::exists(fs::path(dir) / "vocab.txt", ec)) {
        bool lower = true;
        const std::string config = (fs::path(dir) / "tokenizer_config.json").string();
        if (fs::exists(config, ec)) {
            QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(config));
            auto doc = json::parse(text);
            if (!doc) return std::move(doc).error().with_context(fmt::format("reading '{}'", config));
            if (const json::Value* l = doc->find("do_lower_case"); l != nullptr && l->is_bool()) lower = l->as_bool();
        }
        return text::HfTokenizer::from_vocab_txt((fs::path(dir) / "vocab.txt").string(), lower);
    }
    return not_found(fmt::format("model folder '{}' has neither tokenizer.json nor vocab.txt", dir));
}

Status run_tokenize(const TokenizeCliOptions& o) {
    QUIVER_ASSIGN_OR_RETURN(text::HfTokenizer tok, load_tokenizer(o.model));
    QUIVER_ASSIGN_OR_RETURN(std::string data, storage::read_file(o.input));
    const auto t0 = std::chrono::steady_clock::now();
    std::string out;
    std::vector<std::string> ids;
    std::size_t total_tokens = 0;
    std::size_t pos = 0;
    std::size_t line_no = 0;
    while (pos < data.size()) {
        std::size_t end = data.find('\n', pos);
        if (end == std::string::npos) end = data.size();
        const std::string_view line(data.data() + pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        auto where = [&] { return fmt::format("'{}' line {}", o.input, line_no); };
        auto doc = json::parse(line);
        if (!doc) return std::move(doc).error().with_context(where());
        if (!doc->is_object()) return invalid_argument(fmt::format("{}: not a JSON object", where()));
        const json::Value* id = doc->find("_id");
        if (id == nullptr) id = doc->find("id");
        const json::Value* text = doc->find("text");
        if (text == nullptr || !text->is_string()) return invalid_argument(fmt::format("{}: no string \"text\" field", where()));
        std::string t;
        if (const json::Value* title = doc->find("title"); title != nullptr && title->is_string() &&
                                                         !title->as_string().empty()) {
            t = title->as_string() + " ";
        }
        t += text->as_string();
        ids.push_back(id == nullptr ? std::to_string(ids.size()) : (id->is_string() ? id->as_string() : json::dump(*id)));
        auto enc = tok.encode_full(t, !o.no_special_tokens, o.max_length);
        if (!enc) return std::move(enc).error().with_context(where());
        total_tokens += enc->ids.size();
        out += "{\"id\":";
        json::append_quoted(out, ids.back());
        out += ",\"ids\":[";
        for (std::size_t i = 0; i < enc->ids.size(); ++i) {
            if (i > 0) out += ',';
            out += std::to_string(enc->ids[i]);
        }
        out += "],\"tokens\":[";
        for (std::size_t i = 0; i < enc->tokens.size(); ++i) {
            if (i > 0) out += ',';
            json::append_quoted(out, enc->tokens[i]);
        }
        out += "]}\n";
    }
    QUIVER_TRY(check_unique_ids(ids, o.input, "line"));
    QUIVER_TRY(write_text(o.output, out));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (o.json) {
        std::string summary = "{\"texts\":" + std::to_string(ids.size()) + ",\"tokens\":" + std::to_string(total_tokens) +
                              ",\"seconds\":";
        json::append_number(summary, secs);
        summary += ",\"output\":";
        json::append_quoted(summary, o.output);
        summary += "}\n";
        std::fputs(summary.c_str(), stdout);
    } else {
        std::fprintf(stderr, "quiver tokenize: %zu texts, %zu tokens in %.2f s -> %s\n", ids.size(), total_tokens, secs,
                     o.output.c_str());
    }
    return ok_status();
}

void add_tokenize_command(CLI::App& app) {
    auto opts = std::make_shared<TokenizeCliOptions>();
    auto* sub = app.add_subcommand(
        "tokenize",
        "Tokenize a JSONL file with a model's Hugging Face tokenizer (tokenizer.json or vocab.txt)\n"
        "  input records: {\"_id\" or \"id\": ..., \"title\": ..., \"text\": ...} (title + \" \" + text, as encode)\n"
        "  output: one line per record {\"id\": ..., \"ids\": [...], \"tokens\": [...]}");
    sub->add_option("--model", opts->model, "Model folder, or a tokenizer.json file")->required();
    sub->add_option("--input", opts->input, "texts.jsonl")->required();
    sub->add_option("-o,--output", opts->output, "tokens.jsonl ('-' for stdout)")->required();
    sub->add_option("--max-length", opts->max_length,
                    "Truncate to this many ids, special tokens included (0 = tokenizer.json's truncation, or none)")
        ->capture_default_str();
    sub->add_flag("--no-special-tokens", opts->no_special_tokens,
                  "Leave out the post-processor's special tokens ([CLS], [SEP], <s>, ...)");
    sub->add_flag("--json", opts->json, "Print a JSON summary {texts, tokens, seconds, output} on stdout");
    sub->footer("Equal to the Hugging Face tokenizers library's encode(text, add_special_tokens) (see\n"
                "docs/encoders.md); duplicate ids in the input are an error.\n"
                "Example: quiver tokenize --model bge-small/ --input queries.jsonl --output tokens.jsonl");
    set_status_action(sub, "tokenize", [opts] { return run_tokenize(*opts); });
}

}  // namespace

static const CommandRegistrar kReg{52, &add_tokenize_command};

}  // namespace quiver::cli
