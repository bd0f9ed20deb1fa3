// Private to index/: the concrete codecs' factories (each defined in its own file) and shared helpers.
#pragma once

#include <memory>

#include "quiver/index/codec.h"

namespace quiver::index::detail {

std::unique_ptr<Codec> make_float_codec(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                        std::uint64_t seed);
std::unique_ptr<Codec> make_sq_codec(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                     std::uint64_t seed);
std::unique_ptr<Codec> make_pq_codec(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                     std::uint64_t seed);
std::unique_ptr<Codec> make_rabitq_codec(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                         std::uint64_t seed);
std::unique_ptr<Codec> make_binary_codec(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                         std::uint64_t seed);

/// Reads `count` floats into `out` (kDataLoss names the field when they are missing or non-finite).
Status read_floats(storage::BinaryReader& r, std::size_t count, std::vector<float>& out, const char* what);

}  // namespace quiver::index::detail
