// The reference for Analyzer::analyze_counts in the text tests: analyze() each text in order, sort the
// terms and count the runs.
#pragma once

#include "quiver/text/analyzer.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace quiver::text::testing {

using Counts = std::vector<std::pair<std::string, std::uint32_t>>;

/// The distinct terms of `texts` with their counts, in byte-wise order, and the number of terms.
inline std::pair<Counts, std::uint64_t> sorted_counts(Analyzer& a, const std::vector<std::string_view>& texts) {
    std::vector<std::string> all;
    for (const auto t : texts) a.analyze(t, all);
    std::sort(all.begin(), all.end());
    Counts counted;
    for (std::size_t i = 0; i < all.size();) {
        std::size_t j = i;
        while (j < all.size() && all[j] == all[i]) ++j;
        counted.emplace_back(all[i], static_cast<std::uint32_t>(j - i));
        i = j;
    }
    return {std::move(counted), static_cast<std::uint64_t>(all.size())};
}

}  // namespace quiver::text::testing
