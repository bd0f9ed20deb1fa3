#include "encode/encode_testing.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "quiver/storage/file_format.h"

namespace quiver::testing {

std::string encode_fixture(const std::string& name) {
    return std::string(QUIVER_SOURCE_DIR) + "/tests/data/encode/" + name;
}

json::Value load_json(const std::string& path) {
    auto text = storage::read_file(path);
    EXPECT_TRUE(text.ok()) << path;
    if (!text) return {};
    auto v = json::parse(*text);
    EXPECT_TRUE(v.ok()) << path << ": " << v.error().message();
    return v ? std::move(*v) : json::Value();
}

std::vector<float> to_floats(const json::Value& array) {
    std::vector<float> out;
    for (const auto& v : array.as_array()) out.push_back(static_cast<float>(v.as_number()));
    return out;
}

std::vector<std::string> to_strings(const json::Value& array) {
    std::vector<std::string> out;
    for (const auto& v : array.as_array()) out.push_back(v.as_string());
    return out;
}

void copy_folder(const std::string& from, const std::string& dest) {
    std::filesystem::copy(from, dest, std::filesystem::copy_options::recursive |
                                          std::filesystem::copy_options::overwrite_existing);
}

}  // namespace quiver::testing
