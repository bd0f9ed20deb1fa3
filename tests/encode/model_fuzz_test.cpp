// Malformed and truncated model files (model.safetensors, config.json, tokenizer.json, vocab.txt,
// pooling config) are errors, never crashes: random byte flips, truncations, cut-outs, duplications
// and digit changes of every fixture model's files, each loaded and (when it loads) run. Plus
// safetensors headers crafted to overflow the shape and offset arithmetic.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "encode/encode_testing.h"
#include "quiver/encode/encoder.h"
#include "quiver/encode/safetensors.h"
#include "testing/testing.h"

namespace quiver::encode {
namespace {

namespace fs = std::filesystem;
using quiver::testing::copy_folder;
using quiver::testing::encode_fixture;
using quiver::testing::read_bytes;
using quiver::testing::TempDir;
using quiver::testing::write_bytes;

std::string safetensors_bytes(const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
    return out + header + data;
}

std::string mutate(std::string s, std::mt19937_64& rng) {
    if (s.empty()) return s;
    const std::size_t at = rng() % s.size();
    switch (rng() % 5) {
        case 0:
            for (int i = 0; i < 1 + static_cast<int>(rng() % 8); ++i) s[rng() % s.size()] = static_cast<char>(rng());
            break;
        case 1: s.resize(at); break;
        case 2: s.erase(at, 1 + rng() % 256); break;
        case 3: s.insert(at, s.substr(rng() % s.size(), 1 + rng() % 256)); break;
        default:
            // A digit changed or a number grown: the JSON stays valid, its shapes and ids do not.
            for (std::size_t i = at; i < s.size(); ++i) {
                if (s[i] >= '0' && s[i] <= '9') {
                    s[i] = static_cast<char>('0' + rng() % 10);
                    if (rng() % 2 == 0) s.insert(i, std::to_string(rng() % 1000000));
                    break;
                }
            }
    }
    return s;
}

TEST(ModelFuzz, MutatedModelFilesAreErrorsNotCrashes) {
    std::mt19937_64 rng(16016);
    const std::vector<std::string> texts{"hello world", "", "naïve café [MASK] 中文 😀", std::string(2000, 'x')};
    std::size_t loaded = 0;
    std::size_t rejected = 0;
    for (const char* model : {"bert-mean", "bert-cls", "bert-mean-f16", "splade", "colbert"}) {
        TempDir tmp;
        const std::string dir = tmp.file("m");
        copy_folder(encode_fixture(model), dir);
        std::vector<std::string> files;
        for (const auto& e : fs::recursive_directory_iterator(dir)) {
            if (e.is_regular_file()) files.push_back(e.path().string());
        }
        std::sort(files.begin(), files.end());
        for (const std::string& file : files) {
            const std::string original = read_bytes(file);
            for (int i = 0; i < 25; ++i) {
                write_bytes(file, mutate(original, rng));
                LoadOptions lo;
                lo.threads = 1;
                lo.max_length = 64;
                auto enc = load_encoder(dir, lo);
                if (!enc.ok()) {
                    ++rejected;
                    EXPECT_FALSE(enc.error().message().empty());
                    continue;
                }
                ++loaded;
                std::vector<std::string_view> views(texts.begin(), texts.end());
                EncodeOptions eo;
                if (!(*enc)->info().outputs.empty()) eo.kind = (*enc)->info().outputs.front();
                (void)(*enc)->encode(views, eo);  // an error or a result; never a crash
            }
            write_bytes(file, original);
        }
    }
    EXPECT_GT(rejected, 100u);
    EXPECT_GT(loaded, 0u);
}

TEST(ModelFuzz, SafetensorsShapeAndOffsetArithmeticIsChecked) {
    TempDir tmp;
    const std::string path = tmp.file("w.safetensors");
    struct Case {
        std::string header;
        std::string data;
        const char* needle;
    };
    const Case cases[] = {
        // 2^32 * 2^32 * 16 wraps to 0 in 64 bits; the byte count 0 matches empty offsets.
        {R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 0]}})", "", "overflows"},
        {R"({"t": {"dtype": "BF16", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 0]}})", "", "overflows"},
        {R"({"t": {"dtype": "F64", "shape": [1152921504606846, 2048], "data_offsets": [0, 0]}})", "", "more bytes"},
        {R"({"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 18446744073709551615]}})", std::string(16, '\0'), "data_offsets"},
        {R"({"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 4]}})", std::string(16, '\0'), "data_offsets"},
        {R"({"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", std::string(16, '\0'), "needs 16 bytes"},
        {R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}})", "", "invalid shape"},
        {R"({"t": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 0]}})", "", "invalid shape"},
        {R"({"t": 7})", "", "not a JSON object"},
        {R"({"t": {"dtype": "F32", "shape": [1]}})", "", "lacks"},
        {std::string(64, '[') + std::string(64, ']'), "", "not a JSON object"},
    };
    for (const Case& c : cases) {
        write_bytes(path, safetensors_bytes(c.header, c.data));
        auto st = SafeTensors::open(path);
        ASSERT_FALSE(st.ok()) << c.header;
        EXPECT_EQ(st.error().code(), ErrorCode::kDataLoss) << st.error().message();
        EXPECT_NE(st.error().message().find(c.needle), std::string::npos) << st.error().message();
    }
    // A header length beyond the file, and one at 2^64 - 1.
    std::string huge(8, '\xff');
    write_bytes(path, huge + "{}");
    auto st = SafeTensors::open(path);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message().find("exceeds the file size"), std::string::npos);
    // Zero-size tensors are fine, whatever their other dimensions.
    write_bytes(path, safetensors_bytes(R"({"t": {"dtype": "F32", "shape": [0, 4294967296], "data_offsets": [0, 0]}})", ""));
    auto empty = SafeTensors::open(path);
    ASSERT_TRUE(empty.ok()) << empty.error().message();
    EXPECT_EQ((*empty->find("t"))->numel(), 0u);
}

}  // namespace
}  // namespace quiver::encode
