// Contract test: docs/openapi.yaml is valid OpenAPI 3.1 (swagger-parser), and a running `quiver serve`
// answers every documented route with every documented status, each body matching its schema (ajv,
// JSON Schema 2020-12). Any undocumented status fails. Usage:
//   node contract_test.js QUIVER_BINARY SPEC_FILE NODE_MODULES_DIR
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { SKIP, requireTool, startServer } = require("./api_harness.js");

const [quiver, specFile, modules] = process.argv.slice(2);
const SwaggerParser = requireTool(modules, "@apidevtools/swagger-parser");
const Ajv2020 = requireTool(modules, "ajv/dist/2020").default;
const YAML = requireTool(modules, "yaml");

const failures = [];
function fail(msg) { failures.push(msg); console.log("FAIL " + msg); }

const spec = YAML.parse(fs.readFileSync(specFile, "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(spec, "openapi");
const validators = new Map();

function pointer(...parts) {
  return "#/" + parts.map((p) => String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
}

// The response object of (template, method, status), following a components/responses $ref.
function responseOf(template, method, status) {
  const op = spec.paths[template] && spec.paths[template][method.toLowerCase()];
  if (!op) return null;
  let r = op.responses[String(status)];
  if (!r) return null;
  let where = pointer("paths", template, method.toLowerCase(), "responses", String(status));
  if (r.$ref) {
    where = r.$ref;
    const name = r.$ref.split("/").pop();
    r = spec.components.responses[name];
  }
  return { r, where };
}

function validatorFor(template, method, status, mediaType) {
  const key = `${method} ${template} ${status} ${mediaType}`;
  if (!validators.has(key)) {
    const found = responseOf(template, method, status);
    const schemaPtr = `${found.where}/content/${mediaType.replace(/\//g, "~1")}/schema`;
    validators.set(key, ajv.compile({ $ref: "openapi" + schemaPtr }));
  }
  return validators.get(key);
}

const covered = new Set();

// Every method a documented path does not list gets 405 with an Error body.
async function undocumentedMethods(base) {
  const errorSchema = ajv.compile({ $ref: "openapi#/components/schemas/Error" });
  for (const [template, item] of Object.entries(spec.paths)) {
    const url = template.replace("{name}", "docs").replace("{id}", "a");
    for (const method of ["GET", "PUT", "POST", "PATCH", "DELETE"]) {
      if (item[method.toLowerCase()]) continue;
      // POST .../documents/delete is a route; the other methods on .../documents/delete address the
      // document whose id is "delete" (documents/{id}).
      if (template.endsWith("/documents/{id}") && method === "POST") continue;
      if (template.endsWith("/documents/delete") && method !== "POST") continue;
      let res;
      try { res = await fetch(base + url, { method }); } catch (e) { fail(`${method} ${url}: ${e.cause || e}`); continue; }
      const text = await res.text();
      if (res.status !== 405) {
        fail(`${method} ${url} -> ${res.status}: an undocumented method must get 405: ${text.slice(0, 200)}`);
        continue;
      }
      let json = null;
      try { json = JSON.parse(text); } catch (e) { /* checked below */ }
      if (json === null || !errorSchema(json) || json.error.code !== "method_not_allowed") {
        fail(`${method} ${url} -> 405 without a method_not_allowed Error body: ${text.slice(0, 200)}`);
      }
      ++methodChecks;
    }
  }
}
let methodChecks = 0;

// Sends one request and checks it against the spec: status documented (and as expected), body valid.
async function call(base, step) {
  const { method, url, template, body, status, headers = {} } = step;
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    if (!("Content-Type" in init.headers)) init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(base + url, init);
  const text = await res.text();
  const label = `${method} ${url} -> ${res.status}`;
  if (!res.headers.get("x-request-id")) fail(`${label}: no X-Request-Id header`);
  if (status !== undefined && res.status !== status) fail(`${label}: expected ${status}: ${text.slice(0, 300)}`);
  const found = responseOf(template, method, res.status);
  if (!found) {
    fail(`${label}: status ${res.status} is not documented for ${method} ${template}: ${text.slice(0, 300)}`);
    return { status: res.status, json: null, headers: res.headers };
  }
  covered.add(`${method.toLowerCase()} ${template} ${res.status}`);
  // A request the server accepted must be valid under the spec's request schema (a client written
  // from the spec can send it).
  if (res.status < 300 && body !== undefined) {
    const op = spec.paths[template][method.toLowerCase()];
    const mediaType = (init.headers["Content-Type"] || "application/json").split(";")[0];
    if (!op.requestBody || !op.requestBody.content[mediaType]) {
      fail(`${label}: the spec documents no ${mediaType} request body`);
    } else if (mediaType === "application/json") {
      const key = `request ${method} ${template}`;
      if (!validators.has(key)) {
        validators.set(key, ajv.compile({ $ref: "openapi" + pointer("paths", template, method.toLowerCase(), "requestBody",
                                                                   "content", mediaType, "schema") }));
      }
      const validate = validators.get(key);
      if (!validate(JSON.parse(init.body))) {
        fail(`${label}: the accepted request body does not match the spec: ${ajv.errorsText(validate.errors)}`);
      }
    }
  }
  const ct = (res.headers.get("content-type") || "").split(";")[0].trim();
  const documented = Object.keys(found.r.content || {});
  if (!documented.includes(ct)) fail(`${label}: content type '${ct}' is not documented (${documented})`);
  let json = null;
  if (ct === "application/json") {
    try { json = JSON.parse(text); } catch (e) { fail(`${label}: body is not JSON: ${text.slice(0, 200)}`); }
    if (json !== null) {
      const validate = validatorFor(template, method, res.status, ct);
      if (!validate(json)) fail(`${label}: body does not match the schema: ${ajv.errorsText(validate.errors)}: ${text.slice(0, 300)}`);
      if (res.status >= 400 && /\/(work|home|tmp|var|usr)\//.test(json.error && json.error.message)) {
        fail(`${label}: error message names a server path: ${json.error.message}`);
      }
    }
  }
  return { status: res.status, json, headers: res.headers };
}

const SCHEMA = {
  fields: [
    { name: "title", type: "text" },
    { name: "body", type: "text" },
    { name: "tag", type: "keyword" },
    { name: "year", type: "integer" },
    { name: "emb", type: "vector", dim: 3, metric: "l2", index: "flat" },
    { name: "sp", type: "sparse_vector" },
    { name: "sem", type: "vector", dim: 32, index: "flat", encoder: "hashing", sources: ["title", "body"] },
  ],
  bm25: { k1: 1.2, b: 0.75 },
};
const DOCS = [
  { id: "a", title: "Apples", body: "red apple pie", tag: "fruit", year: 2001, emb: [1, 0, 0], sp: { apple: 1.5 } },
  { id: "b", title: "Green", body: "green apple", tag: "fruit", year: 2010, emb: [0, 1, 0] },
  { id: 3, title: "Cars", body: "red car", tag: "car", year: 2020, emb: [0, 0, 1], sp: { car: 2, red: 0.5 } },
];

async function main() {
  await SwaggerParser.validate(JSON.parse(JSON.stringify(spec)));
  console.log("docs/openapi.yaml: valid OpenAPI " + spec.openapi);

  const srv = await startServer(quiver, ["--max-batch", "5"]);
  const keyed = await startServer(quiver, ["--api-key", "s3cret", "--read-only-api-key", "r3ad"]);
  const tight = await startServer(quiver, ["--filter-budget", "1"]);  // every filter over a document exceeds it
  try {
    const C = "/v1/collections/{name}";
    const D = C + "/documents";
    const steps = [
      ["GET", "/v1/healthz", "/v1/healthz", undefined, 200],
      ["GET", "/v1/metrics", "/v1/metrics", undefined, 200],
      ["GET", "/v1/collections", "/v1/collections", undefined, 200],
      ["GET", "/v1/collections?limit=5", "/v1/collections", undefined, 400],
      ["GET", "/v1/metrics?format=json", "/v1/metrics", undefined, 400],
      ["PUT", "/v1/collections/docs", C, SCHEMA, 201],
      ["PUT", "/v1/collections/docs", C, SCHEMA, 409],
      ["PUT", "/v1/collections/other", C, { fields: [{ name: "x", type: "text", colour: "red" }] }, 400],
      ["PUT", "/v1/collections/other", C, JSON.stringify(SCHEMA), 415, { "Content-Type": "text/plain" }],
      ["GET", "/v1/collections/docs", C, undefined, 200],
      ["GET", "/v1/collections/-bad", C, undefined, 400],
      ["GET", "/v1/collections/nope", C, undefined, 404],
      ["POST", "/v1/collections/docs/documents", D, DOCS, 200],
      ["POST", "/v1/collections/docs/documents", D, { documents: [{ id: "d", body: "blue sky", tag: "sky", year: 1999 }] }, 200],
      ["POST", "/v1/collections/docs/documents", D, '{"id": "e", "body": "teal"}\n{"id": "f", "body": "navy"}\n', 200,
        { "Content-Type": "application/x-ndjson" }],
      ["POST", "/v1/collections/docs/documents", D, "[{\"id\": ", 400],
      ["POST", "/v1/collections/nope/documents", D, DOCS, 404],
      ["POST", "/v1/collections/docs/documents", D, [1, 2, 3, 4, 5, 6].map((i) => ({ id: i })), 413],
      ["POST", "/v1/collections/docs/documents", D, JSON.stringify(DOCS), 415, { "Content-Type": "application/x-www-form-urlencoded" }],
      ["POST", "/v1/collections/docs/documents", D, [{ id: "z", emb: [1, 2] }], 422],
      ["PATCH", "/v1/collections/docs/documents", D, [{ id: "a", year: 2002 }, { id: 3, tag: null }], 200],
      ["PATCH", "/v1/collections/docs/documents", D, "{", 400],
      ["PATCH", "/v1/collections/docs/documents", D, [{ id: "missing", year: 1 }], 404],
      ["PATCH", "/v1/collections/docs/documents", D, [{ id: "a", year: "soon" }], 422],
      ["GET", "/v1/collections/docs/documents/a", D + "/{id}", undefined, 200],
      ["GET", "/v1/collections/docs/documents/a?fields=title,emb&with_vectors=true", D + "/{id}", undefined, 200],
      ["GET", "/v1/collections/docs/documents/a?colour=red", D + "/{id}", undefined, 400],
      ["GET", "/v1/collections/docs/documents/zz", D + "/{id}", undefined, 404],
      ["PATCH", "/v1/collections/docs/documents/b", D + "/{id}", { year: 2011, sp: { green: 1 } }, 200],
      ["PATCH", "/v1/collections/docs/documents/b", D + "/{id}", { id: "c", year: 1 }, 400],
      ["PATCH", "/v1/collections/docs/documents/zz", D + "/{id}", { year: 1 }, 404],
      ["PATCH", "/v1/collections/docs/documents/b", D + "/{id}", { nope: 1 }, 422],
      ["POST", C.replace("{name}", "docs") + "/search", C + "/search", { field: "body", text: "apple", limit: 1 }, 200],
      ["POST", "/v1/collections/docs/search", C + "/search",
        { queries: [{ field: "body", text: "red", weight: 0.3 }, { field: "emb", vector: [0, 0, 1], weight: 0.7 }],
          fusion: { method: "convex", normalization: "dbsf" }, filter: { field: "year", range: { gte: 2000 } },
          limit: 2, offset: 0, fields: ["title"], with_vectors: true, score_threshold: -100 }, 200],
      ["POST", "/v1/collections/docs/search", C + "/search",
        { queries: [{ field: "sem", text: "apple pie" }, { field: "sp", sparse: { car: 1 } }], fusion: { method: "rrf", k: 10 },
          search_after: [0.05, "a"] }, 200],
      ["POST", "/v1/collections/docs/search", C + "/search", { filter: { field: "tag", in: ["fruit", "car"] }, limit: 2 }, 200],
      ["POST", "/v1/collections/docs/search", C + "/search",
        { queries: [{ field: "body", text: "red apple", prf: { method: "rm3", fb_docs: 2, fb_terms: 5, original_query_weight: 0.6 } },
                    { field: "emb", vector: [0, 0, 1], prf: { fb_docs: 2, alpha: 0.9, beta: 0.1 } }],
          cutoff: { method: "calibrated", depth: 5, threshold: 0.5, feature_mean: [0, 0, 0, 0, 0, 0],
                    feature_scale: [1, 1, 1, 1, 1, 1], wa: [0, 0, 0, 0, 0, 0], wb: [1, 0, 0, 0, 0, 0], split: "train" },
          min_relevance: 0.1, limit: 3 }, 200],
      ["POST", "/v1/collections/docs/search", C + "/search", { field: "body", text: "x", prf: { method: "rocchio", fb_docs: 0 } }, 400],
      ["POST", "/v1/collections/docs/search", C + "/search", { field: "body", text: "x", min_relevance: 0.5 }, 400],
      ["POST", "/v1/collections/docs/search", C + "/search", { field: "body", text: "x", offset: -1 }, 400],
      ["POST", "/v1/collections/docs/search", C + "/search", { field: "body", text: "x", colour: 1 }, 400],
      ["POST", "/v1/collections/nope/search", C + "/search", { field: "body", text: "x" }, 404],
      ["POST", "/v1/collections/docs/search/batch", C + "/search/batch",
        { searches: [{ field: "body", text: "apple" }, { field: "emb", vector: [1, 0, 0], limit: 1 }, {}] }, 200],
      ["POST", "/v1/collections/docs/search/batch", C + "/search/batch", { searches: [{ field: "nope", text: "x" }] }, 400],
      ["POST", "/v1/collections/nope/search/batch", C + "/search/batch", { searches: [] }, 404],
      ["POST", "/v1/collections/docs/search/batch", C + "/search/batch", { searches: new Array(101).fill({}) }, 413],
      ["POST", "/v1/collections/docs/count", C + "/count", undefined, 200],
      ["POST", "/v1/collections/docs/count", C + "/count", { filter: { not: { field: "tag", eq: "fruit" } } }, 200],
      ["POST", "/v1/collections/docs/count", C + "/count", { filter: { field: "tag" } }, 400],
      ["POST", "/v1/collections/nope/count", C + "/count", {}, 404],
      ["POST", "/v1/collections/docs/scroll", C + "/scroll", undefined, 200],
      ["POST", "/v1/collections/docs/scroll", C + "/scroll", { limit: 2, cursor: "a", filter: { field: "year", range: { lt: 2100 } }, fields: [] }, 200],
      ["POST", "/v1/collections/docs/scroll", C + "/scroll", { limit: 0 }, 400],
      ["POST", "/v1/collections/nope/scroll", C + "/scroll", {}, 404],
      ["POST", "/v1/collections/docs/flush", C + "/flush", undefined, 200],
      ["POST", "/v1/collections/docs/flush", C + "/flush", { now: true }, 400],
      ["POST", "/v1/collections/nope/flush", C + "/flush", undefined, 404],
      ["POST", "/v1/collections/docs/optimize", C + "/optimize", undefined, 200],
      ["POST", "/v1/collections/nope/optimize", C + "/optimize", undefined, 404],
      ["POST", "/v1/collections/docs/documents/delete", D + "/delete", { ids: ["e", 3, "unknown"] }, 200],
      ["POST", "/v1/collections/docs/documents/delete", D + "/delete", { filter: { field: "tag", eq: "sky" } }, 200],
      ["POST", "/v1/collections/docs/documents/delete", D + "/delete", { ids: ["a"], filter: { field: "tag", eq: "x" } }, 400],
      ["POST", "/v1/collections/nope/documents/delete", D + "/delete", { ids: ["a"] }, 404],
      ["POST", "/v1/collections/docs/documents/delete", D + "/delete", { ids: ["1", "2", "3", "4", "5", "6"] }, 413],
      ["DELETE", "/v1/collections/docs/documents/f", D + "/{id}", undefined, 200],
      ["DELETE", "/v1/collections/docs/documents/f", D + "/{id}", undefined, 404],
      ["METHODS"],
      ["DELETE", "/v1/collections/docs", C, undefined, 200],
      ["DELETE", "/v1/collections/docs", C, undefined, 404],
    ];
    for (const [method, url, template, body, status, headers] of steps) {
      if (method === "METHODS") {
        await undocumentedMethods(srv.base);
        continue;
      }
      await call(srv.base, { method, url, template, body, status, headers });
    }
    // The aliases without /v1 answer like the v1 routes.
    await call(srv.base, { method: "GET", url: "/healthz", template: "/v1/healthz", status: 200 });
    await call(srv.base, { method: "GET", url: "/collections", template: "/v1/collections", status: 200 });
    // The request id is echoed.
    const echoed = await call(srv.base, { method: "GET", url: "/v1/collections", template: "/v1/collections", status: 200,
                                          headers: { "X-Request-Id": "trace-42" } });
    if (echoed.headers.get("x-request-id") !== "trace-42") fail("X-Request-Id is not echoed");
    // Authentication.
    await call(keyed.base, { method: "GET", url: "/v1/metrics", template: "/v1/metrics", status: 401 });
    await call(keyed.base, { method: "GET", url: "/v1/collections", template: "/v1/collections", status: 401 });
    await call(keyed.base, { method: "GET", url: "/v1/collections", template: "/v1/collections", status: 200,
                             headers: { Authorization: "Bearer s3cret" } });
    await call(keyed.base, { method: "GET", url: "/v1/healthz", template: "/v1/healthz", status: 200 });
    // A read-only key may not write: 403 before the body is looked at.
    await call(keyed.base, { method: "POST", url: "/v1/collections/c/documents", template: "/v1/collections/{name}/documents",
                             body: [{ id: "x" }], status: 403, headers: { Authorization: "Bearer r3ad" } });
    // The per-request filter budget: 422 filter_budget_exceeded on every route that evaluates a filter.
    const over = { field: "tag", eq: "fruit" };
    for (const step of [
      ["PUT", "/v1/collections/docs", C, SCHEMA, 201],
      ["POST", "/v1/collections/docs/documents", D, DOCS, 200],
      ["POST", "/v1/collections/docs/search", C + "/search", { field: "body", text: "apple", filter: over }, 422],
      ["POST", "/v1/collections/docs/search/batch", C + "/search/batch",
        { searches: [{ field: "body", text: "apple", filter: over }] }, 422],
      ["POST", "/v1/collections/docs/count", C + "/count", { filter: over }, 422],
      ["POST", "/v1/collections/docs/scroll", C + "/scroll", { filter: over }, 422],
    ]) {
      const [method, url, template, body, status] = step;
      const r = await call(tight.base, { method, url, template, body, status });
      if (status === 422 && !(r.json && r.json.error && r.json.error.code === "filter_budget_exceeded")) {
        fail(`${method} ${url}: expected error code filter_budget_exceeded, got ${JSON.stringify(r.json)}`);
      }
    }
  } finally {
    await srv.stop();
    await keyed.stop();
    await tight.stop();
  }
  // Every documented (route, method, status) was exercised.
  let documented = 0;
  for (const [template, item] of Object.entries(spec.paths)) {
    for (const method of ["get", "put", "post", "patch", "delete"]) {
      if (!item[method]) continue;
      for (const status of Object.keys(item[method].responses)) {
        ++documented;
        if (!covered.has(`${method} ${template} ${status}`)) fail(`not exercised: ${method.toUpperCase()} ${template} ${status}`);
      }
    }
  }
  console.log(`${covered.size} of ${documented} documented (route, method, status) exercised, ${methodChecks} undocumented methods got 405; ${failures.length} failures`);
  process.exit(failures.length === 0 ? 0 : 1);
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
