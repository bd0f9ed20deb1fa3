// ONNX Runtime peer of `quiver bench encode` and reference of the encode tests: runs a model exported by
// scripts/make_encoder_fixtures.py (`onnx` command) with onnxruntime-node (the CPU libonnxruntime.so).
//
//   node ort_peer.js --modules TOOLS/node_modules --model M.onnx --threads 2 --serve
//   node ort_peer.js --modules TOOLS/node_modules --model M.onnx --threads 1 --infer IDS.bin --out OUT.bin
//
// IDS.bin: u32 n, u32 L, n*L int32 token ids (rows padded with 0), n int32 attention lengths (keys a row
// attends to: positions [0, len)), and optionally n int32 kept lengths (ColBERT: rows returned; default
// the attention length). OUT.bin: the model's first output as float32 (embedding [n, H], sparse [n, V]
// or colbert [n, L, D]).
//
// --infer runs all rows as one batch. --serve prints {"ready": true}, then for every JSON line
// {"ids": path, "batch": B, "out": path-or-empty} on stdin runs the rows in batches of B (in file
// order, each batch padded to its longest row), and prints {"paths": {"onnxruntime": {"seconds": total,
// "batches": [seconds per batch]}}}; any other line ends it. Threads: intraOpNumThreads = --threads
// (the calling thread counts as one, as in quiver's pool), interOpNumThreads = 1, sequential execution,
// all graph optimisations. Exit code 77 = onnxruntime-node is not installed (tests skip).
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const modules = arg('modules', path.join(__dirname, '..', '..', 'tools', 'node_modules'));
let ort;
try {
  ort = require(path.join(path.resolve(modules), 'onnxruntime-node'));
} catch (e) {
  process.stderr.write(`ort_peer: onnxruntime-node is not installed in ${modules} (scripts/install-deps): ${e.message}\n`);
  process.exit(77);
}

function readIds(file) {
  const buf = fs.readFileSync(file);
  const n = buf.readUInt32LE(0);
  const L = buf.readUInt32LE(4);
  const ids = new Int32Array(buf.buffer.slice(buf.byteOffset + 8, buf.byteOffset + 8 + 4 * n * L));
  const attend = new Int32Array(buf.buffer.slice(buf.byteOffset + 8 + 4 * n * L, buf.byteOffset + 8 + 4 * n * (L + 1)));
  let keep = attend;
  if (buf.length >= 8 + 4 * n * (L + 2)) {
    keep = new Int32Array(buf.buffer.slice(buf.byteOffset + 8 + 4 * n * (L + 1), buf.byteOffset + 8 + 4 * n * (L + 2)));
  }
  return { n, L, ids, attend, keep };
}

// Feeds for rows [begin, end), padded to the longest kept length among them.
function feeds(session, d, begin, end) {
  const B = end - begin;
  let Lb = 1;
  for (let r = begin; r < end; ++r) Lb = Math.max(Lb, d.keep[r], d.attend[r]);
  const ids = new BigInt64Array(B * Lb);
  const mask = new BigInt64Array(B * Lb);
  const keep = new BigInt64Array(B * Lb);
  for (let r = begin; r < end; ++r) {
    for (let j = 0; j < Lb; ++j) {
      const o = (r - begin) * Lb + j;
      ids[o] = BigInt(d.ids[r * d.L + j]);
      mask[o] = j < d.attend[r] ? 1n : 0n;
      keep[o] = j < d.keep[r] ? 1n : 0n;
    }
  }
  const f = {
    input_ids: new ort.Tensor('int64', ids, [B, Lb]),
    attention_mask: new ort.Tensor('int64', mask, [B, Lb]),
  };
  if (session.inputNames.includes('keep')) f.keep = new ort.Tensor('int64', keep, [B, Lb]);
  return f;
}

async function main() {
  const threads = parseInt(arg('threads', '1'), 10);
  const session = await ort.InferenceSession.create(arg('model'), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // --no-spin: idle threads sleep instead of spinning (for CPU-time measurements, not the default).
    extra: process.argv.includes('--no-spin') ? { session: { intra_op: { allow_spinning: '0' } } } : {},
  });
  const first = session.outputNames[0];
  const infer = arg('infer');
  if (infer) {
    const d = readIds(infer);
    const res = await session.run(feeds(session, d, 0, d.n));
    const t = res[first];
    fs.writeFileSync(arg('out'), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    process.stdout.write(JSON.stringify({ output: first, dims: t.dims }) + '\n');
    return;
  }
  process.stdout.write(JSON.stringify({ ready: true, version: require(path.join(path.resolve(modules), 'onnxruntime-node', 'package.json')).version }) + '\n');
  const cache = new Map();
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      break;
    }
    if (!req || !req.ids) break;
    if (!cache.has(req.ids)) cache.set(req.ids, readIds(req.ids));
    const d = cache.get(req.ids);
    const B = Math.max(1, req.batch | 0);
    // Inputs are built before the clock starts: the peer is timed on inference only.
    const all = [];
    for (let b = 0; b < d.n; b += B) all.push(feeds(session, d, b, Math.min(d.n, b + B)));
    const batches = [];
    const outs = [];
    const t0 = process.hrtime.bigint();
    for (const f of all) {
      const s = process.hrtime.bigint();
      const res = await session.run(f);
      batches.push(Number(process.hrtime.bigint() - s) / 1e9);
      outs.push(res[first]);
    }
    const total = Number(process.hrtime.bigint() - t0) / 1e9;
    if (req.out) {
      const fd = fs.openSync(req.out, 'w');
      for (const t of outs) fs.writeSync(fd, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      fs.closeSync(fd);
    }
    process.stdout.write(JSON.stringify({ paths: { onnxruntime: { seconds: total, batches } } }) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(`ort_peer: ${e.stack || e}\n`);
  process.exit(1);
});
