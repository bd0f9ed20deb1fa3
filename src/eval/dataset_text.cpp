// TREC (SGML-like) and SMART (.I records) readers.
#include <fmt/format.h>

#include <algorithm>

#include "eval/dataset_internal.h"
#include "quiver/eval/dataset.h"
#include "quiver/storage/file_format.h"

namespace quiver::eval {
namespace {

std::size_t line_of(std::string_view text, std::size_t offset) {
    return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

// Text with SGML tags replaced by spaces.
std::string strip_tags(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool in_tag = false;
    for (char c : s) {
        if (c == '<') {
            in_tag = true;
            out.push_back(' ');
        } else if (c == '>' && in_tag) {
            in_tag = false;
        } else if (!in_tag) {
            out.push_back(c);
        }
    }
    return out;
}

// Content after `open` up to the next '<' (or end), trimmed; npos-safe.
std::string_view field_after(std::string_view rec, std::string_view open) {
    const std::size_t at = rec.find(open);
    if (at == std::string_view::npos) return {};
    const std::size_t start = at + open.size();
    const std::size_t end = std::min(rec.find('<', start), rec.size());
    return detail::trim(rec.substr(start, end - start));
}

std::string normalize_number(std::string_view s) {
    std::size_t i = 0;
    while (i + 1 < s.size() && s[i] == '0') ++i;
    return std::string(s.substr(i));
}

}  // namespace

Result<std::vector<Document>> load_trec_documents(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    std::vector<Document> docs;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t open = text.find("<DOC>", pos);
        if (open == std::string::npos) break;
        const std::size_t close = text.find("</DOC>", open);
        if (close == std::string::npos) {
            return invalid_argument(fmt::format("{}:{}: <DOC> without </DOC>", path, line_of(text, open)));
        }
        const std::string_view rec = std::string_view(text).substr(open + 5, close - open - 5);
        const std::size_t no = rec.find("<DOCNO>");
        const std::size_t no_end = rec.find("</DOCNO>");
        if (no == std::string_view::npos || no_end == std::string_view::npos || no_end < no) {
            return invalid_argument(fmt::format("{}:{}: document without <DOCNO>...</DOCNO>", path, line_of(text, open)));
        }
        Document d;
        d.id = std::string(detail::trim(rec.substr(no + 7, no_end - no - 7)));
        if (d.id.empty()) return invalid_argument(fmt::format("{}:{}: empty <DOCNO>", path, line_of(text, open)));
        std::string body(rec.substr(0, no));
        body += ' ';
        body += rec.substr(no_end + 8);
        d.text = strip_tags(body);
        docs.push_back(std::move(d));
        pos = close + 6;
    }
    if (docs.empty()) return invalid_argument(fmt::format("{}: no <DOC> records", path));
    return docs;
}

Result<std::vector<Query>> load_trec_topics(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    std::vector<Query> queries;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t open = text.find("<top>", pos);
        if (open == std::string::npos) break;
        std::size_t close = text.find("</top>", open);
        if (close == std::string::npos) {
            return invalid_argument(fmt::format("{}:{}: <top> without </top>", path, line_of(text, open)));
        }
        const std::string_view rec = std::string_view(text).substr(open, close - open);
        std::string_view num = field_after(rec, "<num>");
        if (num.rfind("Number:", 0) == 0) num = detail::trim(num.substr(7));
        std::string_view title = field_after(rec, "<title>");
        if (title.rfind("Topic:", 0) == 0) title = detail::trim(title.substr(6));
        if (num.empty()) return invalid_argument(fmt::format("{}:{}: topic without <num>", path, line_of(text, open)));
        queries.push_back({std::string(num), std::string(title)});
        pos = close + 6;
    }
    if (queries.empty()) return invalid_argument(fmt::format("{}: no <top> records", path));
    return queries;
}

namespace {

// A SMART record: `.I n` then fields `.X` each followed by text lines.
struct SmartRecord {
    std::string id;
    std::string fields[26];  // indexed by marker letter
};

Result<std::vector<SmartRecord>> parse_smart(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    std::vector<SmartRecord> records;
    int field = -1;
    const Status parsed = detail::for_each_line(text, [&](std::size_t line_no, std::string_view line) -> Status {
        if (line.size() >= 2 && line[0] == '.' && line[1] >= 'A' && line[1] <= 'Z' &&
            (line.size() == 2 || line[2] == ' ' || line[2] == '\t')) {
            const char marker = line[1];
            if (marker == 'I') {
                const std::string_view id = detail::trim(line.substr(2));
                int n = 0;
                if (!detail::parse_int(id, n) || n < 0) {
                    return invalid_argument(fmt::format("{}:{}: '.I' needs a record number, got '{}'", path, line_no, id));
                }
                records.emplace_back();
                records.back().id = normalize_number(id);
                field = -1;
                return ok_status();
            }
            if (records.empty()) {
                return invalid_argument(fmt::format("{}:{}: field '.{}' before the first '.I'", path, line_no, marker));
            }
            field = marker - 'A';
            const std::string_view rest = detail::trim(line.substr(2));
            if (!rest.empty()) records.back().fields[field] += rest;
            return ok_status();
        }
        if (records.empty() || field < 0) {
            if (detail::trim(line).empty()) return ok_status();
            return invalid_argument(fmt::format("{}:{}: text outside a '.I' record field", path, line_no));
        }
        std::string& f = records.back().fields[field];
        if (!f.empty()) f += ' ';
        f += detail::trim(line);
        return ok_status();
    });
    QUIVER_TRY(parsed);
    if (records.empty()) return invalid_argument(fmt::format("{}: no '.I' records", path));
    return records;
}

}  // namespace

Result<std::vector<Document>> load_smart_documents(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(auto records, parse_smart(path));
    std::vector<Document> docs;
    docs.reserve(records.size());
    for (SmartRecord& r : records) docs.push_back({r.id, std::move(r.fields['T' - 'A']), std::move(r.fields['W' - 'A'])});
    return docs;
}

Result<std::vector<Query>> load_smart_queries(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(auto records, parse_smart(path));
    std::vector<Query> queries;
    queries.reserve(records.size());
    for (SmartRecord& r : records) queries.push_back({r.id, std::move(r.fields['W' - 'A'])});
    return queries;
}

Result<Qrels> load_smart_qrels(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    Qrels qrels;
    const Status parsed = detail::for_each_line(text, [&](std::size_t line_no, std::string_view line) -> Status {
        std::string_view f[4];
        const std::size_t n = detail::split_ws(line, f, 4);
        if (n == 0) return ok_status();
        int grade = 1;
        int q = 0;
        int d = 0;
        if ((n != 2 && n != 3) || !detail::parse_int(f[0], q) || !detail::parse_int(f[1], d) ||
            (n == 3 && !detail::parse_int(f[2], grade))) {
            return invalid_argument(fmt::format("{}:{}: expected 'query doc [grade]' integers", path, line_no));
        }
        // Cleverdon's scale: 1 is a complete answer, 4 of minimum interest; gains 4..1.
        const int rel = (grade >= 1 && grade <= 4) ? 5 - grade : std::min(grade, 0);
        qrels[normalize_number(f[0])][normalize_number(f[1])] = rel;
        return ok_status();
    });
    QUIVER_TRY(parsed);
    if (qrels.empty()) return invalid_argument(fmt::format("{}: no judgments", path));
    return qrels;
}

}  // namespace quiver::eval
