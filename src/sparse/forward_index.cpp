#include "quiver/sparse/forward_index.h"

#include <fmt/format.h>

namespace quiver::sparse {

DocIdTable::DocIdTable(const std::vector<std::string>& ids) {
    std::vector<std::uint64_t> off(ids.size() + 1, 0);
    std::vector<char> chars;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        chars.insert(chars.end(), ids[i].begin(), ids[i].end());
        off[i + 1] = chars.size();
    }
    offsets_ = Buffer<std::uint64_t>(std::move(off));
    chars_ = Buffer<char>(std::move(chars));
}

Status DocIdTable::save(storage::FileWriter& w) const {
    QUIVER_TRY(write_buffer(w, offsets_.span()));
    return write_buffer(w, chars_.span());
}

Result<DocIdTable> DocIdTable::load(storage::BinaryReader& r, std::size_t expected_rows) {
    DocIdTable t;
    QUIVER_ASSIGN_OR_RETURN(t.offsets_, read_buffer<std::uint64_t>(r, "document id offsets"));
    QUIVER_ASSIGN_OR_RETURN(t.chars_, read_buffer<char>(r, "document ids"));
    if (t.offsets_.size() != expected_rows + 1 || t.offsets_[0] != 0 ||
        t.offsets_[t.offsets_.size() - 1] != t.chars_.size())
        return r.corrupt("document id table does not match the index");
    for (std::size_t i = 1; i < t.offsets_.size(); ++i)
        if (t.offsets_[i] < t.offsets_[i - 1]) return r.corrupt("document id offsets are not monotone");
    return t;
}

Status write_vocabulary(storage::FileWriter& w, const Vocabulary& v) {
    QUIVER_TRY(w.write_pod<std::uint8_t>(static_cast<std::uint8_t>(v.mode())));
    QUIVER_TRY(w.write_pod<std::uint32_t>(v.dim()));
    QUIVER_TRY(w.write_pod<std::uint64_t>(v.strings().size()));
    for (const std::string& s : v.strings()) QUIVER_TRY(w.write_string(s));
    return {};
}

Result<Vocabulary> read_vocabulary(storage::BinaryReader& r) {
    QUIVER_ASSIGN_OR_RETURN(std::uint8_t mode, r.read_pod<std::uint8_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint32_t dim, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t n, r.read_pod<std::uint64_t>());
    if (mode > 1) return r.corrupt(fmt::format("unknown vocabulary mode {}", mode));
    if (mode == static_cast<std::uint8_t>(TermMode::kInteger)) {
        if (n != 0) return r.corrupt("integer vocabulary with strings");
        return Vocabulary::integer(dim);
    }
    if (n != dim || n > r.remaining() / 8) return r.corrupt("bad vocabulary size");
    std::vector<std::string> strings;
    strings.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) {
        QUIVER_ASSIGN_OR_RETURN(std::string s, r.read_string(1u << 20));
        strings.push_back(std::move(s));
    }
    auto v = Vocabulary::from_strings(std::move(strings));
    if (!v) return r.corrupt(v.error().message());
    return std::move(*v);
}

ForwardIndex ForwardIndex::build(const SparseCollection& c, WeightFormat format) {
    ForwardIndex f;
    f.dim_ = c.dim();
    f.format_ = format;
    f.wide_terms_ = c.dim() > 65536;
    f.offsets_ = Buffer<std::uint64_t>(c.offsets);
    if (f.wide_terms_) {
        f.terms32_ = Buffer<std::uint32_t>(c.terms);
    } else {
        std::vector<std::uint16_t> t(c.terms.size());
        for (std::size_t i = 0; i < t.size(); ++i) t[i] = static_cast<std::uint16_t>(c.terms[i]);
        f.terms16_ = Buffer<std::uint16_t>(std::move(t));
    }
    if (format == WeightFormat::kF32) {
        f.f32_ = Buffer<float>(c.weights);
    } else {
        std::vector<std::uint16_t> w(c.weights.size());
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = to_bf16(c.weights[i]);
        f.bf16_ = Buffer<std::uint16_t>(std::move(w));
    }
    return f;
}

void ForwardIndex::prefetch(std::uint32_t doc) const noexcept {
    const std::uint64_t b = offsets_[doc];
    if (wide_terms_) __builtin_prefetch(terms32_.data() + b);
    else __builtin_prefetch(terms16_.data() + b);
    if (format_ == WeightFormat::kF32) __builtin_prefetch(f32_.data() + b);
    else __builtin_prefetch(bf16_.data() + b);
}

SparseVector ForwardIndex::row(std::uint32_t doc) const {
    SparseVector v;
    for_each(doc, [&](std::uint32_t t, float w) {
        v.terms.push_back(t);
        v.weights.push_back(w);
    });
    return v;
}

Status ForwardIndex::save(storage::FileWriter& w) const {
    QUIVER_TRY(w.write_pod<std::uint32_t>(dim_));
    QUIVER_TRY(w.write_pod<std::uint8_t>(static_cast<std::uint8_t>(format_)));
    QUIVER_TRY(w.write_pod<std::uint8_t>(wide_terms_ ? 1 : 0));
    QUIVER_TRY(write_buffer(w, offsets_.span()));
    if (wide_terms_) QUIVER_TRY(write_buffer(w, terms32_.span()));
    else QUIVER_TRY(write_buffer(w, terms16_.span()));
    if (format_ == WeightFormat::kF32) QUIVER_TRY(write_buffer(w, f32_.span()));
    else QUIVER_TRY(write_buffer(w, bf16_.span()));
    return {};
}

Result<ForwardIndex> ForwardIndex::load(storage::BinaryReader& r) {
    ForwardIndex f;
    QUIVER_ASSIGN_OR_RETURN(f.dim_, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint8_t fmt_code, r.read_pod<std::uint8_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint8_t wide, r.read_pod<std::uint8_t>());
    if (fmt_code > 1) return r.corrupt(fmt::format("forward index: unknown weight format {}", fmt_code));
    if (wide > 1) return r.corrupt("forward index: bad term width flag");
    f.format_ = static_cast<WeightFormat>(fmt_code);
    f.wide_terms_ = wide == 1;
    QUIVER_ASSIGN_OR_RETURN(f.offsets_, read_buffer<std::uint64_t>(r, "forward offsets"));
    std::size_t nnz = 0;
    if (f.wide_terms_) {
        QUIVER_ASSIGN_OR_RETURN(f.terms32_, read_buffer<std::uint32_t>(r, "forward terms"));
        nnz = f.terms32_.size();
    } else {
        QUIVER_ASSIGN_OR_RETURN(f.terms16_, read_buffer<std::uint16_t>(r, "forward terms"));
        nnz = f.terms16_.size();
    }
    std::size_t nw = 0;
    if (f.format_ == WeightFormat::kF32) {
        QUIVER_ASSIGN_OR_RETURN(f.f32_, read_buffer<float>(r, "forward weights"));
        nw = f.f32_.size();
    } else {
        QUIVER_ASSIGN_OR_RETURN(f.bf16_, read_buffer<std::uint16_t>(r, "forward weights"));
        nw = f.bf16_.size();
    }
    if (f.offsets_.empty() || f.offsets_[0] != 0 || nw != nnz || f.offsets_[f.offsets_.size() - 1] != nnz)
        return r.corrupt("forward index: offsets do not match the term and weight arrays");
    for (std::size_t i = 1; i < f.offsets_.size(); ++i)
        if (f.offsets_[i] < f.offsets_[i - 1]) return r.corrupt("forward index: offsets are not monotone");
    for (std::size_t j = 0; j < nnz; ++j)
        if (f.term_at(j) >= f.dim_) return r.corrupt("forward index: term id beyond the vocabulary");
    return f;
}

}  // namespace quiver::sparse
