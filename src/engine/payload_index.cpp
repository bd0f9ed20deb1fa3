// Payload indexes and filter evaluation. See payload_index.h.
#include "quiver/engine/payload_index.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/codec.h"
#include "quiver/storage/file_format.h"

namespace quiver::engine {
namespace {

constexpr std::uint32_t kPayloadKind = storage::fourcc("PIDX");
constexpr std::uint32_t kPayloadVersion = 1;

bool keyed_type(FieldType t) {
    return t == FieldType::kKeyword || t == FieldType::kBool || t == FieldType::kKeywordList;
}
bool numeric_type(FieldType t) { return t == FieldType::kInteger || t == FieldType::kFloat; }
bool attribute_type(FieldType t) { return keyed_type(t) || numeric_type(t); }

bool number_of(const FieldValue& v, double& out) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
        out = static_cast<double>(*i);
        return true;
    }
    if (const auto* d = std::get_if<double>(&v)) {
        out = *d;
        return true;
    }
    return false;
}

// The key a keyed field stores for a scalar filter value ("false"/"true" for booleans).
bool key_of(const FieldValue& v, std::string& out) {
    if (const auto* s = std::get_if<std::string>(&v)) {
        out = *s;
        return true;
    }
    if (const auto* b = std::get_if<bool>(&v)) {
        out = *b ? "true" : "false";
        return true;
    }
    return false;
}

}  // namespace

// ---- CompiledFilter -----------------------------------------------------------------------------

struct CompiledFilter::Node {
    const Filter* f = nullptr;
    std::vector<Node> children;
    // kIn / kEq / kNe leaves: the values as sorted sets.
    std::vector<std::string> strings;
    std::vector<double> numbers;
    bool has_false = false;
    bool has_true = false;

    explicit Node(const Filter& filter) : f(&filter) {
        for (const auto& c : filter.children) children.emplace_back(c);
        if (filter.op != Filter::Op::kIn && filter.op != Filter::Op::kEq && filter.op != Filter::Op::kNe) return;
        for (const auto& v : filter.values) {
            double d = 0;
            if (const auto* s = std::get_if<std::string>(&v)) {
                strings.push_back(*s);
            } else if (const auto* b = std::get_if<bool>(&v)) {
                (*b ? has_true : has_false) = true;
            } else if (number_of(v, d)) {
                numbers.push_back(d);
            }
        }
        std::sort(strings.begin(), strings.end());
        strings.erase(std::unique(strings.begin(), strings.end()), strings.end());
        std::sort(numbers.begin(), numbers.end());
        numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
    }

    bool any_value_equals(const FieldValue& stored) const {
        double x = 0;
        if (number_of(stored, x)) return std::binary_search(numbers.begin(), numbers.end(), x);
        if (const auto* s = std::get_if<std::string>(&stored)) return std::binary_search(strings.begin(), strings.end(), *s);
        if (const auto* b = std::get_if<bool>(&stored)) return *b ? has_true : has_false;
        if (const auto* list = std::get_if<std::vector<std::string>>(&stored)) {
            for (const auto& e : *list) {
                if (std::binary_search(strings.begin(), strings.end(), e)) return true;
            }
        }
        return false;
    }

    bool matches(const Attributes& fields) const {
        using Op = Filter::Op;
        switch (f->op) {
            case Op::kAnd:
                for (const auto& c : children) {
                    if (!c.matches(fields)) return false;
                }
                return true;
            case Op::kOr:
                for (const auto& c : children) {
                    if (c.matches(fields)) return true;
                }
                return false;
            case Op::kNot: return !children.empty() && !children[0].matches(fields);
            case Op::kRange:
            case Op::kExists:
            case Op::kPrefix: return f->matches(fields);  // constant cost per document
            default: break;
        }
        const auto it = fields.find(f->field);
        if (it == fields.end() || std::holds_alternative<std::monostate>(it->second)) return false;
        const bool eq = any_value_equals(it->second);
        return f->op == Op::kNe ? !eq : eq;
    }
};

CompiledFilter::CompiledFilter(const Filter& filter) : root_(std::make_unique<Node>(filter)) {}
CompiledFilter::~CompiledFilter() = default;
CompiledFilter::CompiledFilter(CompiledFilter&&) noexcept = default;
CompiledFilter& CompiledFilter::operator=(CompiledFilter&&) noexcept = default;
bool CompiledFilter::matches(const Attributes& fields) const { return root_->matches(fields); }

// ---- PayloadIndex -------------------------------------------------------------------------------

struct PayloadIndex::Field {
    FieldType type = FieldType::kKeyword;
    Bitmap exists;
    // keyed fields
    std::vector<std::string> keys;  // sorted, distinct
    std::vector<Bitmap> key_docs;   // per key
    // numeric fields
    std::vector<double> values;       // sorted ascending
    std::vector<std::uint32_t> docs;  // docs[i] has values[i]
    std::vector<Bitmap> buckets;      // bucket b = docs[b * kRangeBucket, (b + 1) * kRangeBucket)

    std::size_t memory_bytes() const {
        std::size_t n = exists.memory_bytes() + values.capacity() * 8 + docs.capacity() * 4;
        for (const auto& k : keys) n += k.capacity() + sizeof(std::string);
        for (const auto& b : key_docs) n += b.memory_bytes();
        for (const auto& b : buckets) n += b.memory_bytes();
        return n;
    }

    std::size_t key_index(std::string_view key) const {
        const auto it = std::lower_bound(keys.begin(), keys.end(), key,
                                         [](const std::string& a, std::string_view b) { return a < b; });
        return it != keys.end() && *it == key ? static_cast<std::size_t>(it - keys.begin()) : keys.size();
    }

    // Budget units of add_pairs(lo, hi): loose pairs, plus the chunks of the whole buckets united.
    std::uint64_t pairs_cost(std::size_t lo, std::size_t hi) const {
        const std::size_t first_full = (lo + kRangeBucket - 1) / kRangeBucket;
        const std::size_t end_full = hi / kRangeBucket;
        if (first_full >= end_full) return hi - lo;
        std::uint64_t cost = (first_full * kRangeBucket - lo) + (hi - end_full * kRangeBucket);
        for (std::size_t b = first_full; b < end_full; ++b) cost += 2 * buckets[b].chunks() * FilterBudget::kChunkUnits;
        return cost;
    }

    // Documents whose value lies in pair positions [lo, hi).
    void add_pairs(std::size_t lo, std::size_t hi, Bitmap& out) const {
        const std::size_t first_full = (lo + kRangeBucket - 1) / kRangeBucket;
        const std::size_t end_full = hi / kRangeBucket;
        std::vector<std::uint32_t> loose;
        if (first_full >= end_full) {
            loose.assign(docs.begin() + static_cast<std::ptrdiff_t>(lo), docs.begin() + static_cast<std::ptrdiff_t>(hi));
        } else {
            loose.assign(docs.begin() + static_cast<std::ptrdiff_t>(lo),
                         docs.begin() + static_cast<std::ptrdiff_t>(first_full * kRangeBucket));
            loose.insert(loose.end(), docs.begin() + static_cast<std::ptrdiff_t>(end_full * kRangeBucket),
                         docs.begin() + static_cast<std::ptrdiff_t>(hi));
            for (std::size_t b = first_full; b < end_full; ++b) out.union_with(buckets[b]);
        }
        std::sort(loose.begin(), loose.end());
        out.add_many(loose);
    }
};

PayloadIndex::PayloadIndex() = default;
PayloadIndex::~PayloadIndex() = default;
PayloadIndex::PayloadIndex(PayloadIndex&&) noexcept = default;
PayloadIndex& PayloadIndex::operator=(PayloadIndex&&) noexcept = default;

std::uint32_t PayloadIndex::size() const noexcept { return docs_; }
const std::vector<FieldSpec>& PayloadIndex::fields() const noexcept { return specs_; }
bool PayloadIndex::indexes(std::string_view name) const noexcept { return field(name) != nullptr; }
const PayloadIndex::Field* PayloadIndex::field(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        if (specs_[i].name == name) return &fields_[i];
    }
    return nullptr;
}
std::size_t PayloadIndex::memory_bytes() const {
    std::size_t n = 0;
    for (const auto& f : fields_) n += f.memory_bytes();
    return n;
}

PayloadIndex PayloadIndex::build(const Schema& schema, std::span<const Document> attrs) {
    std::vector<FieldSpec> specs;
    for (const auto& f : schema.fields) {
        if (f.payload_index && attribute_type(f.type)) specs.push_back(f);
    }
    return build_fields(specs, attrs);
}

PayloadIndex PayloadIndex::build_fields(std::span<const FieldSpec> fields, std::span<const Document> attrs) {
    PayloadIndex out;
    out.docs_ = static_cast<std::uint32_t>(attrs.size());
    for (const auto& spec : fields) {
        if (!attribute_type(spec.type)) continue;
        FieldSpec s;
        s.name = spec.name;
        s.type = spec.type;
        s.payload_index = true;
        Field f;
        f.type = spec.type;
        std::vector<std::uint32_t> present;
        if (keyed_type(spec.type)) {
            std::map<std::string, std::vector<std::uint32_t>, std::less<>> postings;
            std::string key;
            for (std::uint32_t d = 0; d < attrs.size(); ++d) {
                const auto it = attrs[d].fields.find(spec.name);
                if (it == attrs[d].fields.end() || std::holds_alternative<std::monostate>(it->second)) continue;
                present.push_back(d);
                if (const auto* list = std::get_if<std::vector<std::string>>(&it->second)) {
                    for (const auto& e : *list) {
                        auto& p = postings[e];
                        if (p.empty() || p.back() != d) p.push_back(d);
                    }
                } else if (key_of(it->second, key)) {
                    postings[key].push_back(d);
                }
            }
            for (auto& [k, docs] : postings) {
                f.keys.push_back(k);
                Bitmap b = Bitmap::of(docs);
                b.optimize();
                f.key_docs.push_back(std::move(b));
            }
        } else {
            std::vector<std::pair<double, std::uint32_t>> pairs;
            for (std::uint32_t d = 0; d < attrs.size(); ++d) {
                const auto it = attrs[d].fields.find(spec.name);
                double x = 0;
                if (it == attrs[d].fields.end() || !number_of(it->second, x)) continue;
                present.push_back(d);
                pairs.emplace_back(x, d);
            }
            std::sort(pairs.begin(), pairs.end());
            f.values.reserve(pairs.size());
            f.docs.reserve(pairs.size());
            for (const auto& [x, d] : pairs) {
                f.values.push_back(x);
                f.docs.push_back(d);
            }
            for (std::size_t b = 0; b + kRangeBucket <= f.docs.size(); b += kRangeBucket) {
                std::vector<std::uint32_t> part(f.docs.begin() + static_cast<std::ptrdiff_t>(b),
                                                f.docs.begin() + static_cast<std::ptrdiff_t>(b + kRangeBucket));
                std::sort(part.begin(), part.end());
                Bitmap bits = Bitmap::of(part);
                bits.optimize();
                f.buckets.push_back(std::move(bits));
            }
        }
        f.exists = Bitmap::of(present);
        f.exists.optimize();
        out.specs_.push_back(std::move(s));
        out.fields_.push_back(std::move(f));
    }
    return out;
}

namespace {

void put_bitmap(ByteWriter& w, const Bitmap& b) { w.str(b.serialize()); }

Result<Bitmap> get_bitmap(ByteReader& r, std::uint32_t docs) {
    QUIVER_ASSIGN_OR_RETURN(std::string bytes, r.str());
    QUIVER_ASSIGN_OR_RETURN(Bitmap b, Bitmap::deserialize(std::as_bytes(std::span<const char>(bytes))));
    if (!b.empty() && b.maximum() >= docs) return data_loss("bitmap member beyond the document count");
    return b;
}

}  // namespace

Status PayloadIndex::save(const std::string& path) const {
    ByteWriter w;
    w.u32(docs_);
    w.u32(static_cast<std::uint32_t>(specs_.size()));
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        const Field& f = fields_[i];
        w.str(specs_[i].name);
        w.u8(static_cast<std::uint8_t>(specs_[i].type));
        put_bitmap(w, f.exists);
        if (keyed_type(f.type)) {
            w.u32(static_cast<std::uint32_t>(f.keys.size()));
            for (std::size_t k = 0; k < f.keys.size(); ++k) {
                w.str(f.keys[k]);
                put_bitmap(w, f.key_docs[k]);
            }
        } else {
            w.u32(static_cast<std::uint32_t>(f.values.size()));
            w.raw(f.values.data(), f.values.size() * sizeof(double));
            w.raw(f.docs.data(), f.docs.size() * sizeof(std::uint32_t));
            w.u32(static_cast<std::uint32_t>(f.buckets.size()));
            for (const auto& b : f.buckets) put_bitmap(w, b);
        }
    }
    QUIVER_ASSIGN_OR_RETURN(auto fw, storage::FileWriter::create(path, kPayloadKind, kPayloadVersion));
    QUIVER_TRY(fw.write_string(w.bytes()));
    return fw.finish();
}

Result<PayloadIndex> PayloadIndex::open(const std::string& path) {
    auto as_loss = [&](const Error& e) -> Error {
        if (e.code() == ErrorCode::kDataLoss || e.code() == ErrorCode::kFailedPrecondition) {
            return Error(e.code(), "payload index '" + path + "': " + e.message());
        }
        return data_loss("payload index '" + path + "': " + e.message());
    };
    auto file = storage::MappedFile::open(path);
    if (!file) return as_loss(file.error());
    auto reader = storage::open_payload(*file, kPayloadKind, kPayloadVersion);
    if (!reader) return as_loss(reader.error());
    auto bytes = reader->read_string();
    if (!bytes) return as_loss(bytes.error());
    auto parsed = [&]() -> Result<PayloadIndex> {
        ByteReader r(*bytes);
        PayloadIndex out;
        QUIVER_ASSIGN_OR_RETURN(out.docs_, r.u32());
        QUIVER_ASSIGN_OR_RETURN(std::uint32_t nf, r.u32());
        if (nf > 256) return data_loss(std::to_string(nf) + " fields");
        for (std::uint32_t i = 0; i < nf; ++i) {
            FieldSpec s;
            s.payload_index = true;
            QUIVER_ASSIGN_OR_RETURN(s.name, r.str());
            QUIVER_ASSIGN_OR_RETURN(std::uint8_t type, r.u8());
            if (type > 7 || !attribute_type(static_cast<FieldType>(type))) {
                return data_loss("field '" + s.name + "' has type " + std::to_string(type));
            }
            s.type = static_cast<FieldType>(type);
            Field f;
            f.type = s.type;
            QUIVER_ASSIGN_OR_RETURN(f.exists, get_bitmap(r, out.docs_));
            if (keyed_type(f.type)) {
                QUIVER_ASSIGN_OR_RETURN(std::uint32_t nk, r.u32());
                if (nk > r.remaining() / 8) return data_loss("field '" + s.name + "': key count beyond the file");
                for (std::uint32_t k = 0; k < nk; ++k) {
                    QUIVER_ASSIGN_OR_RETURN(std::string key, r.str());
                    if (!f.keys.empty() && !(f.keys.back() < key)) {
                        return data_loss("field '" + s.name + "': keys out of order");
                    }
                    f.keys.push_back(std::move(key));
                    QUIVER_ASSIGN_OR_RETURN(Bitmap b, get_bitmap(r, out.docs_));
                    f.key_docs.push_back(std::move(b));
                }
            } else {
                QUIVER_ASSIGN_OR_RETURN(std::uint32_t np, r.u32());
                if (np > r.remaining() / 12 || np > out.docs_) {
                    return data_loss("field '" + s.name + "': value count beyond the file");
                }
                f.values.resize(np);
                f.docs.resize(np);
                QUIVER_TRY(r.raw(f.values.data(), np * sizeof(double)));
                QUIVER_TRY(r.raw(f.docs.data(), np * sizeof(std::uint32_t)));
                for (std::uint32_t p = 0; p < np; ++p) {
                    if (std::isnan(f.values[p]) || (p > 0 && f.values[p] < f.values[p - 1]) || f.docs[p] >= out.docs_) {
                        return data_loss("field '" + s.name + "': value table out of order or out of range");
                    }
                }
                QUIVER_ASSIGN_OR_RETURN(std::uint32_t nb, r.u32());
                if (nb != np / kRangeBucket) return data_loss("field '" + s.name + "': bucket count");
                for (std::uint32_t b = 0; b < nb; ++b) {
                    QUIVER_ASSIGN_OR_RETURN(Bitmap bits, get_bitmap(r, out.docs_));
                    if (bits.cardinality() != kRangeBucket) return data_loss("field '" + s.name + "': bucket size");
                    f.buckets.push_back(std::move(bits));
                }
            }
            out.specs_.push_back(std::move(s));
            out.fields_.push_back(std::move(f));
        }
        if (!r.done()) return data_loss("trailing bytes");
        return out;
    }();
    if (!parsed) return as_loss(parsed.error());
    return std::move(parsed).value();
}

// ---- evaluation ---------------------------------------------------------------------------------

namespace {

class Evaluator {
public:
    Evaluator(const PayloadIndex& index, std::span<const Document> attrs, FilterEvalStats& stats, FilterBudget* budget)
        : index_(index), attrs_(attrs), n_(attrs.empty() ? index.size() : static_cast<std::uint32_t>(attrs.size())),
          stats_(stats), budget_(budget) {}

    // Can `f` be answered from the index alone?
    bool indexed(const Filter& f) const {
        using Op = Filter::Op;
        if (f.op == Op::kAnd || f.op == Op::kOr || f.op == Op::kNot) {
            for (const auto& c : f.children) {
                if (!indexed(c)) return false;
            }
            return true;
        }
        return index_.indexes(f.field);
    }

    // The documents matching `f`; when `within` is set, only members of `within` need be right
    // (the caller intersects), which lets scans skip documents an enclosing `and` excluded.
    Bitmap eval(const Filter& f, const Bitmap* within) {
        using Op = Filter::Op;
        if (over()) return {};  // out of budget: the caller discards the result
        switch (f.op) {
            case Op::kAnd: {
                // Indexed children first (cheap, and they narrow what scans must visit).
                std::vector<const Filter*> order;
                for (const auto& c : f.children) {
                    if (indexed(c)) order.push_back(&c);
                }
                for (const auto& c : f.children) {
                    if (!indexed(c)) order.push_back(&c);
                }
                std::optional<Bitmap> acc;
                if (within != nullptr) acc = *within;
                for (const Filter* c : order) {
                    Bitmap part = eval(*c, acc ? &*acc : nullptr);
                    if (acc) {
                        if (!combine(*acc, part)) return {};
                        acc->intersect_with(part);
                    } else {
                        acc = std::move(part);
                    }
                    if (acc->empty()) break;
                }
                if (!acc) return universe(within);
                return std::move(*acc);
            }
            case Op::kOr: {
                Bitmap acc;
                for (const auto& c : f.children) {
                    Bitmap part = eval(c, within);
                    if (!combine(acc, part)) return {};
                    acc.union_with(part);
                }
                return acc;
            }
            case Op::kNot: {
                Bitmap all = universe(within);
                if (!f.children.empty()) {
                    Bitmap part = eval(f.children[0], within);
                    if (!combine(all, part)) return {};
                    all.subtract(part);
                }
                return all;
            }
            default: break;
        }
        if (const PayloadIndex::Field* field = index_.field(f.field)) return lookup(f, *field);
        return scan(f, within);
    }

private:
    bool over() const noexcept { return budget_ != nullptr && budget_->exceeded(); }
    // Charges `units` of work about to be done; false when that goes over the budget.
    bool charge(std::uint64_t units) noexcept { return budget_ == nullptr || budget_->charge(units); }
    // Charges a set operation of `a` with `b`.
    bool combine(const Bitmap& a, const Bitmap& b) noexcept {
        return charge((a.chunks() + b.chunks()) * FilterBudget::kChunkUnits);
    }

    Bitmap universe(const Bitmap* within) const {
        return within != nullptr ? *within : Bitmap::range(0, n_);
    }

    Bitmap scan(const Filter& f, const Bitmap* within) {
        const CompiledFilter leaf(f);
        std::vector<std::uint32_t> hits;
        auto test = [&](std::uint32_t d) {
            if (d < attrs_.size() && leaf.matches(attrs_[d].fields)) hits.push_back(d);
        };
        if (!charge(within != nullptr ? within->cardinality() : attrs_.size())) return {};
        if (within != nullptr) {
            within->for_each([&](std::uint32_t d) { test(d); });
            stats_.docs_scanned += within->cardinality();
        } else {
            for (std::uint32_t d = 0; d < attrs_.size(); ++d) test(d);
            stats_.docs_scanned += attrs_.size();
        }
        return Bitmap::of(hits);
    }

    Bitmap keyed_eq(const PayloadIndex::Field& field, const FieldValue& v) {
        std::string key;
        if (!key_of(v, key) || !charge(1)) return {};
        ++stats_.index_lookups;
        const std::size_t i = field.key_index(key);
        return i < field.keys.size() ? field.key_docs[i] : Bitmap{};
    }

    Bitmap numeric_eq(const PayloadIndex::Field& field, const FieldValue& v) {
        double x = 0;
        if (!number_of(v, x) || !charge(1)) return {};
        ++stats_.index_lookups;
        const auto [lo, hi] = std::equal_range(field.values.begin(), field.values.end(), x);
        Bitmap out;
        pairs(field, static_cast<std::size_t>(lo - field.values.begin()), static_cast<std::size_t>(hi - field.values.begin()),
              out);
        return out;
    }

    // The documents of pair positions [lo, hi), charged first.
    bool pairs(const PayloadIndex::Field& field, std::size_t lo, std::size_t hi, Bitmap& out) {
        if (budget_ != nullptr && !charge(field.pairs_cost(lo, hi))) return false;
        field.add_pairs(lo, hi, out);
        return true;
    }

    Bitmap lookup(const Filter& f, const PayloadIndex::Field& field) {
        using Op = Filter::Op;
        const bool keyed = keyed_type(field.type);
        switch (f.op) {
            case Op::kExists:
                if (!charge(field.exists.chunks() * FilterBudget::kChunkUnits)) return {};
                return field.exists;
            case Op::kEq:
            case Op::kNe: {
                if (f.values.empty()) return {};
                Bitmap eq = keyed ? keyed_eq(field, f.values[0]) : numeric_eq(field, f.values[0]);
                if (f.op == Op::kEq) return eq;
                if (!combine(field.exists, eq)) return {};
                Bitmap out = field.exists;
                out.subtract(eq);
                return out;
            }
            case Op::kIn: {
                // One lookup per value, never per document.
                std::vector<Bitmap> parts;
                if (keyed) {
                    for (const auto& v : f.values) {
                        Bitmap b = keyed_eq(field, v);
                        if (!b.empty()) parts.push_back(std::move(b));
                    }
                } else {
                    for (const auto& v : f.values) {
                        Bitmap b = numeric_eq(field, v);
                        if (!b.empty()) parts.push_back(std::move(b));
                    }
                }
                Bitmap out;
                for (const auto& p : parts) {
                    if (!combine(out, p)) return {};
                    out.union_with(p);
                }
                return out;
            }
            case Op::kPrefix: {
                const auto* prefix = f.values.empty() ? nullptr : std::get_if<std::string>(&f.values[0]);
                if (prefix == nullptr || !keyed) return {};
                if (!charge(1)) return {};
                ++stats_.index_lookups;
                auto it = std::lower_bound(field.keys.begin(), field.keys.end(), *prefix);
                Bitmap out;
                for (; it != field.keys.end() && it->compare(0, prefix->size(), *prefix) == 0; ++it) {
                    const Bitmap& part = field.key_docs[static_cast<std::size_t>(it - field.keys.begin())];
                    if (!combine(out, part)) return {};
                    out.union_with(part);
                }
                return out;
            }
            case Op::kRange: {
                if (keyed || !charge(2)) return {};
                stats_.index_lookups += 2;
                auto lo = field.values.begin();
                auto hi = field.values.end();
                if (f.gte) lo = std::max(lo, std::lower_bound(field.values.begin(), field.values.end(), *f.gte));
                if (f.gt) lo = std::max(lo, std::upper_bound(field.values.begin(), field.values.end(), *f.gt));
                if (f.lte) hi = std::min(hi, std::upper_bound(field.values.begin(), field.values.end(), *f.lte));
                if (f.lt) hi = std::min(hi, std::lower_bound(field.values.begin(), field.values.end(), *f.lt));
                Bitmap out;
                if (lo < hi) {
                    pairs(field, static_cast<std::size_t>(lo - field.values.begin()),
                          static_cast<std::size_t>(hi - field.values.begin()), out);
                }
                return out;
            }
            default: return {};
        }
    }

    const PayloadIndex& index_;
    std::span<const Document> attrs_;
    std::uint32_t n_;  // documents: attrs_, or the index's when no attributes are given
    FilterEvalStats& stats_;
    FilterBudget* budget_;  // null: unlimited
};

}  // namespace

Bitmap evaluate_filter(const Filter& filter, const PayloadIndex& index, std::span<const Document> attrs,
                       FilterEvalStats* stats) {
    FilterEvalStats local;
    Evaluator ev(index, attrs, stats != nullptr ? *stats : local, nullptr);
    Bitmap out = ev.eval(filter, nullptr);
    const std::uint32_t n = attrs.empty() ? index.size() : static_cast<std::uint32_t>(attrs.size());
    if (!out.empty() && out.maximum() >= n) out.intersect_with(Bitmap::range(0, n));
    return out;
}

Result<Bitmap> evaluate_filter(const Filter& filter, const PayloadIndex& index, std::span<const Document> attrs,
                               FilterBudget& budget, FilterEvalStats* stats) {
    QUIVER_TRY(budget.status());
    FilterEvalStats local;
    Evaluator ev(index, attrs, stats != nullptr ? *stats : local, &budget);
    Bitmap out = ev.eval(filter, nullptr);
    QUIVER_TRY(budget.status());
    const std::uint32_t n = attrs.empty() ? index.size() : static_cast<std::uint32_t>(attrs.size());
    if (!out.empty() && out.maximum() >= n) out.intersect_with(Bitmap::range(0, n));
    return out;
}

Status FilterBudget::status() const {
    if (!exceeded()) return ok_status();
    return resource_exhausted("filter budget exceeded: evaluating the filter needs more than " + std::to_string(limit_) +
                              " work units (the per-request limit); index its fields (\"index\": true) or narrow it");
}

namespace {
std::uint64_t count_nodes(const Filter& f) noexcept {
    std::uint64_t n = 1;
    for (const auto& c : f.children) n += count_nodes(c);
    return n;
}
}  // namespace

std::uint64_t filter_nodes(const Filter& filter) noexcept { return count_nodes(filter); }

}  // namespace quiver::engine
