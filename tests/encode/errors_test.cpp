// Bad input gives a clear error (naming the file or tensor), never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "encode/encode_testing.h"
#include "quiver/encode/encoder.h"
#include "quiver/encode/safetensors.h"
#include "testing/testing.h"

namespace quiver::encode {
namespace {

using quiver::testing::copy_folder;
using quiver::testing::encode_fixture;
using quiver::testing::TempDir;

std::string error_of(const std::string& dir) {
    auto r = load_encoder(dir);
    EXPECT_FALSE(r.ok()) << dir;
    return r ? std::string() : r.error().message();
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

std::string safetensors_bytes(const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    const std::uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    return out + header + data;
}

std::string model_copy(const TempDir& tmp, const std::string& name = "bert-mean") {
    const std::string dir = tmp.file("m");
    copy_folder(encode_fixture(name), dir);
    return dir;
}

TEST(EncodeErrors, MissingFolderAndFiles) {
    TempDir tmp;
    EXPECT_NE(error_of(tmp.file("nope")).find("does not exist"), std::string::npos);
    EXPECT_NE(error_of(tmp.path()).find("not a model folder"), std::string::npos);
    const std::string dir = model_copy(tmp);
    std::filesystem::remove(dir + "/model.safetensors");
    EXPECT_NE(error_of(dir).find("model.safetensors"), std::string::npos);
}

TEST(EncodeErrors, MissingTokenizer) {
    TempDir tmp;
    const std::string dir = model_copy(tmp);
    std::filesystem::remove(dir + "/tokenizer.json");
    EXPECT_NE(error_of(dir).find("tokenizer.json"), std::string::npos);
}

TEST(EncodeErrors, MissingPoolingConfig) {
    TempDir tmp;
    const std::string dir = model_copy(tmp);
    std::filesystem::remove_all(dir + "/1_Pooling");
    EXPECT_NE(error_of(dir).find("1_Pooling"), std::string::npos);
}

TEST(EncodeErrors, ShapeMismatchBetweenConfigAndWeights) {
    TempDir tmp;
    const std::string dir = model_copy(tmp);
    auto text = storage::read_file(dir + "/config.json");
    ASSERT_TRUE(text.ok());
    std::string cfg = *text;
    const auto pos = cfg.find("\"intermediate_size\": 64");
    ASSERT_NE(pos, std::string::npos);
    cfg.replace(pos, std::strlen("\"intermediate_size\": 64"), "\"intermediate_size\": 96");
    write_file(dir + "/config.json", cfg);
    const std::string msg = error_of(dir);
    EXPECT_NE(msg.find("intermediate.dense.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[64, 32]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[96, 32]"), std::string::npos) << msg;
}

TEST(EncodeErrors, TooFewLayersInFile) {
    TempDir tmp;
    const std::string dir = model_copy(tmp);
    std::string cfg = *storage::read_file(dir + "/config.json");
    const auto pos = cfg.find("\"num_hidden_layers\": 2");
    ASSERT_NE(pos, std::string::npos);
    cfg.replace(pos, std::strlen("\"num_hidden_layers\": 2"), "\"num_hidden_layers\": 3");
    write_file(dir + "/config.json", cfg);
    EXPECT_NE(error_of(dir).find("encoder.layer.2"), std::string::npos);
}

TEST(EncodeErrors, UnsupportedArchitectureIsNamed) {
    TempDir tmp;
    const std::string dir = model_copy(tmp);
    std::string cfg = *storage::read_file(dir + "/config.json");
    cfg.replace(cfg.find("\"model_type\": \"bert\""), std::strlen("\"model_type\": \"bert\""), "\"model_type\": \"t5\"");
    write_file(dir + "/config.json", cfg);
    EXPECT_NE(error_of(dir).find("t5"), std::string::npos);
}

TEST(EncodeErrors, WrongDtypeTruncationAndGarbage) {
    TempDir tmp;
    auto open_err = [&](const std::string& bytes) {
        write_file(tmp.file("x.safetensors"), bytes);
        auto r = SafeTensors::open(tmp.file("x.safetensors"));
        EXPECT_FALSE(r.ok());
        return r ? std::string() : r.error().message();
    };
    EXPECT_NE(open_err(safetensors_bytes(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "ab"))
                  .find("F8_E4M3"), std::string::npos);
    EXPECT_NE(open_err(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "abcd"))
                  .find("data_offsets"), std::string::npos);
    EXPECT_NE(open_err(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"))
                  .find("needs 8 bytes"), std::string::npos);
    EXPECT_FALSE(open_err("abc").empty());
    EXPECT_FALSE(open_err(std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}").empty());
    EXPECT_FALSE(open_err(safetensors_bytes("not json", "")).empty());
    // A model whose weights are integers is rejected naming the tensor.
    const std::string dir = model_copy(tmp);
    write_file(dir + "/model.safetensors",
               safetensors_bytes(R"({"embeddings.word_embeddings.weight":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})",
                                 std::string(8, '\0')));
    EXPECT_NE(error_of(dir).find("embeddings.word_embeddings.weight"), std::string::npos);
}

TEST(EncodeErrors, NonUtf8TextIsAnErrorNamingTheText) {
    auto enc = load_encoder(encode_fixture("bert-mean"));
    ASSERT_TRUE(enc.ok());
    std::vector<std::string_view> texts{"fine", "bad \xc3\x28 bytes"};
    auto r = (*enc)->encode(texts, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("text 1"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace quiver::encode
