/// @file ids.h
/// @brief Strong id types. Slots are dense per index and never leave the library; labels are the caller's.
#pragma once

#include <cstdint>

namespace quiver {

/// Dense internal position of a vector or document inside one index or segment (0..size-1).
enum class SlotId : std::uint32_t {};
/// The caller's numeric id for a vector (a row number, or an id mapped from a string by ExternalIds).
enum class Label : std::uint64_t {};

constexpr std::uint32_t to_int(SlotId s) noexcept { return static_cast<std::uint32_t>(s); }
constexpr std::uint64_t to_int(Label l) noexcept { return static_cast<std::uint64_t>(l); }

/// A search hit: the caller's label and a distance (smaller is closer; see simd::Metric for units).
struct Neighbor {
    Label label;
    float distance;
};

inline constexpr Label kNoLabel = Label{~std::uint64_t{0}};

}  // namespace quiver
