// The memory-budget rule of memory_budget.h. The per-structure figures mirror the accounting of
// HnswGraph::memory_bytes, FlatIndex::memory_bytes and CodeIndex::footprint.
#include "quiver/index/memory_budget.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "quiver/index/vector_index.h"

namespace quiver::index {

namespace {

constexpr std::uint64_t kFixedSlack = 64 * 1024;

// Hash map of live labels -> slot as the indexes account it: `node` bytes per entry plus 8 per bucket,
// with up to two buckets per entry (libstdc++ grows its prime bucket count about twofold).
std::uint64_t label_map_bytes(std::uint64_t n, std::uint64_t node) { return n * (node + 2 * 8); }

std::uint64_t predict_hnsw(const BudgetRequest& r, const Codec* codec) {
    const std::uint64_t n = r.rows;
    const std::uint64_t vector_bytes = codec != nullptr ? codec->code_size() : r.dim * sizeof(float);
    const std::uint64_t raw = vector_bytes + (1 + 2 * r.M) * sizeof(std::uint32_t);
    const std::uint64_t stride = (raw + 31) / 32 * 32;
    // Upper levels: a node reaches level l with probability M^-l, so n (M + 1) / (M - 1) words are
    // expected; 1.5 times that plus 4,096 words bounds it.
    const double expected_words = double(n) * double(r.M + 1) / double(r.M - 1);
    const auto upper_words = static_cast<std::uint64_t>(std::ceil(1.5 * expected_words)) + 4096;
    std::uint64_t per = stride + sizeof(Label) + 3 /* level, tombstone, lock */ + sizeof(std::uint64_t);
    if (codec != nullptr) per += sizeof(float);  // code terms (SQ8 under L2)
    return n * per + upper_words * sizeof(std::uint32_t) + label_map_bytes(n, 40) +
           (codec != nullptr ? codec->parameter_bytes() : 0) + kFixedSlack;
}

std::uint64_t predict_flat(const BudgetRequest& r) {
    const std::uint64_t n = r.rows;
    return n * (r.dim * sizeof(float) + sizeof(float) + sizeof(Label) + 1) + label_map_bytes(n, 32) + kFixedSlack;
}

std::uint64_t predict_codes(const BudgetRequest& r, const Codec& codec, std::size_t nlist) {
    const std::uint64_t n = r.rows;
    const std::uint64_t lists = std::max<std::size_t>(nlist, 1);
    // Each list pads its codes to whole blocks (fast-scan PQ: 32 codes).
    const std::uint64_t codes = (n + lists * (codec.block_size() - 1)) * codec.code_size();
    const std::uint64_t ids = n * (sizeof(Label) + 1) + (nlist > 0 ? n * sizeof(std::uint32_t) : 0);
    return codes + ids + codec.parameter_bytes() + nlist * r.dim * sizeof(float) + kFixedSlack;
}

std::size_t rescore_for(const CodecSpec& c, std::size_t k) {
    switch (c.kind) {
        case CodecKind::kNone: return 0;
        case CodecKind::kRabitq: return SearchParams::kRescoreDefault;
        case CodecKind::kSq8: return 4 * k;
        case CodecKind::kSq4: return 10 * k;
        default: return (c.kind == CodecKind::kBinary && c.bits >= 2) ? 20 * k : 40 * k;
    }
}

// Codecs for codes, in the rule's order before sorting by code size: HNSW walks one code per node (no
// fast-scan PQ); flat and IVF lists also take PQ with 4-bit fast-scan codes of 2 and 4 dimensions per
// sub-quantiser when M divides the dimension.
std::vector<CodecSpec> code_specs(std::size_t dim, bool graph) {
    std::vector<CodecSpec> out = {*CodecSpec::parse("sq8"), *CodecSpec::parse("sq4"), *CodecSpec::parse("rabitq2"),
                                  *CodecSpec::parse("rabitq1")};
    if (!graph) {
        for (std::size_t per : {2u, 4u}) {
            if (dim % per == 0) out.push_back(CodecSpec{CodecKind::kPq, static_cast<std::uint32_t>(dim / per), 4});
        }
    }
    return out;
}

}  // namespace

std::size_t default_nlist(std::size_t rows) noexcept {
    return std::max<std::size_t>(1, std::min(static_cast<std::size_t>(4 * std::sqrt(double(rows))), rows / 39));
}

Result<std::vector<BudgetChoice>> budget_candidates(const BudgetRequest& r) {
    if (r.rows == 0 || r.dim == 0 || r.dim > (1u << 16)) {
        return invalid_argument(fmt::format("a memory budget needs vectors (got {} rows of dimension {})", r.rows, r.dim));
    }
    if (r.M < 2 || r.M > 256) return invalid_argument(fmt::format("M = {} is out of range (2 to 256)", r.M));
    if (r.index_type != "auto" && r.index_type != "hnsw" && r.index_type != "flat" && r.index_type != "ivf") {
        return invalid_argument(fmt::format("unknown index type '{}' (auto, hnsw, flat or ivf)", r.index_type));
    }
    std::vector<BudgetChoice> out;
    auto coded = [&](const std::string& type, std::size_t nlist) -> Status {
        std::vector<BudgetChoice> group;
        for (const CodecSpec& spec : code_specs(r.dim, type == "hnsw")) {
            auto codec = Codec::create(spec, r.dim, r.metric);
            if (!codec) continue;  // a spec this dimension cannot take
            BudgetChoice c{type, spec, nlist, true, rescore_for(spec, r.k), 0};
            c.predicted_bytes = type == "hnsw" ? predict_hnsw(r, codec->get()) : predict_codes(r, **codec, nlist);
            group.push_back(c);
        }
        std::stable_sort(group.begin(), group.end(),
                         [](const BudgetChoice& a, const BudgetChoice& b) { return a.predicted_bytes > b.predicted_bytes; });
        out.insert(out.end(), group.begin(), group.end());
        return {};
    };
    const std::size_t nlist = r.nlist > 0 ? r.nlist : default_nlist(r.rows);
    if (r.index_type == "auto" || r.index_type == "hnsw") {
        out.push_back(BudgetChoice{"hnsw", {}, 0, false, 0, predict_hnsw(r, nullptr)});
        QUIVER_TRY(coded("hnsw", 0));
        if (r.index_type == "auto") QUIVER_TRY(coded("ivf", nlist));
    } else if (r.index_type == "flat") {
        out.push_back(BudgetChoice{"flat", {}, 0, false, 0, predict_flat(r)});
        QUIVER_TRY(coded("flat", 0));
    } else {
        QUIVER_TRY(coded("ivf", nlist));
    }
    return out;
}

Result<BudgetChoice> choose_for_budget(const BudgetRequest& r) {
    QUIVER_ASSIGN_OR_RETURN(auto candidates, budget_candidates(r));
    std::uint64_t smallest = ~std::uint64_t{0};
    for (const auto& c : candidates) {
        if (c.predicted_bytes <= r.budget_bytes) return c;
        smallest = std::min(smallest, c.predicted_bytes);
    }
    return invalid_argument(fmt::format(
        "no {} index of {} x {} vectors fits a memory budget of {} bytes: the smallest configuration needs {} "
        "bytes ({:.1f} per vector)",
        r.index_type == "auto" ? "dense" : r.index_type, r.rows, r.dim, r.budget_bytes, smallest,
        double(smallest) / double(r.rows)));
}

Result<std::uint64_t> parse_byte_size(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    const std::string number(text.substr(0, i));
    std::string unit(text.substr(i));
    for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto bad = [&] {
        return invalid_argument(fmt::format("'{}' is not a size (e.g. 1GiB, 512MiB, 2GB or bytes)", text));
    };
    if (number.empty() || std::count(number.begin(), number.end(), '.') > 1) return bad();
    double scale = 1;
    if (!unit.empty() && unit != "b") {
        const char prefix = unit[0];
        const std::string rest = unit.substr(1);
        const int power = prefix == 'k' ? 1 : prefix == 'm' ? 2 : prefix == 'g' ? 3 : prefix == 't' ? 4 : 0;
        if (power == 0 || (!rest.empty() && rest != "ib" && rest != "b")) return bad();
        scale = std::pow(rest == "b" ? 1000.0 : 1024.0, power);
    }
    const double bytes = std::strtod(number.c_str(), nullptr) * scale;
    if (!(bytes >= 1) || bytes > 1e18) return bad();
    return static_cast<std::uint64_t>(bytes);
}

}  // namespace quiver::index
