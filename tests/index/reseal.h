// Test helper: re-seals a modified quiver container so that only structural validation can catch the
// change (docs/formats.md): the CRC-32 of every listed section (files with a section table), then the
// footer's CRC over the bytes outside the sections.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "quiver/storage/file_format.h"

namespace quiver::testing {

/// The section table of a well-formed sectioned file (empty for files without one).
inline std::vector<storage::Section> sections_of(const std::string& bytes) {
    std::vector<storage::Section> out;
    std::uint32_t flags = 0;
    std::memcpy(&flags, bytes.data() + 12, 4);
    if ((flags & storage::kFlagSections) == 0) return out;
    const std::size_t end = bytes.size() - storage::kFooterBytes;
    std::uint32_t n = 0;
    std::memcpy(&n, bytes.data() + end - 8, 4);
    const std::size_t table = end - 8 - std::size_t{n} * storage::kSectionEntryBytes;
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const char* e = bytes.data() + table + i * storage::kSectionEntryBytes;
        std::memcpy(&out[i].name, e, 4);
        std::memcpy(&out[i].crc, e + 4, 4);
        std::memcpy(&out[i].offset, e + 8, 8);
        std::memcpy(&out[i].length, e + 16, 8);
    }
    return out;
}

/// The section named `name` (fourcc string), or a zero-length one at offset 0.
inline storage::Section section_named(const std::string& bytes, const char (&name)[5]) {
    for (const auto& s : sections_of(bytes)) {
        if (s.name == storage::fourcc(name)) return s;
    }
    return {};
}

/// XORs one byte of a file in place with `mask` (no truncation: cheap enough to visit every byte; a
/// second call with the same mask restores it).
inline void flip_byte(const std::string& path, std::size_t at, unsigned char mask) {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ static_cast<char>(mask));
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
}

inline void reseal(std::string& bytes) {
    const auto sections = sections_of(bytes);
    const std::size_t end = bytes.size() - storage::kFooterBytes;
    const std::size_t table = end - 8 - sections.size() * storage::kSectionEntryBytes;
    std::uint32_t crc = 0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < sections.size(); ++i) {
        const auto& s = sections[i];
        const std::uint32_t sc = storage::crc32(0, bytes.data() + s.offset, s.length);
        std::memcpy(bytes.data() + table + i * storage::kSectionEntryBytes + 4, &sc, 4);
        crc = storage::crc32(crc, bytes.data() + at, s.offset - at);
        at = s.offset + s.length;
    }
    crc = storage::crc32(crc, bytes.data() + at, end - at);
    std::memcpy(bytes.data() + end + 8, &crc, 4);
}

}  // namespace quiver::testing
