#include "hnswlib_peer.h"

#include <hnswlib/hnswlib.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#define QPEER_API __attribute__((visibility("default")))

namespace {
struct Peer {
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
    std::size_t dim;
};
}  // namespace

extern "C" {

QPEER_API void* qpeer_hnswlib_create(std::size_t dim, int inner_product, std::size_t max_elements,
                                     std::size_t M, std::size_t ef_construction, std::size_t seed) {
    auto* p = new Peer;
    p->dim = dim;
    if (inner_product) p->space = std::make_unique<hnswlib::InnerProductSpace>(dim);
    else p->space = std::make_unique<hnswlib::L2Space>(dim);
    p->index = std::make_unique<hnswlib::HierarchicalNSW<float>>(p->space.get(), max_elements, M,
                                                                 ef_construction, seed);
    return p;
}

QPEER_API void qpeer_hnswlib_add(void* index, const float* data, std::size_t n, std::size_t threads) {
    auto* p = static_cast<Peer*>(index);
    if (n == 0) return;
    // As hnswlib's Python bindings do: the first point alone, then the rest in parallel.
    p->index->addPoint(data, 0);
    if (threads <= 1) {
        for (std::size_t i = 1; i < n; ++i) p->index->addPoint(data + i * p->dim, i);
        return;
    }
    std::atomic<std::size_t> next{1};
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
            for (std::size_t i = next++; i < n; i = next++) p->index->addPoint(data + i * p->dim, i);
        });
    }
    for (auto& t : pool) t.join();
}

QPEER_API void qpeer_hnswlib_set_ef(void* index, std::size_t ef) { static_cast<Peer*>(index)->index->setEf(ef); }

QPEER_API void qpeer_hnswlib_search(void* index, const float* query, std::size_t k, std::int64_t* out) {
    auto* p = static_cast<Peer*>(index);
    auto pq = p->index->searchKnn(query, k);
    for (std::size_t j = 0; j < k; ++j) out[j] = -1;
    std::size_t m = pq.size();
    while (!pq.empty()) {
        out[--m] = static_cast<std::int64_t>(pq.top().second);
        pq.pop();
    }
}

QPEER_API void qpeer_hnswlib_destroy(void* index) { delete static_cast<Peer*>(index); }

}  // extern "C"
