#include "quiver/core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace quiver {
namespace {

TEST(ThreadPool, VisitsEveryItemOnce) {
    for (std::size_t threads : {1u, 2u, 4u}) {
        ThreadPool pool(threads);
        for (std::size_t n : {0u, 1u, 7u, 1000u}) {
            std::vector<std::atomic<int>> seen(n);
            pool.parallel_for(n, [&](std::size_t i, std::size_t worker) {
                EXPECT_LT(worker, pool.size());
                seen[i].fetch_add(1);
            }, 3);
            for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(seen[i].load(), 1) << i;
        }
    }
}

TEST(ThreadPool, ReusableManyTimes) {
    ThreadPool pool(3);
    std::atomic<long> sum{0};
    for (int round = 0; round < 200; ++round) {
        pool.parallel_for(50, [&](std::size_t i, std::size_t) { sum += static_cast<long>(i); });
    }
    EXPECT_EQ(sum.load(), 200L * (49 * 50 / 2));
}

}  // namespace
}  // namespace quiver
