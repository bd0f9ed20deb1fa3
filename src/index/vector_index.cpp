#include "quiver/index/vector_index.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>

#include "quiver/index/code_index.h"
#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/storage/file_format.h"

namespace quiver::index {

SearchResults::SearchResults(std::size_t nq, std::size_t kk)
    : num_queries(nq),
      k(kk),
      labels(nq * kk, kNoLabel),
      distances(nq * kk, std::numeric_limits<float>::infinity()) {}

std::size_t SearchResults::count(std::size_t q) const noexcept {
    std::size_t n = 0;
    while (n < k && labels[q * k + n] != kNoLabel) ++n;
    return n;
}

std::string VectorIndex::label_name(Label label) const {
    const auto v = to_int(label);
    if (v < external_ids_.size()) return external_ids_[v];
    return std::to_string(v);
}

std::vector<Label> sequential_labels(std::size_t n, std::uint64_t first) {
    std::vector<Label> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = Label{first + i};
    return out;
}

Result<std::unique_ptr<VectorIndex>> open_index(const std::string& path, const OpenIndexOptions& options) {
    QUIVER_ASSIGN_OR_RETURN(storage::MappedFile file, storage::MappedFile::open(path));
    const auto bytes = file.bytes();
    if (bytes.size() < storage::kHeaderBytes) {
        return data_loss(fmt::format("'{}' is truncated: {} bytes", path, bytes.size()));
    }
    std::uint32_t header[2];
    std::memcpy(header, bytes.data(), sizeof(header));
    if (header[0] != storage::kFileMagic) {
        return invalid_argument(fmt::format("'{}' is not a quiver index file", path));
    }
    if (header[1] == kFlatFileKind) {
        QUIVER_ASSIGN_OR_RETURN(auto idx, FlatIndex::open(path, options.verify));
        return std::unique_ptr<VectorIndex>(std::move(idx));
    }
    if (header[1] == kHnswFileKind) {
        QUIVER_ASSIGN_OR_RETURN(auto idx, HnswIndex::open(path, {.vectors_on_disk = options.vectors_on_disk,
                                                                     .verify = options.verify}));
        return std::unique_ptr<VectorIndex>(std::move(idx));
    }
    if (header[1] == kCodeIndexFileKind) {
        QUIVER_ASSIGN_OR_RETURN(auto idx, CodeIndex::open(path, {.vectors_on_disk = options.vectors_on_disk,
                                                                     .verify = options.verify}));
        return std::unique_ptr<VectorIndex>(std::move(idx));
    }
    return invalid_argument(fmt::format("'{}' holds a '{}' file, not a vector index", path,
                                        storage::fourcc_string(header[1])));
}

}  // namespace quiver::index
