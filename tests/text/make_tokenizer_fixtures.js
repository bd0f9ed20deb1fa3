#!/usr/bin/env node
// Makes the tokenizer.json fixtures of tests/data/text/ with Hugging Face's own `tokenizers` library
// (npm binding, tools/node_modules): a byte-level BPE and a Unigram model trained on the Cranfield
// abstracts, cut down to small files, in several pipeline variants. Run from the source root:
//   node tests/text/make_tokenizer_fixtures.js [data-dir]      (data-dir: ../shared/data by default)
// The cuts keep files small: BPE keeps the first 2000 merges (and the 256 byte symbols), Unigram the
// 2500 best pieces (and every single character). The library itself loads each written file.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const tk = require(path.resolve('tools/node_modules/tokenizers'));

const dataDir = process.argv[2] || process.env.QUIVER_DATA_DIR || path.resolve('..', 'shared', 'data');
const outDir = path.resolve('tests/data/text');

function cranfieldTexts() {
  const raw = fs.readFileSync(path.join(dataDir, 'cranfield', 'cran.all.1400'), 'utf8');
  return raw.split(/^\.I /m).slice(1).map((rec) => rec.replace(/^\d+\s*/, '').replace(/^\.[TABW]\s*$/gm, '').trim());
}

function train(model, pre, normalizer) {
  const t = new tk.Tokenizer(model);
  if (normalizer) t.setNormalizer(normalizer);
  t.setPreTokenizer(pre);
  const tmp = path.join(os.tmpdir(), `quiver-train-${process.pid}.txt`);
  fs.writeFileSync(tmp, cranfieldTexts().join('\n'));
  t.train([tmp]);
  fs.unlinkSync(tmp);
  const file = path.join(os.tmpdir(), `quiver-trained-${process.pid}.json`);
  t.save(file);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.unlinkSync(file);
  return json;
}

function added(id, content, opts = {}) {
  return Object.assign({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }, opts);
}

function template(before, after, specials) {
  const single = [];
  for (const s of before) single.push({ SpecialToken: { id: s, type_id: 0 } });
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  for (const s of after) single.push({ SpecialToken: { id: s, type_id: 0 } });
  const special_tokens = {};
  for (const [s, id] of Object.entries(specials)) special_tokens[s] = { id: s, ids: [id], tokens: [s] };
  return { type: 'TemplateProcessing', single, pair: single, special_tokens };
}

function write(name, json) {
  const file = path.join(outDir, name + '.json');
  fs.writeFileSync(file, JSON.stringify(json));
  const t = tk.Tokenizer.fromFile(file);  // the library must accept it
  console.log(`${file}: ${fs.statSync(file).size} bytes, vocab ${t.getVocabSize(true)}`);
}

function makeBpe() {
  const j = train(tk.BPE.empty(), tk.byteLevelPreTokenizer(false, true));
  const merges = j.model.merges.slice(0, 2000).map((m) => (Array.isArray(m) ? m : m.split(' ')));
  const vocab = {};
  for (const c of tk.byteLevelAlphabet().sort()) vocab[c] = Object.keys(vocab).length;
  for (const [a, b] of merges) {
    for (const t of [a, b, a + b]) if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  }
  const n = Object.keys(vocab).length;
  const model = { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
                  fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges };
  const addedTokens = [added(n, '<|endoftext|>'), added(n + 1, '<mask>', { lstrip: true }),
                       added(n + 2, 'Aerofoil', { special: false, normalized: true }),
                       added(n + 3, '<sw>', { single_word: true, rstrip: true })];
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const base = { version: '1.0', truncation: null, padding: null, added_tokens: addedTokens,
                 decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true } };
  // GPT-2: ByteLevel pre-tokenizer with its built-in regex, an end-of-text token after the sequence.
  write('bpe-gpt2', Object.assign({}, base, { normalizer: null, pre_tokenizer: byteLevel,
    post_processor: template([], ['<|endoftext|>'], { '<|endoftext|>': n }), model }));
  // Llama 3: Split with its regex, then ByteLevel without one; ignore_merges; a begin-of-text token.
  const llama = '(?i:\'s|\'t|\'re|\'ve|\'m|\'ll|\'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
  write('bpe-llama3', Object.assign({}, base, { normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: llama }, behavior: 'Isolated', invert: false },
      Object.assign({}, byteLevel, { use_regex: false })] },
    post_processor: { type: 'Sequence', processors: [Object.assign({}, byteLevel, { use_regex: false }),
      template(['<|endoftext|>'], [], { '<|endoftext|>': n })] },
    model: Object.assign({}, model, { ignore_merges: true }) }));
  // Qwen 2: NFC, its regex (single digits), no special tokens added.
  const qwen = llama.replace('\\p{N}{1,3}', '\\p{N}');
  write('bpe-qwen2', Object.assign({}, base, { normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: qwen }, behavior: 'Isolated', invert: false },
      Object.assign({}, byteLevel, { use_regex: false })] },
    post_processor: Object.assign({}, byteLevel, { use_regex: false }), model }));
}

function makeBpeLlama2() {
  // Llama 2 / Mistral shape: no pre-tokenizer; the normaliser prepends '▁' and turns spaces into '▁';
  // BPE over characters with byte fallback (<0x00>..<0xFF>) and a fused <unk>.
  const j = train(tk.BPE.empty(), tk.metaspacePreTokenizer('\u2581', 'always', true));
  const merges = j.model.merges.slice(0, 1500).map((m) => (Array.isArray(m) ? m : m.split(' ')));
  const vocab = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; ++b) vocab['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>'] = Object.keys(vocab).length;
  const singles = Object.keys(j.model.vocab).filter((t) => [...t].length === 1).sort();
  for (const t of singles) if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  for (const [a, b] of merges) {
    for (const t of [a, b, a + b]) if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  }
  write('bpe-llama2', { version: '1.0', truncation: null, padding: null,
    added_tokens: [added(0, '<unk>'), added(1, '<s>'), added(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' },
      { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
    pre_tokenizer: null,
    post_processor: template(['<s>'], [], { '<s>': 1 }),
    decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
             fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges } });
}

function makeUnigram() {
  const meta = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true };
  const j = train(tk.Unigram.empty(), tk.metaspacePreTokenizer('\u2581', 'always', true));
  // The default trainer has no unknown piece: add one in front, as SentencePiece models have.
  const pieces = j.model.unk_id == null ? [['<unk>', 0.0]].concat(j.model.vocab) : j.model.vocab;
  if (j.model.unk_id == null) j.model.unk_id = 0;
  const keep = pieces.map((p, i) => [p, i]).filter(([p], i) => i === j.model.unk_id || [...p[0]].length === 1);
  const rest = pieces.map((p, i) => [p, i]).filter(([p], i) => !(i === j.model.unk_id || [...p[0]].length === 1));
  rest.sort((a, b) => b[0][1] - a[0][1]);
  const chosen = keep.concat(rest.slice(0, 2500 - keep.length)).sort((a, b) => a[1] - b[1]).map(([p]) => p);
  const unkId = chosen.findIndex((p) => p[0] === pieces[j.model.unk_id][0]);
  const n = chosen.length;
  const addedTokens = [added(unkId, chosen[unkId][0]), added(n, '<s>'), added(n + 1, '</s>'),
                       added(n + 2, '<mask>', { lstrip: true }), added(n + 3, 'jet', { special: false, normalized: true })];
  const vocab = chosen.concat([['<s>', 0.0], ['</s>', 0.0], ['<mask>', 0.0], ['jet', 0.0]]);
  const base = { version: '1.0', truncation: null, padding: null, added_tokens: addedTokens,
                 post_processor: template(['<s>'], ['</s>'], { '<s>': n, '</s>': n + 1 }),
                 decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true } };
  // XLM-R / T5 shape: NFKC + lower case (instead of their Precompiled charsmap), Metaspace, Unigram.
  write('unigram', Object.assign({}, base, {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Lowercase' },
      { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Strip', strip_left: true, strip_right: true }] },
    pre_tokenizer: meta,
    model: { type: 'Unigram', unk_id: unkId, vocab, byte_fallback: false } }));
  // Byte fallback (Llama 2 / Gemma style): the 256 <0xXX> pieces, first-only prefix, no normaliser.
  const bytes = [];
  for (let b = 0; b < 256; ++b) bytes.push(['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>', -20.0]);
  const shift = (t) => Object.assign({}, t, { id: t.id >= n ? t.id + 256 : t.id });
  write('unigram-bytes', Object.assign({}, base, {
    added_tokens: addedTokens.map(shift),
    post_processor: template(['<s>'], ['</s>'], { '<s>': n + 256, '</s>': n + 257 }),
    normalizer: null,
    pre_tokenizer: Object.assign({}, meta, { prepend_scheme: 'first' }),
    model: { type: 'Unigram', unk_id: unkId, vocab: chosen.concat(bytes, vocab.slice(n)), byte_fallback: true } }));
}

function makeWordPiece() {
  // The tiny BERT vocabulary of tests/data/encode/bert-mean with the other BERT-family pipelines.
  const j = JSON.parse(fs.readFileSync(path.resolve('tests/data/encode/bert-mean/tokenizer.json'), 'utf8'));
  j.added_tokens.push(added(193, 'Jumps', { special: false, normalized: true }));
  j.model.vocab['Jumps'] = 193;
  write('wordpiece-nfd', Object.assign({}, j, {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'Punctuation', behavior: 'Isolated' },
      { type: 'Digits', individual_digits: true }] } }));
  write('wordpiece-nfkc', Object.assign({}, j, {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'StripAccents' },
      { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: false, lowercase: true }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'Digits', individual_digits: false },
      { type: 'Punctuation', behavior: 'Contiguous' }] } }));
}

makeBpe();
makeBpeLlama2();
makeUnigram();
makeWordPiece();
