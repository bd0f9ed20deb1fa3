// quiver ingest --schema with SPLADE sparse and ColBERT multi-vector fields (the committed fixture
// models), then quiver query on each field: as a user runs them (issue 15).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <tuple>

#include "testing/testing.h"

namespace quiver {
namespace {

testing::CommandResult run(const std::string& args) {
    return testing::run_command(std::string(QUIVER_CLI_PATH) + " " + args + " 2>&1");
}

std::string model(const std::string& name) { return std::string(QUIVER_SOURCE_DIR) + "/tests/data/encode/" + name; }

TEST(MultiVectorFieldsCli, IngestWithEncodersThenQueryEachField) {
    testing::TempDir dir;
    std::filesystem::create_directories(dir.file("beir"));
    testing::write_bytes(dir.file("beir/corpus.jsonl"),
                         "{\"_id\": \"p1\", \"title\": \"protein\", \"text\": \"protein cell gene study\"}\n"
                         "{\"_id\": \"f1\", \"title\": \"fox\", \"text\": \"the quick brown fox and the lazy dog\"}\n"
                         "{\"_id\": \"r1\", \"title\": \"retrieval\", \"text\": \"dense sparse retrieval with late interaction\"}\n");
    testing::write_bytes(dir.file("schema.json"),
                         "{\"fields\": [{\"name\": \"title\", \"type\": \"text\"}, {\"name\": \"text\", \"type\": \"text\"},"
                         " {\"name\": \"splade\", \"type\": \"sparse_vector\", \"encoder\": \"" + model("splade") +
                             "\", \"sources\": [\"title\", \"text\"]},"
                         " {\"name\": \"colbert\", \"type\": \"multi_vector\", \"dim\": 16, \"index\": \"muvera\", \"encoder\": \"" +
                             model("colbert") + "\", \"sources\": [\"title\", \"text\"]}]}");
    auto r = run("ingest --data " + dir.file("store") + " --collection c --schema " + dir.file("schema.json") +
                 " --input " + dir.file("beir"));
    ASSERT_EQ(r.code, 0) << r.out;
    for (const auto& [field, text, want] : {std::tuple{"colbert", "brown fox", "f1"}, std::tuple{"splade", "protein gene", "p1"},
                                            std::tuple{"splade", "dense sparse retrieval", "r1"},
                                            std::tuple{"colbert", "dense sparse retrieval with late interaction", "r1"}}) {
        auto q = run("query --data " + dir.file("store") + " --collection c --field " + field + " --text '" + text +
                     "' -k 1 --json");
        ASSERT_EQ(q.code, 0) << q.out;
        EXPECT_NE(q.out.find(std::string("\"") + want + "\""), std::string::npos) << field << ": " << q.out;
    }
    // A schema naming a multi_vector field without a dimension is refused before anything is created.
    testing::write_bytes(dir.file("bad.json"), R"({"fields": [{"name": "t", "type": "multi_vector"}]})");
    r = run("ingest --data " + dir.file("store") + " --collection bad --schema " + dir.file("bad.json") + " --input " +
            dir.file("beir"));
    EXPECT_NE(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("dim"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace quiver
