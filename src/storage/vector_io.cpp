#include "quiver/storage/vector_io.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "quiver/core/json.h"
#include "quiver/storage/file_format.h"
#include "quiver/storage/fs.h"

namespace quiver::storage {
namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// fvecs/ivecs/bvecs: per row an int32 dim, then dim elements of ElemBytes bytes.
template <class Elem, class Out, class Convert>
Result<Matrix<Out>> read_texmex(const std::string& path, std::size_t max_rows, Convert convert) {
    QUIVER_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
    const auto bytes = file.bytes();
    if (bytes.empty()) return invalid_argument(fmt::format("'{}' is empty", path));
    if (bytes.size() < 4) return invalid_argument(fmt::format("'{}' is too short to hold a row", path));
    std::int32_t dim = 0;
    std::memcpy(&dim, bytes.data(), 4);
    if (dim <= 0 || dim > (1 << 20)) {
        return invalid_argument(fmt::format(
            "'{}': first row declares dimension {}; not a valid {} file", path, dim,
            sizeof(Elem) == 1 ? "bvecs" : (std::is_same_v<Elem, float> ? "fvecs" : "ivecs")));
    }
    const std::size_t row_bytes = 4 + static_cast<std::size_t>(dim) * sizeof(Elem);
    if (bytes.size() % row_bytes != 0) {
        return invalid_argument(fmt::format(
            "'{}': size {} is not a multiple of the row size {} (dimension {}); truncated or wrong format",
            path, bytes.size(), row_bytes, dim));
    }
    std::size_t rows = bytes.size() / row_bytes;
    if (max_rows > 0 && rows > max_rows) rows = max_rows;
    Matrix<Out> m(rows, static_cast<std::size_t>(dim));
    for (std::size_t r = 0; r < rows; ++r) {
        const std::byte* p = bytes.data() + r * row_bytes;
        std::int32_t d = 0;
        std::memcpy(&d, p, 4);
        if (d != dim) {
            return invalid_argument(
                fmt::format("'{}': row {} has dimension {}, expected {}", path, r, d, dim));
        }
        const std::byte* e = p + 4;
        Out* out = m.row_ptr(r);
        for (std::size_t j = 0; j < static_cast<std::size_t>(dim); ++j) {
            Elem v;
            std::memcpy(&v, e + j * sizeof(Elem), sizeof(Elem));
            out[j] = convert(v);
        }
    }
    return m;
}

Result<Matrix<float>> read_npy(const std::string& path, std::size_t max_rows) {
    QUIVER_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
    const auto bytes = file.bytes();
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    if (bytes.size() < 10 || std::memcmp(b, "\x93NUMPY", 6) != 0) {
        return invalid_argument(fmt::format("'{}' is not a .npy file (bad magic)", path));
    }
    const unsigned major = b[6];
    std::size_t header_len = 0, header_start = 0;
    if (major == 1) {
        header_len = static_cast<std::size_t>(b[8]) | (static_cast<std::size_t>(b[9]) << 8);
        header_start = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) return invalid_argument(fmt::format("'{}': truncated .npy header", path));
        std::uint32_t hl;
        std::memcpy(&hl, b + 8, 4);
        header_len = hl;
        header_start = 12;
    } else {
        return invalid_argument(fmt::format("'{}': unsupported .npy version {}", path, major));
    }
    if (header_start + header_len > bytes.size()) {
        return invalid_argument(fmt::format("'{}': truncated .npy header", path));
    }
    const std::string header(reinterpret_cast<const char*>(b + header_start), header_len);
    auto field = [&](std::string_view key) -> std::string {
        const auto k = header.find(key);
        if (k == std::string::npos) return {};
        auto v = header.find(':', k);
        if (v == std::string::npos) return {};
        ++v;
        while (v < header.size() && header[v] == ' ') ++v;
        std::size_t end = v;
        if (header[v] == '(') end = header.find(')', v) + 1;
        else if (header[v] == '\'') end = header.find('\'', v + 1) + 1;
        else end = header.find_first_of(",}", v);
        return header.substr(v, end - v);
    };
    const std::string descr = field("'descr'");
    const std::string order = field("'fortran_order'");
    const std::string shape = field("'shape'");
    std::size_t elem = 0;
    if (descr == "'<f4'" || descr == "'=f4'") elem = 4;
    else if (descr == "'<f8'" || descr == "'=f8'") elem = 8;
    else {
        return invalid_argument(fmt::format("'{}': .npy dtype {} is not supported (float32 or float64)", path,
                                            descr.empty() ? "?" : descr));
    }
    if (order != "False") {
        return invalid_argument(fmt::format("'{}': Fortran-order .npy arrays are not supported", path));
    }
    std::vector<std::size_t> dims;
    for (std::size_t i = 0; i < shape.size();) {
        if (shape[i] >= '0' && shape[i] <= '9') {
            std::size_t v = 0;
            while (i < shape.size() && shape[i] >= '0' && shape[i] <= '9') v = v * 10 + (shape[i++] - '0');
            dims.push_back(v);
        } else {
            ++i;
        }
    }
    if (dims.size() != 2) {
        return invalid_argument(
            fmt::format("'{}': expected a 2-d array (rows, dim), shape is {}", path, shape));
    }
    std::size_t rows = dims[0];
    const std::size_t dim = dims[1];
    if (rows == 0 || dim == 0) return invalid_argument(fmt::format("'{}': the array is empty", path));
    const std::size_t data_start = header_start + header_len;
    if ((bytes.size() - data_start) / elem / dim < rows) {
        return invalid_argument(fmt::format("'{}': truncated: shape {} needs {} bytes of data, file has {}",
                                            path, shape, rows * dim * elem, bytes.size() - data_start));
    }
    if (max_rows > 0 && rows > max_rows) rows = max_rows;
    Matrix<float> m(rows, dim);
    const unsigned char* data = b + data_start;
    if (elem == 4) {
        std::memcpy(m.values.data(), data, rows * dim * 4);
    } else {
        for (std::size_t i = 0; i < rows * dim; ++i) {
            double d;
            std::memcpy(&d, data + i * 8, 8);
            m.values[i] = static_cast<float>(d);
        }
    }
    return m;
}

Result<VectorSet> read_jsonl(const std::string& path, std::size_t max_rows) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, read_file(path));
    VectorSet out;
    std::size_t line_no = 0, pos = 0, dim = 0, rows = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + pos, end - pos);
        pos = end + 1;
        ++line_no;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (line.empty()) continue;
        auto parsed = json::parse(line);
        if (!parsed) return parsed.error().with_context(fmt::format("'{}' line {}", path, line_no));
        const json::Value& obj = *parsed;
        if (!obj.is_object()) {
            return invalid_argument(fmt::format("'{}' line {}: expected a JSON object", path, line_no));
        }
        const json::Value* vec = obj.find("vector");
        if (vec == nullptr) vec = obj.find("embedding");
        if (vec == nullptr || !vec->is_array()) {
            return invalid_argument(
                fmt::format("'{}' line {}: missing \"vector\" array", path, line_no));
        }
        const auto& arr = vec->as_array();
        if (arr.empty()) return invalid_argument(fmt::format("'{}' line {}: empty vector", path, line_no));
        if (dim == 0) dim = arr.size();
        if (arr.size() != dim) {
            return invalid_argument(fmt::format("'{}' line {}: vector has dimension {}, expected {}", path,
                                                line_no, arr.size(), dim));
        }
        for (std::size_t j = 0; j < dim; ++j) {
            if (!arr[j].is_number()) {
                return invalid_argument(fmt::format("'{}' line {}: vector[{}] is a {}, expected a number",
                                                    path, line_no, j, arr[j].type_name()));
            }
            out.vectors.values.push_back(static_cast<float>(arr[j].as_number()));
        }
        const json::Value* id = obj.find("id");
        if (id == nullptr) id = obj.find("_id");
        if (id == nullptr) {
            out.ids.push_back(std::to_string(rows));
        } else if (id->is_string()) {
            out.ids.push_back(id->as_string());
        } else if (id->is_integer()) {
            out.ids.push_back(std::to_string(id->as_int()));
        } else {
            return invalid_argument(
                fmt::format("'{}' line {}: \"id\" must be a string or an integer", path, line_no));
        }
        ++rows;
        if (max_rows > 0 && rows == max_rows) break;
    }
    if (rows == 0) return invalid_argument(fmt::format("'{}' holds no vectors", path));
    out.vectors.rows = rows;
    out.vectors.dim = dim;
    return out;
}

struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

Result<FilePtr> open_for_write(const std::string& path) {
    FilePtr f(std::fopen(path.c_str(), "wb"));
    if (!f) return errno_error("creating", path);
    return f;
}

// Flushes and closes, checking both (a full disk may surface only here) and any earlier fwrite error.
Status close_checked(FilePtr f, const std::string& path) {
    const bool flushed = std::fflush(f.get()) == 0 && std::ferror(f.get()) == 0;
    const int saved = errno;
    const bool closed = std::fclose(f.release()) == 0;
    if (!flushed) {
        errno = saved;
        return file_error("writing", path);
    }
    if (!closed) return file_error("closing", path);
    return {};
}

template <class T>
Status write_texmex(const std::string& path, MatrixView<T> m) {
    QUIVER_ASSIGN_OR_RETURN(FilePtr f, open_for_write(path));
    const auto dim = static_cast<std::int32_t>(m.dim);
    for (std::size_t r = 0; r < m.rows; ++r) {
        std::fwrite(&dim, 4, 1, f.get());
        std::fwrite(m.row_ptr(r), sizeof(T), m.dim, f.get());
    }
    return close_checked(std::move(f), path);
}

}  // namespace

Result<VectorFormat> format_from_path(const std::string& path) {
    if (ends_with(path, ".fvecs")) return VectorFormat::kFvecs;
    if (ends_with(path, ".ivecs")) return VectorFormat::kIvecs;
    if (ends_with(path, ".bvecs")) return VectorFormat::kBvecs;
    if (ends_with(path, ".npy")) return VectorFormat::kNpy;
    if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json")) {
        return VectorFormat::kJsonl;
    }
    return invalid_argument(fmt::format(
        "cannot tell the vector format of '{}' (expected .fvecs, .ivecs, .bvecs, .npy or .jsonl)", path));
}

Status check_finite(MatrixView<float> m, const std::string& what) {
    for (std::size_t r = 0; r < m.rows; ++r) {
        const float* row = m.row_ptr(r);
        for (std::size_t j = 0; j < m.dim; ++j) {
            if (!std::isfinite(row[j])) {
                return invalid_argument(
                    fmt::format("{}: row {} column {} is {} (vectors must be finite)", what, r, j,
                                std::isnan(row[j]) ? "NaN" : "infinite"));
            }
        }
    }
    return {};
}

Result<VectorSet> read_vectors(const std::string& path, const ReadOptions& options) {
    QUIVER_ASSIGN_OR_RETURN(VectorFormat format, format_from_path(path));
    VectorSet out;
    switch (format) {
        case VectorFormat::kFvecs: {
            auto m = read_texmex<float, float>(path, options.max_rows, [](float v) { return v; });
            if (!m) return std::move(m).error();
            out.vectors = std::move(*m);
            break;
        }
        case VectorFormat::kIvecs: {
            auto m = read_texmex<std::int32_t, float>(path, options.max_rows,
                                                      [](std::int32_t v) { return static_cast<float>(v); });
            if (!m) return std::move(m).error();
            out.vectors = std::move(*m);
            break;
        }
        case VectorFormat::kBvecs: {
            auto m = read_texmex<std::uint8_t, float>(path, options.max_rows,
                                                      [](std::uint8_t v) { return static_cast<float>(v); });
            if (!m) return std::move(m).error();
            out.vectors = std::move(*m);
            break;
        }
        case VectorFormat::kNpy: {
            QUIVER_ASSIGN_OR_RETURN(out.vectors, read_npy(path, options.max_rows));
            break;
        }
        case VectorFormat::kJsonl: {
            QUIVER_ASSIGN_OR_RETURN(out, read_jsonl(path, options.max_rows));
            break;
        }
    }
    if (!options.allow_non_finite) QUIVER_TRY(check_finite(out.vectors, "'" + path + "'"));
    return out;
}

Result<Matrix<std::int32_t>> read_ivecs(const std::string& path, std::size_t max_rows) {
    return read_texmex<std::int32_t, std::int32_t>(path, max_rows, [](std::int32_t v) { return v; });
}

Status write_fvecs(const std::string& path, MatrixView<float> m) { return write_texmex(path, m); }
Status write_ivecs(const std::string& path, MatrixView<std::int32_t> m) { return write_texmex(path, m); }

Status write_npy(const std::string& path, MatrixView<float> m) {
    QUIVER_ASSIGN_OR_RETURN(FilePtr f, open_for_write(path));
    std::string header =
        fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", m.rows, m.dim);
    // Pad so that magic(6) + version(2) + len(2) + header + '\n' is a multiple of 64.
    const std::size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    const auto len = static_cast<std::uint16_t>(header.size());
    std::fwrite("\x93NUMPY\x01\x00", 1, 8, f.get());
    std::fwrite(&len, 2, 1, f.get());
    std::fwrite(header.data(), 1, header.size(), f.get());
    std::fwrite(m.data, sizeof(float), m.rows * m.dim, f.get());
    return close_checked(std::move(f), path);
}

Status write_jsonl(const std::string& path, MatrixView<float> m, const std::vector<std::string>& ids) {
    QUIVER_ASSIGN_OR_RETURN(FilePtr f, open_for_write(path));
    std::string line;
    for (std::size_t r = 0; r < m.rows; ++r) {
        line = "{\"id\":";
        if (r < ids.size()) json::append_quoted(line, ids[r]);
        else line += std::to_string(r);
        line += ",\"vector\":[";
        for (std::size_t j = 0; j < m.dim; ++j) {
            if (j) line += ',';
            char buf[32];
            auto res = std::to_chars(buf, buf + sizeof(buf), m.row_ptr(r)[j]);
            line.append(buf, res.ptr);
        }
        line += "]}\n";
        std::fwrite(line.data(), 1, line.size(), f.get());
    }
    return close_checked(std::move(f), path);
}

}  // namespace quiver::storage
