/// @file analyzer.h
/// @brief Lexical analysis for BM25: a Lucene EnglishAnalyzer-equivalent token chain.
///
/// The default chain is Lucene's (and Anserini's default) English analysis:
///   StandardTokenizer (Unicode word segmentation, UAX #29 rules for letters, digits, apostrophes,
///   periods and commas inside words; ideographs and kana one character each; tokens capped at 255
///   code points) -> EnglishPossessiveFilter (drops a trailing 's) -> LowerCaseFilter -> StopFilter
///   (Lucene's 33-word English set) -> PorterStemFilter (libstemmer's "porter", the original Porter
///   algorithm Lucene implements).
/// Every step can be switched off or changed in `AnalyzerConfig`, per field if a caller keeps one
/// analyzer per field. Input must be UTF-8; invalid bytes act as separators.
///
/// Thread-safety: an Analyzer holds a libstemmer instance and scratch space, so one Analyzer must not
/// be used by two threads at once. Create one per thread (cheap: one small allocation).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::text {

enum class StopWords : std::uint8_t {
    kNone = 0,
    kLuceneEnglish = 1,  ///< EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (33 words)
};

struct AnalyzerConfig {
    bool lowercase = true;
    bool english_possessive = true;
    StopWords stop_words = StopWords::kLuceneEnglish;
    /// A libstemmer algorithm name ("porter", "english", ...) or "" for no stemming.
    std::string stemmer = "porter";
    std::uint32_t max_token_length = 255;  ///< in code points; longer runs are split, as Lucene does

    /// "lucene-english" for the default; otherwise a compact description for reports.
    std::string describe() const;
    /// Equal configurations analyse every text to the same tokens.
    bool operator==(const AnalyzerConfig&) const = default;
};

/// Splits UTF-8 text into word tokens following StandardTokenizer's rules (no filtering). Exposed
/// for tests and for other analyzers.
void tokenize_standard(std::string_view text, std::uint32_t max_token_length,
                       std::vector<std::string>& out);

/// True when `word` (already lower-cased) is in the chosen stop set.
bool is_stop_word(StopWords set, std::string_view word) noexcept;

class Analyzer {
public:
    /// kInvalidArgument when the stemmer name is unknown to libstemmer or max_token_length is 0.
    [[nodiscard]] static Result<Analyzer> create(AnalyzerConfig config);

    Analyzer(Analyzer&&) noexcept;
    Analyzer& operator=(Analyzer&&) noexcept;
    ~Analyzer();

    const AnalyzerConfig& config() const noexcept { return config_; }

    /// Appends the analysed terms of `text` to `out` (not cleared), in order, duplicates kept.
    void analyze(std::string_view text, std::vector<std::string>& out);
    std::vector<std::string> analyze(std::string_view text) {
        std::vector<std::string> out;
        analyze(text, out);
        return out;
    }

    /// The terms of `texts`, analysed in order as analyze() would, counted: `out` (cleared) gets each
    /// distinct term once, in byte-wise order, with its number of occurrences. Returns the number of
    /// terms, repeats included. Equal to sorting analyze()'s terms and counting the runs; terms the
    /// thread's memo holds are counted in place (no string per token), the others (once the memo is
    /// full) are copied and sorted. Exception-safe: a call that throws leaves no counts behind.
    std::uint64_t analyze_counts(std::span<const std::string_view> texts,
                                 std::vector<std::pair<std::string, std::uint32_t>>& out);

private:
    struct StemmerDeleter {
        void operator()(void* stemmer) const noexcept;
    };
    explicit Analyzer(AnalyzerConfig config) : config_(std::move(config)) {}
    // The filters after the possessive one: lower-casing, stop words ("" when dropped), stemming.
    std::string filter(std::string_view token);
    // The tokenizer, the possessive filter and the thread's memo of filter(): see analyzer.cpp.
    template <class OnRecord, class OnTerm>
    void resolve(std::string_view text, bool may_clear, OnRecord&& on_record, OnTerm&& on_term);

    AnalyzerConfig config_;
    std::unique_ptr<void, StemmerDeleter> stemmer_;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> scratch_;  // token byte spans
};

/// Lower-cases UTF-8 (full Unicode simple case mapping for the BMP via the C library).
std::string to_lower_utf8(std::string_view word);

}  // namespace quiver::text
