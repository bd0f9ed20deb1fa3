// Queries and writes on top of snapshots: count, scroll (id order), delete by filter, partial update.
#include <algorithm>
#include <functional>
#include <queue>
#include <string_view>
#include <unordered_map>

#include "engine/collection_state.h"

namespace quiver::engine {

std::vector<LiveRef> live_in_id_order(const Snapshot& snap, const Filter* filter, std::string_view after,
                                      std::size_t limit, FilterBudget* budget) {
    if (limit == 0) return {};
    // A k-way merge of the sources in id order: each segment walks its id_order() from the first id
    // after `after`; the memtable (small) is sorted here. A page costs O(sources x log) plus the
    // documents it skips (deleted or filtered out), not a pass over the collection.
    struct Cursor {
        std::size_t source = 0;
        std::span<const std::uint32_t> order;  // slots in id order
        std::size_t pos = 0;
    };
    std::vector<std::uint32_t> mem_order;
    std::vector<Cursor> cursors;
    for (std::size_t si = 0; si < snap.sources(); ++si) {
        if (snap.is_mem(si)) {
            for (std::uint32_t local = 0; local < snap.source_size(si); ++local) {
                if (snap.live(si, local) && (after.empty() || snap.doc_id(si, local) > after)) mem_order.push_back(local);
            }
            std::sort(mem_order.begin(), mem_order.end(),
                      [&](std::uint32_t a, std::uint32_t b) { return snap.doc_id(si, a) < snap.doc_id(si, b); });
            if (!mem_order.empty()) cursors.push_back({si, mem_order, 0});
        } else {
            const Segment& seg = *snap.segs[si].seg;
            const std::size_t first = seg.first_in_id_order_after(after);
            if (first < seg.id_order().size()) cursors.push_back({si, seg.id_order(), first});
        }
    }
    auto id_at = [&](const Cursor& c) { return snap.doc_id(c.source, c.order[c.pos]); };
    auto greater = [&](std::size_t a, std::size_t b) { return id_at(cursors[a]) > id_at(cursors[b]); };
    std::priority_queue<std::size_t, std::vector<std::size_t>, decltype(greater)> heap(greater);
    for (std::size_t i = 0; i < cursors.size(); ++i) heap.push(i);
    const std::optional<CompiledFilter> compiled = filter ? std::optional<CompiledFilter>(*filter) : std::nullopt;
    const std::uint64_t nodes = filter != nullptr ? filter_nodes(*filter) : 0;
    std::vector<LiveRef> out;
    while (!heap.empty() && out.size() < limit) {
        const std::size_t ci = heap.top();
        heap.pop();
        Cursor& c = cursors[ci];
        const std::uint32_t local = c.order[c.pos];
        if (snap.live(c.source, local)) {
            if (compiled && budget != nullptr && !budget->charge(nodes)) break;
            if (!compiled || compiled->matches(snap.attributes(c.source, local).fields)) out.push_back({c.source, local});
        }
        if (++c.pos < c.order.size()) heap.push(ci);
    }
    return out;
}

Result<std::size_t> Collection::count(const std::optional<Filter>& filter) const {
    if (filter) QUIVER_TRY(filter->validate(impl_->schema));
    const auto snap = impl_->current();
    std::size_t n = 0;
    const std::optional<CompiledFilter> compiled = filter ? std::optional<CompiledFilter>(*filter) : std::nullopt;
    FilterBudget budget(impl_->options.filter_budget);
    for (std::size_t si = 0; si < snap->sources(); ++si) {
        if (!filter) {
            n += snap->live_count(si);
            continue;
        }
        if (si < snap->segs.size()) {  // a segment: its payload index answers
            QUIVER_ASSIGN_OR_RETURN(Bitmap bits, snap->segs[si].seg->matching(*filter, budget));
            if (!snap->segs[si].deleted.empty()) bits.subtract(snap->segs[si].deleted.merged());
            n += bits.cardinality();
            continue;
        }
        budget.charge(static_cast<std::uint64_t>(snap->source_size(si)) * filter_nodes(*filter));
        QUIVER_TRY(budget.status());
        for (std::uint32_t local = 0; local < snap->source_size(si); ++local) {
            if (snap->live(si, local) && compiled->matches(snap->attributes(si, local).fields)) ++n;
        }
    }
    return n;
}

Result<ScrollPage> Collection::scroll(const ScrollRequest& request) const {
    const Schema& schema = impl_->schema;
    if (request.limit == 0) return invalid_argument("limit must be at least 1");
    if (request.filter) QUIVER_TRY(request.filter->validate(schema));
    if (request.return_fields) {
        for (const auto& f : *request.return_fields) {
            if (schema.find(f) == nullptr) return invalid_argument("unknown return field '" + f + "'");
        }
    }
    const auto snap = impl_->current();
    // One more than the page tells whether the walk goes on.
    FilterBudget budget(impl_->options.filter_budget);
    const auto refs = live_in_id_order(*snap, request.filter ? &*request.filter : nullptr, request.after,
                                       request.limit + 1, &budget);
    QUIVER_TRY(budget.status());
    ScrollPage page;
    for (std::size_t i = 0; i < refs.size() && i < request.limit; ++i) {
        Document out;
        out.id = std::string(snap->doc_id(refs[i].seg, refs[i].local));
        if (!request.return_fields) {
            QUIVER_ASSIGN_OR_RETURN(Document d, snap->document(refs[i].seg, refs[i].local));
            out.fields = std::move(d.fields);
        } else if (!request.return_fields->empty()) {
            QUIVER_ASSIGN_OR_RETURN(Document d, snap->document(refs[i].seg, refs[i].local, *request.return_fields));
            out.fields = std::move(d.fields);
        }
        page.documents.push_back(std::move(out));
    }
    if (refs.size() > request.limit) page.next_after = page.documents.back().id;
    return page;
}

Result<std::size_t> Collection::remove_where(const Filter& filter) {
    QUIVER_TRY(filter.validate(impl_->schema));
    const auto snap = impl_->current();
    std::vector<std::string> ids;
    const CompiledFilter compiled(filter);
    for (std::size_t si = 0; si < snap->sources(); ++si) {
        for (std::uint32_t local = 0; local < snap->source_size(si); ++local) {
            if (snap->live(si, local) && compiled.matches(snap->attributes(si, local).fields)) {
                ids.emplace_back(snap->doc_id(si, local));
            }
        }
    }
    // As of the snapshot: a matching document rewritten or deleted since is left as it now is.
    return impl_->remove_ids(ids, snap->seq);
}

Result<std::size_t> Collection::patch(std::vector<Document> partial) {
    const Schema& schema = impl_->schema;
    for (const auto& d : partial) {
        if (!valid_document_id(d.id)) return invalid_argument("document id must be 1-512 bytes of valid UTF-8");
        for (const auto& [name, value] : d.fields) {
            if (schema.find(name) == nullptr) return invalid_argument("document '" + d.id + "': unknown field '" + name + "'");
        }
    }
    if (partial.empty()) return std::size_t{0};
    std::vector<std::size_t> stripes;
    stripes.reserve(partial.size());
    for (const auto& p : partial) stripes.push_back(std::hash<std::string>{}(p.id) % Impl::kPatchStripes);
    std::sort(stripes.begin(), stripes.end());
    stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
    std::vector<std::unique_lock<std::mutex>> locks;  // ascending stripe order: no deadlock between patches
    locks.reserve(stripes.size());
    for (std::size_t i : stripes) locks.emplace_back(impl_->patch_mu[i]);
    std::vector<Document> merged;
    std::unordered_map<std::string, std::size_t> slot;  // id -> index in `merged` (an id may repeat)
    for (auto& p : partial) {
        auto it = slot.find(p.id);
        if (it == slot.end()) {
            QUIVER_ASSIGN_OR_RETURN(Document stored, get(p.id));
            it = slot.emplace(p.id, merged.size()).first;
            merged.push_back(std::move(stored));
        }
        Document& d = merged[it->second];
        for (const FieldSpec& f : schema.fields) {
            // A vector embedded from sources follows its sources unless the patch gives the vector.
            if (!embeds_text(f) || f.sources.empty() || p.fields.count(f.name) != 0) continue;
            for (const auto& src : f.sources) {
                if (p.fields.count(src) != 0) {
                    d.fields.erase(f.name);
                    break;
                }
            }
        }
        for (auto& [name, value] : p.fields) {
            if (std::holds_alternative<std::monostate>(value)) {
                d.fields.erase(name);
            } else {
                d.fields[name] = std::move(value);
            }
        }
    }
    const std::size_t n = merged.size();
    QUIVER_TRY(upsert(std::move(merged)));
    return n;
}

}  // namespace quiver::engine
