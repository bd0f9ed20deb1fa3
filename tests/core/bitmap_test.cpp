#include "quiver/core/bitmap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <set>

namespace quiver {
namespace {

std::vector<std::uint32_t> sorted(const std::set<std::uint32_t>& s) { return {s.begin(), s.end()}; }

TEST(Bitmap, MatchesASetUnderRandomOperations) {
    std::mt19937 rng(7);
    Bitmap b;
    std::set<std::uint32_t> ref;
    for (int i = 0; i < 20000; ++i) {
        // Clustered and scattered values, so array, bitset and run containers all occur.
        const std::uint32_t v = (i % 3 == 0) ? rng() : (rng() % 200000);
        if (rng() % 4 == 0) {
            b.remove(v);
            ref.erase(v);
        } else {
            b.add(v);
            ref.insert(v);
        }
    }
    b.add_many(std::vector<std::uint32_t>{5, 6, 7, 4000000000u});
    ref.insert({5, 6, 7, 4000000000u});
    EXPECT_EQ(b.cardinality(), ref.size());
    EXPECT_EQ(b.to_vector(), sorted(ref));
    EXPECT_EQ(b.maximum(), *ref.rbegin());
    for (std::uint32_t v = 0; v < 1000; ++v) EXPECT_EQ(b.contains(v), ref.count(v) == 1) << v;
    std::vector<std::uint32_t> seen;
    b.for_each([&](std::uint32_t v) { seen.push_back(v); });
    EXPECT_EQ(seen, sorted(ref));
    Bitmap copy = b;
    copy.add(123456789);
    EXPECT_FALSE(b.contains(123456789));
    EXPECT_TRUE(copy.contains(123456789));
}

TEST(Bitmap, SetAlgebraAndRanges) {
    Bitmap a = Bitmap::range(10, 20);
    EXPECT_EQ(a.cardinality(), 10u);
    EXPECT_TRUE(a.contains(10));
    EXPECT_FALSE(a.contains(20));
    EXPECT_TRUE(Bitmap::range(5, 5).empty());
    Bitmap b = Bitmap::of(std::vector<std::uint32_t>{15, 25});
    Bitmap u = a;
    u.union_with(b);
    EXPECT_EQ(u.cardinality(), 11u);
    Bitmap i = a;
    i.intersect_with(b);
    EXPECT_EQ(i.to_vector(), std::vector<std::uint32_t>{15});
    Bitmap d = a;
    d.subtract(b);
    EXPECT_EQ(d.cardinality(), 9u);
    EXPECT_FALSE(d.contains(15));
}

TEST(Bitmap, SerialisationRoundTripsAndRejectsDamage) {
    Bitmap b = Bitmap::range(0, 70000);
    for (std::uint32_t v = 100000; v < 300000; v += 7) b.add(v);
    b.add(3000000000u);
    b.optimize();
    const std::string bytes = b.serialize();
    auto back = Bitmap::deserialize(std::as_bytes(std::span<const char>(bytes)));
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_TRUE(*back == b);
    // Truncated at every length, and with trailing bytes: refused as data loss, never a crash.
    for (std::size_t n = 0; n < bytes.size(); n += 1 + n / 16) {
        auto cut = Bitmap::deserialize(std::as_bytes(std::span<const char>(bytes.data(), n)));
        ASSERT_FALSE(cut) << n;
        EXPECT_EQ(cut.error().code(), ErrorCode::kDataLoss);
    }
    const std::string longer = bytes + "x";
    EXPECT_FALSE(Bitmap::deserialize(std::as_bytes(std::span<const char>(longer))));
    const std::string garbage(64, '\xff');
    EXPECT_FALSE(Bitmap::deserialize(std::as_bytes(std::span<const char>(garbage))));
    // Every single-byte change either is refused or yields a usable bitmap (never a crash).
    const std::string small = Bitmap::of(std::vector<std::uint32_t>{1, 2, 3, 70000, 70001, 900000}).serialize();
    std::size_t refused = 0;
    for (std::size_t i = 0; i < small.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string flipped = small;
            flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
            auto r = Bitmap::deserialize(std::as_bytes(std::span<const char>(flipped)));
            if (!r) {
                ++refused;
                continue;
            }
            EXPECT_EQ(r->to_vector().size(), r->cardinality());
        }
    }
    EXPECT_GT(refused, 0u);
    const std::string empty = Bitmap().serialize();
    auto e = Bitmap::deserialize(std::as_bytes(std::span<const char>(empty)));
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->empty());
}

TEST(DeletedDocs, VersionsAreImmutableAndFoldTheirDelta) {
    std::mt19937 rng(11);
    DeletedDocs v;
    std::set<std::uint32_t> ref;
    std::vector<std::pair<DeletedDocs, std::set<std::uint32_t>>> history;
    for (int round = 0; round < 60; ++round) {
        std::vector<std::uint32_t> batch;
        const int n = round % 10 == 9 ? 3000 : 1 + static_cast<int>(rng() % 50);
        for (int i = 0; i < n; ++i) batch.push_back(rng() % 100000);
        batch.push_back(batch.front());  // duplicates and already-deleted members are ignored
        v = v.with(batch);
        ref.insert(batch.begin(), batch.end());
        history.emplace_back(v, ref);
    }
    EXPECT_GT(ref.size(), 4096u * 2);  // the delta was folded into the base at least once
    for (const auto& [version, want] : history) {
        ASSERT_EQ(version.count(), want.size());
        EXPECT_EQ(version.flatten().to_vector(), sorted(want));
    }
    // added_since = set difference between two versions.
    const auto& [old_v, old_ref] = history[20];
    std::set<std::uint32_t> diff;
    for (auto x : ref) {
        if (old_ref.count(x) == 0) diff.insert(x);
    }
    EXPECT_EQ(v.added_since(old_v).to_vector(), sorted(diff));
    for (std::uint32_t x = 0; x < 100000; x += 13) EXPECT_EQ(v.contains(x), ref.count(x) == 1);
    // merged(): one bitmap per version, equal to flatten(), the same object for every copy.
    const DeletedDocs copy = history[31].first;
    EXPECT_EQ(history[31].first.merged().to_vector(), sorted(history[31].second));
    EXPECT_EQ(&copy.merged(), &history[31].first.merged());
    // dense_words(): every version's members as plain words, shared by copies; a later version's
    // words never change an earlier one's.
    for (std::size_t h : {0u, 9u, 31u, 59u}) {
        const auto& [version, want] = history[h];
        const DenseBits bits{version.dense_words()};
        ASSERT_EQ(bits.words.size(), *want.rbegin() / 64 + 1) << h;
        std::size_t members = 0;
        for (std::uint32_t x = 0; x < 100064; ++x) {
            ASSERT_EQ(bits.contains(x), want.count(x) == 1) << h << " " << x;
            members += bits.contains(x) ? 1 : 0;
        }
        EXPECT_EQ(members, want.size());
        const AllowedDocs allowed = AllowedDocs::of(&version);
        EXPECT_EQ(allowed.deleted_words.data(), version.dense_words().data());
        for (std::uint32_t x = 0; x < 100000; x += 7) EXPECT_EQ(allowed.allows(x), want.count(x) == 0);
    }
    EXPECT_EQ(copy.dense_words().data(), history[31].first.dense_words().data());
    EXPECT_TRUE(DeletedDocs().dense_words().empty());
    EXPECT_TRUE(AllowedDocs::of(&history[0].first).restricts());
    EXPECT_FALSE(AllowedDocs::of(nullptr).restricts());
}

// The seeking primitive against std::set::lower_bound, over array, bitset and run containers, across
// container boundaries and at the top of the 32-bit range.
TEST(Bitmap, NextMemberAndCursorSeekMatchLowerBound) {
    std::mt19937 rng(11);
    for (int trial = 0; trial < 6; ++trial) {
        Bitmap b;
        std::set<std::uint32_t> ref;
        auto put = [&](std::uint32_t v) {
            b.add(v);
            ref.insert(v);
        };
        if (trial == 0) {
            // empty
        } else if (trial == 1) {  // sparse: array containers in several chunks
            for (int i = 0; i < 3000; ++i) put(rng() % 1000000);
        } else if (trial == 2) {  // dense: bitset containers
            for (int i = 0; i < 150000; ++i) put(rng() % 400000);
        } else if (trial == 3) {  // runs (optimize turns them into run containers)
            for (std::uint32_t s = 0; s < 2000000; s += 70001) {
                for (std::uint32_t v = s; v < s + 5000; ++v) put(v);
            }
            b.optimize();
        } else if (trial == 4) {  // the top of the range
            for (std::uint32_t v : {0u, 65535u, 65536u, 4294967294u, 4294967295u}) put(v);
        } else {  // one member
            put(123456);
        }
        auto want = [&](std::uint32_t x) -> std::optional<std::uint32_t> {
            const auto it = ref.lower_bound(x);
            if (it == ref.end()) return std::nullopt;
            return *it;
        };
        std::vector<std::uint32_t> probes = {0, 1, 65535, 65536, 65537, 131072, 4294967294u, 4294967295u};
        for (std::uint32_t v : ref) {
            if (probes.size() > 4000) break;
            probes.push_back(v);
            if (v > 0) probes.push_back(v - 1);
            probes.push_back(v + 1);
        }
        for (int i = 0; i < 3000; ++i) probes.push_back(static_cast<std::uint32_t>(rng() % 2200000));
        for (std::uint32_t x : probes) ASSERT_EQ(b.next_member(x), want(x)) << "trial " << trial << " x " << x;
        // The cursor: full iteration, then forward seeks in ascending order mixed with next().
        std::vector<std::uint32_t> seen;
        for (Bitmap::Cursor c(b); c.valid(); c.next()) seen.push_back(c.value());
        ASSERT_EQ(seen, sorted(ref));
        std::sort(probes.begin(), probes.end());
        Bitmap::Cursor c(b);
        std::uint32_t at = 0;  // the cursor is on the first member >= at
        for (std::uint32_t x : probes) {
            const bool has = c.seek(x);
            at = std::max(at, x);
            const auto w = want(at);
            ASSERT_EQ(has, w.has_value()) << "trial " << trial << " seek " << x;
            if (!has) break;
            ASSERT_EQ(c.value(), *w);
            if (rng() % 3 == 0) {  // next() moves to the following member
                const auto after = std::next(ref.find(c.value()));
                const bool more = c.next();
                ASSERT_EQ(more, after != ref.end());
                if (!more) break;
                ASSERT_EQ(c.value(), *after);
                at = c.value();
            }
        }
        // Seeking backwards does not move.
        if (!ref.empty() && ref.size() > 1) {
            Bitmap::Cursor d(b);
            ASSERT_TRUE(d.seek(*std::next(ref.begin())));
            ASSERT_TRUE(d.seek(0));
            EXPECT_EQ(d.value(), *std::next(ref.begin()));
        }
    }
}

TEST(AscendingMembership, AgreesWithContainsOnNonDecreasingQueries) {
    std::mt19937 rng(11);
    for (const double density : {0.0, 0.001, 0.05, 0.5, 0.97}) {
        Bitmap b;
        std::set<std::uint32_t> ref;
        std::bernoulli_distribution in(density);
        for (std::uint32_t x = 0; x < 200000; ++x) {
            if (in(rng)) {
                b.add(x);
                ref.insert(x);
            }
        }
        b.add(4000000000u);  // a far container
        ref.insert(4000000000u);
        AscendingMembership m(b);
        std::uint32_t x = 0;
        std::uint64_t checked = 0;
        while (x < 200100) {
            ASSERT_EQ(m.contains(x), ref.count(x) == 1) << "density " << density << " x " << x;
            if (rng() % 3 == 0) ASSERT_EQ(m.contains(x), ref.count(x) == 1);  // the same x again
            x += 1 + static_cast<std::uint32_t>(rng() % (rng() % 50 == 0 ? 5000 : 4));
            ++checked;
        }
        EXPECT_TRUE(m.contains(4000000000u));
        EXPECT_FALSE(m.contains(4000000001u));
        EXPECT_GT(checked, 1000u);
    }
}

TEST(AllowedDocs, LiveAndFilter) {
    const DeletedDocs dead = DeletedDocs().with(std::vector<std::uint32_t>{1, 3});
    const Bitmap filter = Bitmap::of(std::vector<std::uint32_t>{0, 1, 2});
    AllowedDocs none;
    EXPECT_FALSE(none.restricts());
    EXPECT_TRUE(none.allows(99));
    AllowedDocs live = AllowedDocs::of(&dead);
    EXPECT_TRUE(live.restricts());
    EXPECT_FALSE(live.allows(1));
    EXPECT_TRUE(live.allows(2));
    AllowedDocs both = AllowedDocs::of(&dead, &filter);
    EXPECT_TRUE(both.allows(0));
    EXPECT_FALSE(both.allows(1));
    EXPECT_TRUE(both.allows(2));
    EXPECT_FALSE(both.allows(4));
    const DeletedDocs nothing;
    EXPECT_FALSE(AllowedDocs::of(&nothing).restricts());
    EXPECT_FALSE(AllowedDocs::of(nullptr).restricts());
}

}  // namespace
}  // namespace quiver
