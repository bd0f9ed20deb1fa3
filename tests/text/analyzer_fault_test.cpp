// Analyzer::analyze_counts when an allocation fails midway: the call throws std::bad_alloc, and the
// next call on the same thread must count exactly as if the failed one had never run (the thread's
// memo counts records in place, so a call that stops midway leaves counts behind unless they are
// dropped). This binary replaces the global operator new with one that fails the Nth allocation of
// the current thread when armed; unarmed it is plain malloc.

#include "quiver/text/analyzer.h"

#include "sorted_counts.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {
thread_local long allocations_until_failure = -1;  // -1: never fail
}  // namespace

void* operator new(std::size_t size) {
    if (allocations_until_failure == 0) {
        allocations_until_failure = -1;
        throw std::bad_alloc();
    }
    if (allocations_until_failure > 0) --allocations_until_failure;
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace quiver::text {
namespace {

using testing::Counts;

TEST(AnalyzerFault, AFailedAnalyzeCountsLeavesNoCountsBehind) {
    // Repeated words (counted in place), new words (inserted into the memo) and, in the last case,
    // more distinct words than the memo holds (counted aside, then the memo cleared).
    std::string many;
    for (int i = 0; i < 36000; ++i) many += "Term" + std::to_string(i) + "ed ";
    many += "Cells cells ";
    const std::string small = "Cells cells running dogs the cells Dog's running RUNNING lakes";
    const std::vector<std::vector<std::string_view>> cases = {{small, small}, {many, small}};
    std::vector<Counts> wants;  // on this thread, so that the other's memo starts empty
    {
        auto a = Analyzer::create({});
        ASSERT_TRUE(a.ok());
        for (const auto& texts : cases) wants.push_back(testing::sorted_counts(*a, texts).first);
    }
    for (std::size_t c = 0; c < cases.size(); ++c) {
        int failures = 0;
        // Fail the 0th, 1st, ... allocation of a call, each on a fresh thread (its memo empty, so the
        // call inserts), until one completes; after each failure the memo holds whatever the failed
        // call had inserted and counted, and the same thread counts again.
        for (long n = 0;; ++n) {
            bool threw = false;
            std::thread th([&] {
                auto a = Analyzer::create({});
                ASSERT_TRUE(a.ok());
                Counts got;
                got.reserve(wants[c].size());
                allocations_until_failure = n;
                try {
                    a->analyze_counts(cases[c], got);
                } catch (const std::bad_alloc&) {
                    threw = true;
                }
                allocations_until_failure = -1;
                if (!threw) return;
                Counts after;
                a->analyze_counts(cases[c], after);
                EXPECT_EQ(after, wants[c]) << "case " << c << ", allocation " << n << " failed";
            });
            th.join();
            if (!threw) break;
            ++failures;
        }
        EXPECT_GT(failures, 5) << "case " << c << ": the calls hardly allocated";
        std::printf("case %zu: %d allocations failed in turn\n", c, failures);
    }
}

}  // namespace
}  // namespace quiver::text
