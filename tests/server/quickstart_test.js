// Runs the README's "five-minute quickstart" as written (on a random port and a temporary data
// directory), with the SciFact corpus; skipped (exit 77) when the data set is absent. Checks that it
// ingests all 5,183 abstracts and that the text and vector searches find the expected document.
// Usage: node quickstart_test.js QUIVER_BINARY README.md DATA_DIR ($QUIVER_DATA_DIR wins)
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const net = require("node:net");
const { execFileSync } = require("node:child_process");

const [quiver, readme, defaultDataDir] = process.argv.slice(2);
const dataDir = process.env.QUIVER_DATA_DIR || defaultDataDir;
const corpus = path.join(dataDir, "scifact", "corpus.jsonl");
if (!fs.existsSync(corpus)) {
  console.log(`SKIP: ${corpus} is absent (set QUIVER_DATA_DIR)`);
  process.exit(77);
}

function fail(msg) {
  console.log("FAIL " + msg);
  process.exit(1);
}

async function main() {
  const md = fs.readFileSync(readme, "utf8");
  const m = /## Five-minute quickstart[^\n]*\n[\s\S]*?```sh\n([\s\S]*?)^```/m.exec(md);
  if (!m) fail("no quickstart block in the README");
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "quiver-quickstart-"));
  const script = m[1]
    .replaceAll("$PWD/build/release/bin", path.dirname(path.resolve(quiver)))
    .replaceAll("6333", String(port))
    .replaceAll("/tmp/quiver-quickstart", path.join(tmp, "data"))
    .replaceAll("../shared/data", dataDir);
  let out;
  try {
    out = execFileSync("bash", ["-eo", "pipefail", "-c", script], { encoding: "utf8", timeout: 600000 });
  } catch (e) {
    fail(`the quickstart exited ${e.status}: ${e.stderr || ""}${(e.stdout || "").slice(0, 2000)}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const lines = out.trim().split("\n").map((l) => JSON.parse(l));
  if (lines.length !== 7) fail(`expected 7 JSON replies, got ${lines.length}: ${out.slice(0, 500)}`);
  const [created, ingested, text, vector, hybrid, filtered, count] = lines;
  if (created.name !== "scifact") fail("create: " + JSON.stringify(created));
  if (ingested.upserted !== 5183) fail("ingest: " + JSON.stringify(ingested));
  if (text.hits[0].id !== "4983") fail("text search: " + JSON.stringify(text.hits[0]));
  if (vector.hits[0].id !== "4983" || Math.abs(vector.hits[0].score) > 1e-6) fail("vector search: " + JSON.stringify(vector.hits[0]));
  if (hybrid.hits.length !== 3) fail("hybrid search: " + JSON.stringify(hybrid));
  if (filtered.hits.some((h) => h.fields.words >= 150)) fail("filtered search: " + JSON.stringify(filtered));
  if (!(count.count > 0 && count.count < 5183)) fail("count: " + JSON.stringify(count));
  console.log(`README quickstart: ${lines.length} replies checked, ${count.count} abstracts under 150 words`);
}

main().catch((e) => fail(e.stack || String(e)));
