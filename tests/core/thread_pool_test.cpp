#include "quiver/core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
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

TEST(ThreadPool, SpinScopeKeepsEveryCallExactAndNests) {
    for (std::size_t threads : {1u, 2u, 3u}) {
        ThreadPool pool(threads);
        std::atomic<long> sum{0};
        std::vector<std::atomic<int>> seen(64);
        {
            ThreadPool::SpinScope spin(&pool);
            for (int round = 0; round < 500; ++round) {
                pool.parallel_for(64, [&](std::size_t i, std::size_t worker) {
                    EXPECT_LT(worker, pool.size());
                    seen[i].fetch_add(1);
                    sum += static_cast<long>(i);
                });
                if (round == 100) {
                    ThreadPool::SpinScope inner(&pool);  // nested: still spinning after it closes
                    pool.parallel_for(3, [&](std::size_t i, std::size_t) { sum += static_cast<long>(i); });
                }
                if (round == 200) {
                    // Longer than the spin budget: the workers fall asleep and the next call wakes them.
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                }
            }
        }
        for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i].load(), 500) << i;
        EXPECT_EQ(sum.load(), 500L * (63 * 64 / 2) + 3) << threads;
        // After the scope: the sleeping path still works.
        pool.parallel_for(10, [&](std::size_t i, std::size_t) { sum -= static_cast<long>(i); });
        EXPECT_EQ(sum.load(), 500L * (63 * 64 / 2) + 3 - 45);
        ThreadPool::SpinScope null_scope(nullptr);  // no pool: no-op
    }
}

TEST(ThreadPool, DestroyedRightAfterASpinningBurst) {
    for (int i = 0; i < 20; ++i) {
        ThreadPool pool(2);
        std::atomic<int> n{0};
        {
            ThreadPool::SpinScope spin(&pool);
            pool.parallel_for(4, [&](std::size_t, std::size_t) { n.fetch_add(1); });
        }
        EXPECT_EQ(n.load(), 4);
    }
}

}  // namespace
}  // namespace quiver
