/// @file buffer.h
/// @brief `Buffer<T>`: an immutable array that owns its elements or views a mapped file, and the
/// section format index files use for such arrays (`u64 count`, zero padding to 64 bytes, elements).
///
/// Thread-safety: a Buffer is immutable; concurrent reads are safe. Lifetime: a borrowed Buffer views
/// memory its owner (usually a `MappedFile`) must keep alive.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/storage/file_format.h"

namespace quiver::storage {

/// An immutable array that owns its elements or views bytes owned elsewhere (a mapped file).
/// Move-only; moving keeps the data address, so views into it stay valid.
template <class T>
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(std::vector<T> v) : owned_(std::move(v)), view_(owned_) {}
    static Buffer borrowed(std::span<const T> s) {
        Buffer b;
        b.view_ = s;
        return b;
    }
    Buffer(Buffer&&) noexcept = default;
    Buffer& operator=(Buffer&&) noexcept = default;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    const T* data() const noexcept { return view_.data(); }
    std::size_t size() const noexcept { return view_.size(); }
    bool empty() const noexcept { return view_.empty(); }
    const T& operator[](std::size_t i) const noexcept { return view_[i]; }
    std::span<const T> span() const noexcept { return view_; }
    std::size_t bytes() const noexcept { return view_.size_bytes(); }

private:
    std::vector<T> owned_;
    std::span<const T> view_;
};

/// Writes `u64 count`, pads to 64 bytes, then the elements.
template <class T>
Status write_buffer(storage::FileWriter& w, std::span<const T> s) {
    QUIVER_TRY(w.write_pod<std::uint64_t>(s.size()));
    QUIVER_TRY(w.align(64));
    return w.write_span(s);
}
/// Reads what write_buffer wrote as a zero-copy view; `what` names the section in errors.
template <class T>
Result<Buffer<T>> read_buffer(storage::BinaryReader& r, const char* what) {
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t n, r.read_pod<std::uint64_t>());
    QUIVER_TRY(r.align(64));
    if (n > r.remaining() / sizeof(T)) return r.corrupt(std::string(what) + ": section longer than the file");
    QUIVER_ASSIGN_OR_RETURN(std::span<const T> s, r.read_span<T>(static_cast<std::size_t>(n)));
    return Buffer<T>::borrowed(s);
}

}  // namespace quiver::storage
