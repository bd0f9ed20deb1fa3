#!/usr/bin/env node
// `quiver tokenize` against Hugging Face's own tokenizers library (npm binding `tokenizers`, installed
// in tools/node_modules by scripts/install-deps): exact equality of ids and token strings on every
// document and query of SciFact and Cranfield and on tests/data/text/hard_strings.jsonl (and
// grapheme_strings.jsonl, made for the Precompiled charsmaps by make_precompiled_fixtures.py), for the
// model2vec fixture vocabulary, the tiny BERT vocabulary and the fixtures of tests/data/text
// (byte-level BPE as GPT-2 / Llama 3 / Qwen 2, Unigram with and without byte fallback, Unigram with
// SentencePiece's precompiled charsmap as XLM-R and T5, WordPiece with other BERT-family pipelines),
// without truncation and truncated to 64 and 512 ids.
//   node tests/text/hf_reference_test.js QUIVER_BINARY SOURCE_DIR [DATA_DIR]
// By default (to keep the suite fast) the model2vec vocabulary, bpe-gpt2, unigram and unigram-precompiled
// (XLM-R's charsmap) are compared on every text, the other fixtures and the truncated runs (64 ids for
// all, 512 for those four) on the hard strings, the grapheme strings, every query and every twentieth
// document; QUIVER_HF_FULL=1 compares every fixture on every text at every length.
// Exit 0 when everything matches, 1 on any mismatch, 77 (skipped) without node's tokenizers package
// (QUIVER_NODE_MODULES=DIR to use a node_modules other than tools/node_modules).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const [quiver, sourceArg, dataArg] = process.argv.slice(2);
const sourceDir = sourceArg && path.resolve(sourceArg);
if (!quiver || !sourceArg) {
  console.error('usage: hf_reference_test.js QUIVER_BINARY SOURCE_DIR [DATA_DIR]');
  process.exit(2);
}
// QUIVER_NODE_MODULES names another node_modules holding the package (default: the checkout's tools/).
const modules = process.env.QUIVER_NODE_MODULES || path.join(sourceDir, 'tools', 'node_modules');
let tk;
try {
  tk = require(path.join(path.resolve(modules), 'tokenizers'));
} catch (e) {
  console.log(`skipped: the npm package tokenizers is not installed in ${modules} (scripts/install-deps)`);
  process.exit(77);
}
const dataDir = dataArg || process.env.QUIVER_DATA_DIR || path.join(sourceDir, '..', 'shared', 'data');
const haveData = fs.existsSync(path.join(dataDir, 'scifact', 'corpus.jsonl'));

function readJsonl(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

// Cranfield SMART format: .I id, then fields .T .A .B .W; documents are title + " " + abstract.
function readSmart(file, prefix) {
  const out = [];
  for (const rec of fs.readFileSync(file, 'utf8').split(/^\.I /m).slice(1)) {
    const id = rec.match(/^\s*(\d+)/)[1];
    const fields = {};
    let cur = null;
    for (const line of rec.split('\n').slice(1)) {
      const m = line.match(/^\.([TABW])\s*$/);
      if (m) { cur = m[1]; fields[cur] = []; } else if (cur) fields[cur].push(line);
    }
    const get = (k) => (fields[k] || []).join('\n').trim();
    out.push({ id: `${prefix}${id}`, text: get('T') ? `${get('T')} ${get('W')}` : get('W') });
  }
  return out;
}

const sets = [['hard strings', readJsonl(path.join(sourceDir, 'tests/data/text/hard_strings.jsonl'))],
              ['grapheme strings', readJsonl(path.join(sourceDir, 'tests/data/text/grapheme_strings.jsonl'))]];
if (haveData) {
  sets.push(['scifact docs', readJsonl(path.join(dataDir, 'scifact/corpus.jsonl')).map((d) => (
    { id: `sd${d._id}`, text: d.title ? `${d.title} ${d.text}` : d.text }))]);
  sets.push(['scifact queries', readJsonl(path.join(dataDir, 'scifact/queries.jsonl')).map((d) => ({ id: `sq${d._id}`, text: d.text }))]);
  sets.push(['cranfield docs', readSmart(path.join(dataDir, 'cranfield/cran.all.1400'), 'cd')]);
  sets.push(['cranfield queries', readSmart(path.join(dataDir, 'cranfield/cran.qry'), 'cq')]);
} else {
  console.log(`note: no data under ${dataDir}: SciFact, Cranfield and the model2vec vocabulary are not compared`);
}

const full = process.env.QUIVER_HF_FULL === '1';
const everyText = new Set(['model2vec (bge WordPiece)', 'bpe-gpt2', 'unigram', 'unigram-precompiled']);
const tokenizers = [];
if (haveData) tokenizers.push(['model2vec (bge WordPiece)', path.join(dataDir, 'model2vec-test-fixtures/test-model-float32/tokenizer.json')]);
tokenizers.push(['bert-mean (tiny WordPiece)', path.join(sourceDir, 'tests/data/encode/bert-mean/tokenizer.json')]);
for (const f of fs.readdirSync(path.join(sourceDir, 'tests/data/text')).filter((f) => f.endsWith('.json')).sort()) {
  tokenizers.push([f.replace(/\.json$/, ''), path.join(sourceDir, 'tests/data/text', f)]);
}

// The reduced set: the hard strings, every query and every twentieth document.
const truncSets = sets.map(([name, set]) => [name, name.endsWith('docs') ? set.filter((_, i) => i % 20 === 0) : set]);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-hfref-'));
function writeInput(name, list) {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, [].concat(...list.map(([, s]) => s)).map((t) => JSON.stringify({ id: t.id, text: t.text })).join('\n') + '\n');
  return file;
}
const fullInput = writeInput('full.jsonl', sets);
const truncInput = writeInput('subset.jsonl', truncSets);

function runQuiver(tokFile, maxLength, all) {
  const out = path.join(tmp, 'tokens.jsonl');
  const args = ['tokenize', '--model', tokFile, '--input', all ? fullInput : truncInput, '--output', out];
  if (maxLength) args.push('--max-length', String(maxLength));
  execFileSync(quiver, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  return readJsonl(out);
}

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const show = (s) => JSON.stringify(s.length > 120 ? s.slice(0, 120) + '…' : s);

async function main() {
  let failures = 0;
  let compared = 0;
  for (const [name, file] of tokenizers) {
    for (const maxLength of [0, 64, 512]) {
      if (maxLength === 512 && !full && !everyText.has(name)) continue;
      const all = maxLength === 0 && (full || everyText.has(name));
      const ours = runQuiver(file, maxLength, all);
      const ref = tk.Tokenizer.fromFile(file);
      if (maxLength) ref.setTruncation(maxLength);
      const useSets = all ? sets : truncSets;
      const bySet = new Map(useSets.map(([s]) => [s, 0]));
      let idMismatch = 0;
      let tokenMismatch = 0;
      let count = 0;
      const examples = [];
      let k = 0;
      for (const [setName, set] of useSets) {
        const encodings = [];
        for (let b = 0; b < set.length; b += 256) {
          encodings.push(...await ref.encodeBatch(set.slice(b, b + 256).map((t) => t.text)));
        }
        for (const [j, t] of set.entries()) {
          const q = ours[k++];
          const e = encodings[j];
          ++count;
          const ids = e.getIds();
          const toks = e.getTokens();
          if (q.id !== t.id) throw new Error(`output out of order at ${t.id}`);
          if (!same(q.ids, ids)) {
            ++idMismatch;
            bySet.set(setName, bySet.get(setName) + 1);
            if (examples.length < 3) examples.push(`  ${t.id} ${show(t.text)}\n    quiver ${JSON.stringify(q.ids.slice(0, 40))}\n    hf     ${JSON.stringify(ids.slice(0, 40))}`);
          } else if (!same(q.tokens, toks)) {
            ++tokenMismatch;
            if (examples.length < 3) examples.push(`  ${t.id} tokens ${show(t.text)}\n    quiver ${JSON.stringify(q.tokens.slice(0, 20))}\n    hf     ${JSON.stringify(toks.slice(0, 20))}`);
          }
        }
      }
      compared += count;
      const detail = [...bySet].filter(([, n]) => n > 0).map(([s, n]) => `${s} ${n}`).join(', ');
      console.log(`${name}${maxLength ? ` (max_length ${maxLength})` : ''}: ${count} texts${all ? ' (all)' : ''}, ` +
                  `${idMismatch} id mismatches${detail ? ` (${detail})` : ''}, ${tokenMismatch} token-string mismatches`);
      for (const ex of examples) console.log(ex);
      failures += idMismatch + tokenMismatch;
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`${compared} encodings compared, ${failures} mismatches${full ? '' : ' (QUIVER_HF_FULL=1 compares every fixture on every text)'}`);
  process.exit(failures === 0 ? 0 : 1);
}
main().catch((e) => { console.error(e); process.exit(1); });
