// Shared by the chunked text and chunked vector field tests (chunked_field_test.cpp,
// chunked_vector_test.cpp): the stored documents, their random texts, and the rank check of a page
// against a brute-force order whose ties are known only to within a tolerance.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "quiver/engine/collection.h"

namespace quiver::engine::chunked_test {

struct Stored {
    std::string title;
    std::string text;
    std::string tag;
};

inline Document make(const std::string& id, const Stored& s) {
    Document d;
    d.id = id;
    d.fields["title"] = s.title;
    d.fields["text"] = s.text;
    d.fields["tag"] = s.tag;
    return d;
}

inline constexpr const char* kWords[] = {
    "river",  "stone", "light",  "cloud",  "maple",  "quartz", "ember",  "harbor", "violet", "canyon",
    "meadow", "signal", "copper", "falcon", "glacier", "lantern", "orbit", "prism", "summit", "thunder",
    "willow", "zephyr", "anchor", "beacon", "cinder", "delta",  "echo",   "fable",  "garnet", "hollow",
    "island", "jasper", "kernel", "lagoon", "mirror", "nectar"};
inline constexpr std::size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

// min_len..max_len words, skewed so that terms have different document frequencies, with a sentence
// break every nine words.
inline std::string random_text(std::mt19937& rng, std::size_t min_len, std::size_t max_len) {
    std::uniform_int_distribution<std::size_t> len(min_len, max_len);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::string out;
    const std::size_t n = len(rng);
    for (std::size_t i = 0; i < n; ++i) {
        const auto w = static_cast<std::size_t>(std::pow(u(rng), 1.7) * kNumWords) % kNumWords;
        if (!out.empty()) out += (i % 9 == 8) ? ". " : " ";
        out += kWords[w];
    }
    return out;
}

// Relative closeness at `tolerance` (scores whose last bits may differ between paths).
inline bool near(double a, double b, double tolerance) {
    return std::fabs(a - b) <= tolerance * std::max(1.0, std::fabs(b));
}

// `hits` are ranks [offset, offset + hits.size()) of the full brute-force order `want` (entries with
// id, score and best_chunks; a `chunk` member, when there is one, is named on failure): the same
// scores, each hit a document of the tie group at its rank, with one of its best chunks.
template <typename Expected>
void expect_ranks(const std::vector<SearchHit>& hits, std::size_t offset, const std::vector<Expected>& want,
                  const std::string& what, double tolerance) {
    for (std::size_t i = 0; i < hits.size(); ++i) {
        const std::size_t rank = offset + i;
        ASSERT_LT(rank, want.size()) << what;
        EXPECT_TRUE(near(hits[i].score, want[rank].score, tolerance))
            << what << " rank " << rank << ": " << hits[i].score << " vs " << want[rank].score;
        const auto it = std::find_if(want.begin(), want.end(), [&](const Expected& e) { return e.id == hits[i].id; });
        ASSERT_NE(it, want.end()) << what << " rank " << rank << ": " << hits[i].id << " is not a hit";
        EXPECT_TRUE(near(it->score, want[rank].score, tolerance))
            << what << " rank " << rank << ": " << hits[i].id << " (" << it->score << ") where " << want[rank].id
            << " (" << want[rank].score << ") belongs";
        ASSERT_TRUE(hits[i].chunk.has_value()) << what;
        std::string wanted;
        if constexpr (requires { it->chunk; }) wanted = ", want " + std::to_string(it->chunk);
        EXPECT_NE(std::find(it->best_chunks.begin(), it->best_chunks.end(), *hits[i].chunk), it->best_chunks.end())
            << what << " rank " << rank << ": " << hits[i].id << " chunk " << *hits[i].chunk << wanted;
    }
}

}  // namespace quiver::engine::chunked_test
