// Runs docs/api.md as written: every ```sh block is run by bash against a fresh `quiver serve` on a
// random loopback port ($Q is its base URL), in order. A ```json block right after a ```sh block is
// the expected output: the actual output must parse as JSON and contain it (objects: every expected
// member, recursively; arrays: same length, element-wise; numbers within 1e-6 relative). Without one,
// the output must still be JSON and not an error, unless the block is marked ```sh {error}.
// Usage: node docs_test.js QUIVER_BINARY API_MD NODE_MODULES_DIR [--print]
"use strict";
const fs = require("node:fs");
const { execFileSync } = require("node:child_process");
const { startServer } = require("./api_harness.js");

const [quiver, mdFile, , flag] = process.argv.slice(2);
const print = flag === "--print";

function blocks(md) {
  const out = [];
  const re = /^```([^\n]*)\n([\s\S]*?)^```\s*$/gm;
  let m;
  while ((m = re.exec(md)) !== null) {
    const line = md.slice(0, m.index).split("\n").length;
    out.push({ lang: m[1].trim(), code: m[2], line });
  }
  return out;
}

function contains(actual, expected, where) {
  if (typeof expected === "number") {
    if (typeof actual !== "number") return `${where}: expected a number, got ${JSON.stringify(actual)}`;
    const tol = 1e-6 * Math.max(1, Math.abs(expected));
    return Math.abs(actual - expected) <= tol ? null : `${where}: expected ${expected}, got ${actual}`;
  }
  if (expected === null || typeof expected !== "object") {
    return actual === expected ? null : `${where}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return `${where}: expected an array of ${expected.length}, got ${JSON.stringify(actual)}`;
    }
    for (let i = 0; i < expected.length; ++i) {
      const e = contains(actual[i], expected[i], `${where}[${i}]`);
      if (e) return e;
    }
    return null;
  }
  if (actual === null || typeof actual !== "object" || Array.isArray(actual)) {
    return `${where}: expected an object, got ${JSON.stringify(actual)}`;
  }
  for (const k of Object.keys(expected)) {
    if (!(k in actual)) return `${where}.${k}: missing`;
    const e = contains(actual[k], expected[k], `${where}.${k}`);
    if (e) return e;
  }
  return null;
}

// Every (method, path) of docs/openapi.yaml (beside api.md) has a curl example in a ```sh block.
function uncoveredRoutes(all) {
  const spec = fs.readFileSync(require("node:path").join(require("node:path").dirname(mdFile), "openapi.yaml"), "utf8");
  const routes = [];
  let current = null;
  for (const line of spec.split("\n")) {
    let m = /^  (\/v1\/[^:]*):\s*$/.exec(line);
    if (m) { current = m[1]; continue; }
    if (/^\S/.test(line)) current = null;
    m = /^    (get|put|post|patch|delete):\s*$/.exec(line);
    if (m && current) routes.push([m[1].toUpperCase(), current]);
  }
  const calls = [];
  for (const b of all) {
    if (!b.lang.startsWith("sh")) continue;
    for (const line of b.code.split("\n")) {
      if (!line.includes("curl")) continue;
      const p = /\$Q(\/[^\s"'?]*)/.exec(line);
      if (!p) continue;
      const x = /-X (\w+)/.exec(line);
      calls.push([x ? x[1] : "GET", p[1]]);
    }
  }
  const missing = [];
  for (const [method, template] of routes) {
    const re = new RegExp("^" + template.replace(/\{[^}]+\}/g, "[^/]+") + "$");
    if (!calls.some(([m, p]) => m === method && re.test(p))) missing.push(`${method} ${template}`);
  }
  return { routes: routes.length, missing };
}

async function main() {
  const md = fs.readFileSync(mdFile, "utf8");
  const all = blocks(md);
  const coverage = uncoveredRoutes(all);
  for (const r of coverage.missing) console.log(`FAIL docs/api.md has no curl example of ${r}`);
  if (coverage.routes < 15) {
    console.log(`FAIL: only ${coverage.routes} routes found in openapi.yaml`);
    process.exit(1);
  }
  const srv = await startServer(quiver);
  let failures = 0, ran = 0;
  try {
    for (let i = 0; i < all.length; ++i) {
      const b = all[i];
      if (!b.lang.startsWith("sh")) continue;
      const allowError = b.lang.includes("{error}");
      const next = all[i + 1];
      const expected = next && next.lang === "json" ? next.code : null;
      let out = "";
      ++ran;
      try {
        out = execFileSync("bash", ["-euo", "pipefail", "-c", b.code], { env: { ...process.env, Q: srv.base }, encoding: "utf8" });
      } catch (e) {
        console.log(`FAIL docs/api.md:${b.line}: the block exited ${e.status}: ${e.stderr || ""}${e.stdout || ""}`);
        ++failures;
        continue;
      }
      if (print) console.log(`--- docs/api.md:${b.line}\n${out}`);
      let actual;
      try {
        actual = JSON.parse(out);
      } catch (e) {
        if (expected !== null || out.trim() !== "") {
          // Several JSON documents (one per line) are compared as an array.
          try { actual = out.trim().split("\n").map((l) => JSON.parse(l)); } catch (e2) {
            console.log(`FAIL docs/api.md:${b.line}: output is not JSON: ${out.slice(0, 300)}`);
            ++failures;
            continue;
          }
        }
      }
      if (!allowError && actual && typeof actual === "object" && !Array.isArray(actual) && "error" in actual) {
        console.log(`FAIL docs/api.md:${b.line}: unexpected error: ${out.slice(0, 300)}`);
        ++failures;
        continue;
      }
      if (expected !== null) {
        const e = contains(actual, JSON.parse(expected), "$");
        if (e) {
          console.log(`FAIL docs/api.md:${b.line}: ${e}\n  output: ${out.slice(0, 500)}`);
          ++failures;
        }
      }
    }
  } finally {
    await srv.stop();
  }
  failures += coverage.missing.length;
  console.log(`docs/api.md: ${ran} examples run, ${coverage.routes} routes of openapi.yaml covered but ${coverage.missing.length}, ${failures} failed`);
  if (ran < 20) {
    console.log("FAIL: fewer than 20 examples found");
    process.exit(1);
  }
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
