// C interface to the hnswlib peer, which lives in its own shared library (libquiver_peer_hnswlib.so)
// compiled -O3 -march=native as hnswlib's users build it, with hidden visibility so none of its
// template instantiations leak into quiver's code in the same process.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {
/// inner_product: 1 for inner product over (caller-normalised) vectors, 0 for squared L2.
void* qpeer_hnswlib_create(std::size_t dim, int inner_product, std::size_t max_elements, std::size_t M,
                           std::size_t ef_construction, std::size_t seed);
/// Adds rows with labels first..first+n-1 using `threads` threads (addPoint is thread-safe).
void qpeer_hnswlib_add(void* index, const float* data, std::size_t n, std::size_t threads);
void qpeer_hnswlib_set_ef(void* index, std::size_t ef);
/// Nearest k labels for one query, nearest first; pads with -1.
void qpeer_hnswlib_search(void* index, const float* query, std::size_t k, std::int64_t* out);
void qpeer_hnswlib_destroy(void* index);
}
