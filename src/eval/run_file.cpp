#include "quiver/eval/run_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_set>

#include "eval/dataset_internal.h"
#include "quiver/storage/file_format.h"

namespace quiver::eval {

std::string format_run(const Run& run, std::string_view tag) {
    std::string out;
    std::vector<const RunEntry*> entries;
    for (const auto& [qid, list] : run) {
        entries.clear();
        for (const RunEntry& e : list) entries.push_back(&e);
        std::sort(entries.begin(), entries.end(), [](const RunEntry* a, const RunEntry* b) {
            return a->score > b->score || (a->score == b->score && a->doc_id > b->doc_id);
        });
        for (std::size_t i = 0; i < entries.size(); ++i) {
            out += fmt::format("{} Q0 {} {} {:.9g} {}\n", qid, entries[i]->doc_id, i + 1, entries[i]->score, tag);
        }
    }
    return out;
}

Status write_run(const std::string& path, const Run& run, std::string_view tag) {
    if (tag.empty() || tag.find_first_of(" \t\n") != std::string_view::npos) {
        return invalid_argument(fmt::format("run tag '{}' must be one non-empty word", tag));
    }
    const std::string text = format_run(run, tag);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return errno_error("writing run file", path);
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok) return errno_error("writing run file", path);
    return ok_status();
}

Result<Run> parse_run(std::string_view text, std::string_view name) {
    Run run;
    std::unordered_set<std::string> seen;  // "qid\tdocid"
    QUIVER_TRY(detail::for_each_line(text, [&](std::size_t line_no, std::string_view line) -> Status {
        std::string_view cols[7];
        std::size_t n = 0;
        std::size_t i = 0;
        while (i < line.size() && n < 7) {
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
            if (i >= line.size()) break;
            const std::size_t s = i;
            while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
            cols[n++] = line.substr(s, i - s);
        }
        if (n == 0) return ok_status();
        if (n != 6) {
            return invalid_argument(fmt::format("{}:{}: expected 6 columns 'qid Q0 docid rank score tag', got {}",
                                                name, line_no, n));
        }
        double score = 0.0;
        const auto [ptr, ec] = std::from_chars(cols[4].data(), cols[4].data() + cols[4].size(), score);
        if (ec != std::errc() || ptr != cols[4].data() + cols[4].size() || !std::isfinite(score)) {
            return invalid_argument(fmt::format("{}:{}: score '{}' is not a finite number", name, line_no, cols[4]));
        }
        std::string key = fmt::format("{}\t{}", cols[0], cols[2]);
        if (!seen.insert(std::move(key)).second) {
            return invalid_argument(fmt::format("{}:{}: document '{}' repeated for query '{}'", name, line_no,
                                                cols[2], cols[0]));
        }
        run[std::string(cols[0])].push_back({std::string(cols[2]), score});
        return ok_status();
    }));
    return run;
}

Result<Run> read_run(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    return parse_run(text, path);
}

}  // namespace quiver::eval
