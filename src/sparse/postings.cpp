#include "quiver/sparse/postings.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace quiver::sparse {
namespace {

constexpr std::size_t kBlockHeaderBytes = 4;  // doc width, weight width, count - 1, reserved
constexpr std::size_t kDataPadding = 8;       // zero bytes after the last block for word-wide reads

std::uint32_t bit_width_of(std::uint32_t max_value) noexcept {
    return max_value == 0 ? 0u : static_cast<std::uint32_t>(std::bit_width(max_value));
}

std::size_t packed_bytes(std::size_t count, std::uint32_t width) noexcept {
    return (count * width + 7) / 8;  // the vertical layout of a full block has the same size (16 * width)
}

// Two bit-packed layouts, both `width` bits per value:
//  - a full block (128 values) is packed vertically in 4 lanes: value i belongs to lane i % 4, each
//    lane is a little-endian bit stream of 32-bit words, and the lanes' words are interleaved, so
//    word k of lane j is 32-bit word 4k + j. One 128-bit load then yields the same word of all four
//    lanes and four values decode with two shifts, an or and an and (SSE2, the x86-64 baseline);
//  - a partial (last) block is a plain little-endian bit stream, value i at bits [i*width, (i+1)*width).
void pack_horizontal(std::vector<std::uint8_t>& out, const std::uint32_t* values, std::size_t count,
                     std::uint32_t width) {
    const std::size_t begin = out.size();
    out.resize(begin + packed_bytes(count, width), 0);
    if (width == 0) return;
    for (std::size_t i = 0; i < count; ++i) {
        std::uint64_t bit = static_cast<std::uint64_t>(i) * width;
        const std::uint64_t v = values[i];
        for (std::uint32_t done = 0; done < width;) {
            const std::size_t byte = begin + static_cast<std::size_t>(bit >> 3);
            const std::uint32_t shift = static_cast<std::uint32_t>(bit & 7);
            const std::uint32_t take = std::min<std::uint32_t>(8 - shift, width - done);
            out[byte] = static_cast<std::uint8_t>(out[byte] | (((v >> done) & ((1u << take) - 1)) << shift));
            done += take;
            bit += take;
        }
    }
}

void pack_vertical(std::vector<std::uint8_t>& out, const std::uint32_t* values, std::uint32_t width) {
    std::uint32_t words[4 * 32] = {};
    for (std::uint32_t v = 0; v < kBlockSize / 4 && width > 0; ++v) {
        const std::uint32_t bit = v * width;
        const std::uint32_t word = bit >> 5;
        const std::uint32_t off = bit & 31;
        for (std::uint32_t lane = 0; lane < 4; ++lane) {
            const std::uint32_t val = values[v * 4 + lane];
            words[word * 4 + lane] |= val << off;
            if (off + width > 32) words[(word + 1) * 4 + lane] |= val >> (32 - off);
        }
    }
    for (std::uint32_t w = 0; w < 4 * width; ++w) {
        for (int b = 0; b < 4; ++b) out.push_back(static_cast<std::uint8_t>(words[w] >> (8 * b)));
    }
}

void pack(std::vector<std::uint8_t>& out, const std::uint32_t* values, std::size_t count, std::uint32_t width) {
    if (count == kBlockSize) {
        pack_vertical(out, values, width);
    } else {
        pack_horizontal(out, values, count, width);
    }
}

// Reads at most 8 bytes from any value's first byte, which the data padding makes safe.
inline void unpack_horizontal(const std::uint8_t* in, std::uint32_t* out, std::size_t count,
                              std::uint32_t width) noexcept {
    const std::uint64_t mask = (width == 32) ? 0xFFFFFFFFull : ((1ull << width) - 1);
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint64_t bit = static_cast<std::uint64_t>(i) * width;
        std::uint64_t word;
        std::memcpy(&word, in + (bit >> 3), sizeof(word));
        out[i] = static_cast<std::uint32_t>((word >> (bit & 7)) & mask);
    }
}

inline void unpack_vertical(const std::uint8_t* in, std::uint32_t* out, std::uint32_t width) noexcept {
    const std::uint32_t mask = width == 32 ? 0xFFFFFFFFu : ((1u << width) - 1);
#if defined(__SSE2__)
    const __m128i m = _mm_set1_epi32(static_cast<int>(mask));
    for (std::uint32_t v = 0; v < kBlockSize / 4; ++v) {
        const std::uint32_t bit = v * width;
        const std::uint32_t word = bit >> 5;
        const std::uint32_t off = bit & 31;
        __m128i x = _mm_srl_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + word * 16)),
                                  _mm_cvtsi32_si128(static_cast<int>(off)));
        if (off + width > 32) {
            const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + (word + 1) * 16));
            x = _mm_or_si128(x, _mm_sll_epi32(hi, _mm_cvtsi32_si128(static_cast<int>(32 - off))));
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + v * 4), _mm_and_si128(x, m));
    }
#else
    auto load = [in](std::uint32_t w) {
        return static_cast<std::uint32_t>(in[4 * w]) | static_cast<std::uint32_t>(in[4 * w + 1]) << 8 |
               static_cast<std::uint32_t>(in[4 * w + 2]) << 16 | static_cast<std::uint32_t>(in[4 * w + 3]) << 24;
    };
    for (std::uint32_t v = 0; v < kBlockSize / 4; ++v) {
        const std::uint32_t bit = v * width;
        const std::uint32_t word = bit >> 5;
        const std::uint32_t off = bit & 31;
        for (std::uint32_t lane = 0; lane < 4; ++lane) {
            std::uint32_t x = load(word * 4 + lane) >> off;
            if (off + width > 32) x |= load((word + 1) * 4 + lane) << (32 - off);
            out[v * 4 + lane] = x & mask;
        }
    }
#endif
}

inline void unpack(const std::uint8_t* in, std::uint32_t* out, std::size_t count, std::uint32_t width) noexcept {
    if (width == 0) {
        std::fill(out, out + count, 0u);
    } else if (count == kBlockSize) {
        unpack_vertical(in, out, width);
    } else {
        unpack_horizontal(in, out, count, width);
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Cursor

void PostingCursor::load_block(std::uint32_t block) noexcept {
    block_ = block;
    shallow_block_ = block;
    pos_ = 0;
    if (block >= num_blocks_) {
        count_ = 0;
        doc_ = kTerminated;
        return;
    }
    const BlockInfo& bi = blocks_[block];
    const std::uint8_t* p = store_->data_.data() + bi.offset;
    const std::uint32_t doc_width = p[0];
    const std::uint32_t weight_width = p[1];
    count_ = static_cast<std::uint32_t>(p[2]) + 1;
    p += kBlockHeaderBytes;
    std::uint32_t gaps[kBlockSize];
    unpack(p, gaps, count_, doc_width);
    p += packed_bytes(count_, doc_width);
    std::uint32_t prev = block == 0 ? 0xFFFFFFFFu : blocks_[block - 1].last_doc;
    std::uint32_t i = 0;
#if defined(__SSE2__)
    // Four at a time: an inclusive prefix sum of (gap + 1) within the vector (two shifted adds), plus
    // the previous vector's last document (arithmetic mod 2^32, as the scalar loop's).
    __m128i carry = _mm_set1_epi32(static_cast<int>(prev));
    const __m128i one = _mm_set1_epi32(1);
    for (; i + 4 <= count_; i += 4) {
        __m128i x = _mm_add_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gaps + i)), one);
        x = _mm_add_epi32(x, _mm_slli_si128(x, 4));
        x = _mm_add_epi32(x, _mm_slli_si128(x, 8));
        x = _mm_add_epi32(x, carry);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(docs_ + i), x);
        carry = _mm_shuffle_epi32(x, 0xFF);
    }
    if (i > 0) prev = docs_[i - 1];
#endif
    for (; i < count_; ++i) {
        prev = prev + gaps[i] + 1;  // wraps from 0xFFFFFFFF to the first doc
        docs_[i] = prev;
    }
    switch (store_->weight_type_) {
        case WeightType::kFrequency: {
            std::uint32_t tf[kBlockSize];
            unpack(p, tf, count_, weight_width);
            if (weight_width <= 30) {
                // tf + 1 < 2^31: the signed conversion (one vector instruction) gives the same float.
                for (std::uint32_t j = 0; j < count_; ++j) {
                    weights_[j] = static_cast<float>(static_cast<std::int32_t>(tf[j] + 1));
                }
            } else {
                for (std::uint32_t j = 0; j < count_; ++j) weights_[j] = static_cast<float>(tf[j] + 1);
            }
            break;
        }
        case WeightType::kFloat32:
            std::memcpy(weights_, p, count_ * sizeof(float));
            break;
        case WeightType::kQuantized8:
            for (std::uint32_t i = 0; i < count_; ++i) weights_[i] = static_cast<float>(p[i]) * info_.scale;
            break;
    }
    doc_ = docs_[0];
}

DocIndex PostingCursor::next() noexcept {
    if (doc_ == kTerminated) return doc_;
    if (++pos_ < count_) return doc_ = docs_[pos_];
    load_block(block_ + 1);
    return doc_;
}

DocIndex PostingCursor::seek(DocIndex target) noexcept {
    if (doc_ >= target) return doc_;  // includes kTerminated
    if (blocks_[block_].last_doc < target) {
        std::uint32_t b = block_ + 1;
        if (shallow_block_ > b && blocks_[shallow_block_ - 1].last_doc < target) b = shallow_block_;
        while (b < num_blocks_ && blocks_[b].last_doc < target) ++b;
        load_block(b);
        if (doc_ == kTerminated) return doc_;
    }
    // The target is inside the decoded block (its last_doc >= target).
    while (docs_[pos_] < target) ++pos_;
    return doc_ = docs_[pos_];
}

DocIndex PostingCursor::shallow_seek(DocIndex target) noexcept {
    std::uint32_t b = std::max(shallow_block_, block_);
    while (b < num_blocks_ && blocks_[b].last_doc < target) ++b;
    shallow_block_ = b;
    return b < num_blocks_ ? blocks_[b].last_doc : kTerminated;
}

// ---------------------------------------------------------------------------------------------
// Store

TermInfo PostingStore::term_info(TermId term) const noexcept {
    if (term >= terms_.size()) return TermInfo{0, 0, 0, 1.0f, 0.0f, 0.0f};
    return terms_[term];
}

PostingCursor PostingStore::cursor(TermId term) const noexcept {
    PostingCursor c;
    c.store_ = this;
    c.blocks_ = blocks_.data();
    c.info_ = term_info(term);
    if (c.info_.num_blocks > 0) c.blocks_ = blocks_.data() + c.info_.first_block;
    c.num_blocks_ = c.info_.num_blocks;
    c.load_block(0);
    return c;
}

void PostingStore::decode(TermId term, std::vector<DocIndex>& docs, std::vector<float>& weights) const {
    docs.clear();
    weights.clear();
    PostingCursor c = cursor(term);
    docs.reserve(c.doc_freq());
    weights.reserve(c.doc_freq());
    for (DocIndex d = c.doc(); d != kTerminated; d = c.next()) {
        docs.push_back(d);
        weights.push_back(c.weight());
    }
}

void PostingStore::compute_block_scores(const UnitScoreFn& unit_score) {
    if (owned_blocks_.data() != blocks_.data()) {
        owned_blocks_.assign(blocks_.begin(), blocks_.end());
        blocks_ = owned_blocks_;
    }
    for (TermId t = 0; t < terms_.size(); ++t) {
        TermInfo& ti = terms_[t];
        PostingCursor c = cursor(t);
        float list_max = 0.0f;
        for (std::uint32_t b = 0; b < ti.num_blocks; ++b) {
            float block_max = 0.0f;
            for (std::uint32_t i = 0; i < c.count_; ++i) {
                block_max = std::max(block_max, unit_score(t, c.docs_[i], c.weights_[i]));
            }
            owned_blocks_[ti.first_block + b].max_score = block_max;
            list_max = std::max(list_max, block_max);
            c.load_block(b + 1);
        }
        ti.max_score = list_max;
    }
}

Status PostingStore::write(storage::FileWriter& out) const {
    QUIVER_TRY(out.align(8));
    QUIVER_TRY(out.write_pod(static_cast<std::uint32_t>(weight_type_)));
    QUIVER_TRY(out.write_pod(num_docs_));
    QUIVER_TRY(out.write_pod(static_cast<std::uint64_t>(terms_.size())));
    QUIVER_TRY(out.write_pod(num_postings_));
    QUIVER_TRY(out.write_pod(static_cast<std::uint64_t>(blocks_.size())));
    QUIVER_TRY(out.write_pod(static_cast<std::uint64_t>(data_.size())));
    QUIVER_TRY(out.write_span(std::span<const TermInfo>(terms_)));
    QUIVER_TRY(out.align(16));
    QUIVER_TRY(out.write_span(blocks_));
    QUIVER_TRY(out.write_span(data_));
    return ok_status();
}

Result<PostingStore> PostingStore::read(storage::BinaryReader& in,
                                        std::shared_ptr<const storage::MappedFile> keep_alive) {
    QUIVER_TRY(in.align(8));
    PostingStore s;
    QUIVER_ASSIGN_OR_RETURN(const std::uint32_t type, in.read_pod<std::uint32_t>());
    if (type > static_cast<std::uint32_t>(WeightType::kQuantized8)) {
        return in.corrupt(fmt::format("postings: unknown weight type {}", type));
    }
    s.weight_type_ = static_cast<WeightType>(type);
    QUIVER_ASSIGN_OR_RETURN(s.num_docs_, in.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(const std::uint64_t num_terms, in.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(s.num_postings_, in.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(const std::uint64_t num_blocks, in.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(const std::uint64_t data_size, in.read_pod<std::uint64_t>());
    if (num_terms > in.remaining() / sizeof(TermInfo) || num_blocks > in.remaining() / sizeof(BlockInfo) ||
        data_size > in.remaining() || data_size < kDataPadding) {
        return in.corrupt("postings: section sizes exceed the file");
    }
    QUIVER_ASSIGN_OR_RETURN(auto terms, in.read_span<TermInfo>(num_terms));
    s.terms_.assign(terms.begin(), terms.end());
    QUIVER_TRY(in.align(16));
    QUIVER_ASSIGN_OR_RETURN(auto blocks, in.read_span<BlockInfo>(num_blocks));
    s.owned_blocks_.assign(blocks.begin(), blocks.end());  // copied: compute_block_scores rewrites them
    s.blocks_ = s.owned_blocks_;
    QUIVER_ASSIGN_OR_RETURN(auto data, in.read_span<std::uint8_t>(data_size));
    s.data_ = data;
    s.keep_alive_ = std::move(keep_alive);

    // Validate every structure a cursor trusts, so corrupt bytes cannot make it read out of bounds:
    // block ranges, block headers and sizes, and that decoding each block ends on its last_doc.
    const std::size_t limit = data_size - kDataPadding;
    std::uint64_t postings = 0;
    for (TermId t = 0; t < s.terms_.size(); ++t) {
        const TermInfo& ti = s.terms_[t];
        if (static_cast<std::uint64_t>(ti.first_block) + ti.num_blocks > num_blocks ||
            ti.num_blocks != (ti.doc_freq + kBlockSize - 1) / kBlockSize || !std::isfinite(ti.scale)) {
            return in.corrupt(fmt::format("postings: bad block range for term {}", t));
        }
        postings += ti.doc_freq;
        DocIndex prev_last = 0;
        for (std::uint32_t b = 0; b < ti.num_blocks; ++b) {
            const BlockInfo& bi = s.blocks_[ti.first_block + b];
            const std::uint32_t expect = (b + 1 < ti.num_blocks) ? static_cast<std::uint32_t>(kBlockSize)
                                                                 : ti.doc_freq - b * static_cast<std::uint32_t>(kBlockSize);
            if (bi.offset > limit || limit - bi.offset < kBlockHeaderBytes) {
                return in.corrupt(fmt::format("postings: block offset out of range (term {})", t));
            }
            const std::uint8_t* p = s.data_.data() + bi.offset;
            const std::uint32_t count = static_cast<std::uint32_t>(p[2]) + 1;
            std::size_t need = kBlockHeaderBytes + packed_bytes(count, p[0]);
            if (s.weight_type_ == WeightType::kFrequency) need += packed_bytes(count, p[1]);
            if (s.weight_type_ == WeightType::kFloat32) need += count * sizeof(float);
            if (s.weight_type_ == WeightType::kQuantized8) need += count;
            if (p[0] > 32 || p[1] > 32 || count != expect || limit - bi.offset < need ||
                (b > 0 && bi.last_doc <= prev_last) || bi.last_doc >= s.num_docs_) {
                return in.corrupt(fmt::format("postings: corrupt block {} of term {}", b, t));
            }
            prev_last = bi.last_doc;
        }
        PostingCursor c = s.cursor(t);
        std::uint64_t prev_doc = 0;  // previous doc + 1
        for (std::uint32_t b = 0; b < ti.num_blocks; ++b) {
            // Decoded docs must increase strictly and end on last_doc (< num_docs), which bounds
            // every doc id a scorer will use as an index.
            for (std::uint32_t i = 0; i < c.count_; ++i) {
                if (c.docs_[i] < prev_doc) {
                    return in.corrupt(fmt::format("postings: block {} of term {} does not decode", b, t));
                }
                prev_doc = static_cast<std::uint64_t>(c.docs_[i]) + 1;
            }
            if (c.docs_[c.count_ - 1] != s.blocks_[ti.first_block + b].last_doc) {
                return in.corrupt(fmt::format("postings: block {} of term {} does not decode", b, t));
            }
            c.load_block(b + 1);
        }
    }
    if (postings != s.num_postings_) return in.corrupt("postings: posting count mismatch");
    return s;
}

// ---------------------------------------------------------------------------------------------
// Builder

void PostingsBuilder::add(TermId term, DocIndex doc, float weight) {
    if (term >= lists_.size()) lists_.resize(static_cast<std::size_t>(term) + 1);
    lists_[term].emplace_back(doc, weight);
}

void PostingsBuilder::add_document(DocIndex doc, std::span<const TermId> terms,
                                   std::span<const float> weights) {
    const std::size_t n = std::min(terms.size(), weights.size());
    for (std::size_t i = 0; i < n; ++i) add(terms[i], doc, weights[i]);
}

Result<PostingStore> PostingsBuilder::build() {
    auto lists = std::move(lists_);
    lists_.clear();
    PostingStore s;
    s.weight_type_ = type_;
    std::uint32_t max_doc_plus_one = 0;
    for (const auto& l : lists) {
        for (const auto& [d, w] : l) max_doc_plus_one = std::max(max_doc_plus_one, d + 1);
    }
    if (num_docs_ != 0 && max_doc_plus_one > num_docs_) {
        return invalid_argument(fmt::format("postings: doc id {} >= declared document count {}",
                                            max_doc_plus_one - 1, num_docs_));
    }
    s.num_docs_ = num_docs_ != 0 ? num_docs_ : max_doc_plus_one;
    s.terms_.resize(lists.size());
    std::uint32_t values[kBlockSize];
    std::uint32_t tfs[kBlockSize];
    for (TermId t = 0; t < lists.size(); ++t) {
        auto& l = lists[t];
        std::sort(l.begin(), l.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        float list_max = 0.0f;
        for (std::size_t i = 0; i < l.size(); ++i) {
            const float w = l[i].second;
            if (i > 0 && l[i].first == l[i - 1].first) {
                return invalid_argument(fmt::format("postings: duplicate (term {}, doc {})", t, l[i].first));
            }
            if (!(std::isfinite(w) && w > 0.0f)) {
                return invalid_argument(fmt::format("postings: weight {} of (term {}, doc {}) is not "
                                                    "finite and positive", w, t, l[i].first));
            }
            if (type_ == WeightType::kFrequency && (w != std::floor(w) || w > 4.0e9f)) {
                return invalid_argument(fmt::format("postings: frequency {} of (term {}, doc {}) is "
                                                    "not an integer", w, t, l[i].first));
            }
            list_max = std::max(list_max, w);
        }
        TermInfo& ti = s.terms_[t];
        ti.first_block = static_cast<std::uint32_t>(s.owned_blocks_.size());
        ti.num_blocks = static_cast<std::uint32_t>((l.size() + kBlockSize - 1) / kBlockSize);
        ti.doc_freq = static_cast<std::uint32_t>(l.size());
        ti.scale = type_ == WeightType::kQuantized8 ? list_max / 255.0f : 1.0f;
        ti.max_weight = 0.0f;
        std::uint32_t prev = 0xFFFFFFFFu;
        for (std::size_t start = 0; start < l.size(); start += kBlockSize) {
            const std::size_t count = std::min(kBlockSize, l.size() - start);
            BlockInfo bi{};
            bi.offset = static_cast<std::uint32_t>(s.owned_data_.size());
            if (s.owned_data_.size() > 0xF0000000u) {
                return resource_exhausted("postings: encoded data exceeds 4 GB in one store");
            }
            std::uint32_t max_gap = 0;
            std::uint32_t max_tf = 0;
            float block_max = 0.0f;
            for (std::size_t i = 0; i < count; ++i) {
                const auto& [d, w] = l[start + i];
                values[i] = d - prev - 1;
                prev = d;
                max_gap = std::max(max_gap, values[i]);
                float decoded = w;
                if (type_ == WeightType::kFrequency) {
                    tfs[i] = static_cast<std::uint32_t>(w) - 1;
                    max_tf = std::max(max_tf, tfs[i]);
                } else if (type_ == WeightType::kQuantized8) {
                    const float code = ti.scale > 0.0f ? std::round(w / ti.scale) : 0.0f;
                    tfs[i] = static_cast<std::uint32_t>(std::clamp(code, 0.0f, 255.0f));
                    decoded = static_cast<float>(tfs[i]) * ti.scale;
                }
                block_max = std::max(block_max, decoded);
            }
            bi.last_doc = prev;
            bi.max_weight = block_max;
            bi.max_score = block_max;
            ti.max_weight = std::max(ti.max_weight, block_max);
            const std::uint32_t doc_width = bit_width_of(max_gap);
            const std::uint32_t tf_width = type_ == WeightType::kFrequency ? bit_width_of(max_tf) : 0;
            s.owned_data_.push_back(static_cast<std::uint8_t>(doc_width));
            s.owned_data_.push_back(static_cast<std::uint8_t>(tf_width));
            s.owned_data_.push_back(static_cast<std::uint8_t>(count - 1));
            s.owned_data_.push_back(0);
            pack(s.owned_data_, values, count, doc_width);
            if (type_ == WeightType::kFrequency) {
                pack(s.owned_data_, tfs, count, tf_width);
            } else if (type_ == WeightType::kFloat32) {
                const std::size_t at = s.owned_data_.size();
                s.owned_data_.resize(at + count * sizeof(float));
                for (std::size_t i = 0; i < count; ++i) {
                    std::memcpy(s.owned_data_.data() + at + i * sizeof(float), &l[start + i].second, sizeof(float));
                }
            } else {
                for (std::size_t i = 0; i < count; ++i) s.owned_data_.push_back(static_cast<std::uint8_t>(tfs[i]));
            }
            s.owned_blocks_.push_back(bi);
        }
        ti.max_score = ti.max_weight;
        s.num_postings_ += l.size();
        l = {};
    }
    s.owned_data_.resize(s.owned_data_.size() + kDataPadding, 0);
    s.blocks_ = s.owned_blocks_;
    s.data_ = s.owned_data_;
    return s;
}

}  // namespace quiver::sparse
