// CRoaring wrapper and the versioned deleted-documents set. See bitmap.h.
#include "quiver/core/bitmap.h"

#include <algorithm>
#include <utility>

#include "quiver/core/check.h"

namespace quiver {
namespace {

roaring_bitmap_t* checked(roaring_bitmap_t* r) {
    QUIVER_CHECK_MSG(r != nullptr, "out of memory allocating a bitmap");
    return r;
}

// The delta of a DeletedDocs version is folded into its base beyond this many members.
std::uint64_t fold_threshold(std::uint64_t base) { return std::max<std::uint64_t>(4096, base / 8); }

}  // namespace

Bitmap::Bitmap() : r_(checked(roaring_bitmap_create())) {}
Bitmap::Bitmap(roaring_bitmap_t* r) : r_(checked(r)) {}
Bitmap::~Bitmap() {
    if (r_ != nullptr) roaring_bitmap_free(r_);
}
Bitmap::Bitmap(const Bitmap& other) : r_(checked(roaring_bitmap_copy(other.r_))) {}

Bitmap& Bitmap::operator=(const Bitmap& other) {
    if (this != &other) *this = Bitmap(other);
    return *this;
}

Bitmap& Bitmap::operator=(Bitmap&& other) noexcept {
    std::swap(r_, other.r_);
    return *this;
}

Bitmap Bitmap::range(std::uint32_t begin, std::uint32_t end) {
    if (begin >= end) return Bitmap();
    return Bitmap(roaring_bitmap_from_range(begin, end, 1));
}

Bitmap Bitmap::of(std::span<const std::uint32_t> docs) {
    Bitmap b;
    b.add_many(docs);
    return b;
}

void Bitmap::add_many(std::span<const std::uint32_t> docs) {
    if (!docs.empty()) roaring_bitmap_add_many(r_, docs.size(), docs.data());
}

std::vector<std::uint32_t> Bitmap::to_vector() const {
    std::vector<std::uint32_t> out(cardinality());
    if (!out.empty()) roaring_bitmap_to_uint32_array(r_, out.data());
    return out;
}

std::optional<std::uint32_t> Bitmap::next_member(std::uint32_t x) const noexcept {
    roaring_uint32_iterator_t it;
    roaring_init_iterator(r_, &it);
    if (!it.has_value) return std::nullopt;
    if (it.current_value >= x) return it.current_value;
    if (!roaring_move_uint32_iterator_equalorlarger(&it, x)) return std::nullopt;
    return it.current_value;
}

void Bitmap::optimize() {
    roaring_bitmap_run_optimize(r_);
    roaring_bitmap_shrink_to_fit(r_);
}

std::string Bitmap::serialize() const {
    std::string out(roaring_bitmap_portable_size_in_bytes(r_), '\0');
    const std::size_t n = roaring_bitmap_portable_serialize(r_, out.data());
    out.resize(n);
    return out;
}

Result<Bitmap> Bitmap::deserialize(std::span<const std::byte> bytes) {
    const auto* p = reinterpret_cast<const char*>(bytes.data());
    const std::size_t n = roaring_bitmap_portable_deserialize_size(p, bytes.size());
    if (n == 0 || n != bytes.size()) return data_loss("malformed bitmap");
    roaring_bitmap_t* r = roaring_bitmap_portable_deserialize_safe(p, bytes.size());
    if (r == nullptr) return data_loss("malformed bitmap");
    Bitmap b(r);
    // Re-serialising must give the same bytes: refuses containers the reader accepted but that break
    // roaring's invariants (unsorted arrays, wrong cardinalities).
    if (b.serialize() != std::string_view(p, bytes.size())) return data_loss("malformed bitmap");
    return b;
}

DeletedDocs::DeletedDocs(Bitmap all) {
    count_ = all.cardinality();
    if (count_ > 0) {
        all.optimize();
        base_ = std::make_shared<const Bitmap>(std::move(all));
        dense_ = std::make_shared<Dense>();
    }
}

DeletedDocs DeletedDocs::with(std::span<const std::uint32_t> docs) const {
    DeletedDocs out = *this;
    if (docs.empty()) return out;
    Bitmap delta = delta_ ? *delta_ : Bitmap();
    for (std::uint32_t d : docs) {
        if (base_ && base_->contains(d)) continue;
        delta.add(d);
    }
    const std::uint64_t base_count = base_ ? base_->cardinality() : 0;
    const std::uint64_t delta_count = delta.cardinality();
    out.count_ = base_count + delta_count;
    if (delta_count > fold_threshold(base_count)) {
        Bitmap base = base_ ? *base_ : Bitmap();
        base.union_with(delta);
        base.optimize();
        out.base_ = std::make_shared<const Bitmap>(std::move(base));
        out.delta_.reset();
    } else {
        out.delta_ = delta_count > 0 ? std::make_shared<const Bitmap>(std::move(delta)) : nullptr;
    }
    out.merged_ = out.delta_ ? std::make_shared<Merged>() : nullptr;
    out.dense_ = out.count_ > 0 ? std::make_shared<Dense>() : nullptr;
    return out;
}

std::span<const std::uint64_t> DeletedDocs::dense_words() const {
    if (!dense_) return {};
    std::call_once(dense_->once, [this] {
        const Bitmap& all = merged();
        std::vector<std::uint64_t> words;
        all.for_each([&](std::uint32_t d) {
            const std::size_t w = d >> 6;
            if (w >= words.size()) words.resize(w + 1, 0);
            words[w] |= std::uint64_t{1} << (d & 63u);
        });
        dense_->words = std::move(words);
    });
    return dense_->words;
}

const Bitmap& DeletedDocs::merged() const {
    static const Bitmap kEmpty;
    if (!delta_) return base_ ? *base_ : kEmpty;
    std::call_once(merged_->once, [this] {
        merged_->bits = flatten();
        merged_->bits.optimize();
    });
    return merged_->bits;
}

Bitmap DeletedDocs::flatten() const {
    Bitmap out = base_ ? *base_ : Bitmap();
    if (delta_) out.union_with(*delta_);
    return out;
}

Bitmap DeletedDocs::added_since(const DeletedDocs& older) const {
    Bitmap out = flatten();
    if (older.base_) out.subtract(*older.base_);
    if (older.delta_) out.subtract(*older.delta_);
    return out;
}

}  // namespace quiver
