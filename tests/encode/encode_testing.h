// Private to tests/encode: fixture paths and JSON helpers.
#pragma once

#include <string>
#include <vector>

#include "quiver/core/json.h"

namespace quiver::testing {

/// tests/data/encode/<name>
std::string encode_fixture(const std::string& name);
/// Parses a JSON file (fails the test on error).
json::Value load_json(const std::string& path);
std::vector<float> to_floats(const json::Value& array);
std::vector<std::string> to_strings(const json::Value& array);
/// Copies a fixture folder (recursively) into `dest`.
void copy_folder(const std::string& from, const std::string& dest);

}  // namespace quiver::testing
