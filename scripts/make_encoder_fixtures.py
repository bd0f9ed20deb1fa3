#!/usr/bin/python3
"""Writes the encode/ test fixtures: tiny random BERT models as Hugging Face folders, plus reference
outputs computed with PyTorch (float64), and a WordPiece test battery.

  scripts/make_encoder_fixtures.py fixtures tests/data/encode     # the committed fixtures
  scripts/make_encoder_fixtures.py bench-model DIR                 # MiniLM-L6-shaped random model
  scripts/make_encoder_fixtures.py onnx MODEL_DIR [OUT.onnx]       # ONNX export (ONNX Runtime peer)
  scripts/make_encoder_fixtures.py decoders tests/data/encode      # Qwen2/Mistral/XLM-R tiny models

Needs Debian's python3-torch and python3-numpy (scripts/install-deps --with-torch). The `tokenizers`
library is not packaged, so the reference WordPiece tokenizer below is an independent Python
implementation of the Hugging Face BertTokenizer algorithm (BertNormalizer, BertPreTokenizer,
WordPiece, [CLS]/[SEP] template, truncation), written from the tokenizers documentation.
safetensors is not packaged either; its format is trivial (u64 header length, JSON header, raw
little-endian tensors) and is written here directly.
"""
import argparse
import json
import math
import os
import random
import struct
import sys
import unicodedata

# --------------------------------------------------------------------------------------------
# Unicode predicates, as the Rust `tokenizers` crate defines them.
RUST_WHITESPACE = set([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029,
                       0x202F, 0x205F, 0x3000] + list(range(0x2000, 0x200B)))
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def is_whitespace(c):
    return ord(c) in RUST_WHITESPACE


def is_control(c):
    if c in "\t\n\r":
        return False
    return unicodedata.category(c).startswith("C")


def is_punctuation(c):
    o = ord(c)
    if 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def is_cjk(c):
    o = ord(c)
    return any(a <= o <= b for a, b in CJK_RANGES)


class RefWordPiece:
    """Reference BERT tokenizer (HF BertNormalizer + BertPreTokenizer + WordPiece)."""

    def __init__(self, vocab, lowercase=True, strip_accents=None, cls_id=None, sep_id=None,
                 unk="[UNK]", prefix="##", max_chars=100):
        self.vocab = vocab
        self.lowercase = lowercase
        self.strip = lowercase if strip_accents is None else strip_accents
        self.unk_id = vocab[unk]
        self.cls_id = vocab["[CLS]"] if cls_id is None else cls_id
        self.sep_id = vocab["[SEP]"] if sep_id is None else sep_id
        self.prefix = prefix
        self.max_chars = max_chars

    def normalize(self, text):
        text = "".join(" " if is_whitespace(c) else c for c in text
                       if not (ord(c) == 0 or ord(c) == 0xFFFD or is_control(c)))
        text = "".join(f" {c} " if is_cjk(c) else c for c in text)
        if self.strip:
            text = "".join(c for c in unicodedata.normalize("NFD", text)
                           if unicodedata.category(c) != "Mn")
        if self.lowercase:
            text = "".join(c.lower() for c in text)  # per character, as Rust's char::to_lowercase
        return text

    def pre_tokenize(self, text):
        words, cur = [], []
        for c in text:
            if is_whitespace(c):
                if cur:
                    words.append("".join(cur))
                cur = []
            elif is_punctuation(c):
                if cur:
                    words.append("".join(cur))
                cur = []
                words.append(c)
            else:
                cur.append(c)
        if cur:
            words.append("".join(cur))
        return words

    def word_ids(self, word):
        if len(word) > self.max_chars:
            return [self.unk_id]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end]
                if start > 0:
                    piece = self.prefix + piece
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            out.append(found)
            start = end
        return out

    def encode(self, text, max_length=512, special=True):
        ids = []
        for w in self.pre_tokenize(self.normalize(text)):
            ids.extend(self.word_ids(w))
        if not special:
            return ids[:max_length]
        ids = ids[:max(0, max_length - 2)]
        return [self.cls_id] + ids + [self.sep_id]


# --------------------------------------------------------------------------------------------
def write_unicode_tables(path):
    """The tokenizer's Unicode tables are written by scripts/make_unicode_tables.py (kept here as an alias)."""
    import subprocess
    subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_unicode_tables.py"),
                    path], check=True)


def write_safetensors(path, tensors, dtype_name):
    import torch
    dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype_name]
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().to(dt).contiguous()
        raw = t.view(torch.int32 if dtype_name == "F32" else torch.int16).numpy().tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def tokenizer_json(vocab, lowercase=True):
    inv = {v: k for k, v in vocab.items()}
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab[s], "content": s, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True} for s in specials],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [],
            "special_tokens": {s: {"id": s, "ids": [vocab[s]], "tokens": [s]}
                               for s in ["[CLS]", "[SEP]"]}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100,
                  "vocab": {inv[i]: i for i in range(len(inv))}},
    }


def tiny_vocab():
    toks = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    toks += list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    toks += list("abcdefghijklmnopqrstuvwxyz0123456789")
    toks += list("中文字测试日本語")
    toks += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    words = ("the a an is of and to in for on with by hello world quick brown fox jump jumps over lazy "
             "dog dense sparse retrieval search query document vector token model cafe naive resume "
             "late interaction embed embedding text passage represent this sentence relevant find "
             "science claim protein cell gene cancer study data result effect risk patient").split()
    toks += words
    toks += ["##s", "##ing", "##ed", "##er", "##ly", "##tion", "##al", "##ment", "##ness", "##est",
             "##ity", "##ve", "##ent", "##ic", "##ous", "un", "re", "pre", "##ation"]
    vocab = {}
    for t in toks:
        if t not in vocab:
            vocab[t] = len(vocab)
    return vocab


def bert_config(vocab_size, hidden, layers, heads, inter, max_pos, arch="BertModel"):
    return {"architectures": [arch], "model_type": "bert", "vocab_size": vocab_size,
            "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": inter, "hidden_act": "gelu", "max_position_embeddings": max_pos,
            "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02, "torch_dtype": "float32"}


def random_bert(cfg, gen, std=0.15, prefix=""):
    import torch
    H, I, V, P = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"], cfg["max_position_embeddings"]
    def rn(*shape, s=std):
        return torch.randn(*shape, generator=gen) * s
    def ln(name):
        return {f"{name}.weight": 1.0 + rn(H, s=0.1), f"{name}.bias": rn(H, s=0.05)}
    W = {f"{prefix}embeddings.word_embeddings.weight": rn(V, H, s=0.5),
         f"{prefix}embeddings.position_embeddings.weight": rn(P, H, s=0.2),
         f"{prefix}embeddings.token_type_embeddings.weight": rn(2, H, s=0.2)}
    W.update({prefix + k: v for k, v in ln("embeddings.LayerNorm").items()})
    for i in range(cfg["num_hidden_layers"]):
        p = f"{prefix}encoder.layer.{i}."
        for n in ["query", "key", "value"]:
            W[p + f"attention.self.{n}.weight"] = rn(H, H)
            W[p + f"attention.self.{n}.bias"] = rn(H, s=0.05)
        W[p + "attention.output.dense.weight"] = rn(H, H)
        W[p + "attention.output.dense.bias"] = rn(H, s=0.05)
        W.update({p + k: v for k, v in ln("attention.output.LayerNorm").items()})
        W[p + "intermediate.dense.weight"] = rn(I, H)
        W[p + "intermediate.dense.bias"] = rn(I, s=0.05)
        W[p + "output.dense.weight"] = rn(H, I)
        W[p + "output.dense.bias"] = rn(H, s=0.05)
        W.update({p + k: v for k, v in ln("output.LayerNorm").items()})
    return W


def bert_forward(W, cfg, ids, lengths, prefix="", key_lengths=None):
    """float64 reference: ids [B, L] (padded), lengths = tokens per row; keys beyond key_lengths masked."""
    import torch
    W = {k: v.double() for k, v in W.items()}
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d = H // nh
    eps = cfg["layer_norm_eps"]
    B, L = ids.shape
    key_lengths = lengths if key_lengths is None else key_lengths
    keymask = torch.zeros(B, L, dtype=torch.bool)
    for b in range(B):
        keymask[b, key_lengths[b]:] = True
    g = lambda n: W[prefix + n]
    def ln(x, name):
        return torch.nn.functional.layer_norm(x, (H,), g(name + ".weight"), g(name + ".bias"), eps)
    x = g("embeddings.word_embeddings.weight")[ids] + g("embeddings.position_embeddings.weight")[:L][None] \
        + g("embeddings.token_type_embeddings.weight")[0][None, None]
    x = ln(x, "embeddings.LayerNorm")
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        def lin(t, n):
            return t @ g(p + n + ".weight").T + g(p + n + ".bias")
        q = lin(x, "attention.self.query").view(B, L, nh, d).transpose(1, 2)
        k = lin(x, "attention.self.key").view(B, L, nh, d).transpose(1, 2)
        v = lin(x, "attention.self.value").view(B, L, nh, d).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        s = s.masked_fill(keymask[:, None, None, :], float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, L, H)
        x = ln(lin(o, "attention.output.dense") + x, p + "attention.output.LayerNorm")
        f = torch.nn.functional.gelu(lin(x, "intermediate.dense"))
        x = ln(lin(f, "output.dense") + x, p + "output.LayerNorm")
    return x


def pad(batch, pad_id=0):
    import torch
    L = max(len(r) for r in batch)
    ids = torch.full((len(batch), L), pad_id, dtype=torch.long)
    for i, r in enumerate(batch):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return ids, [len(r) for r in batch]


def write_folder(out, cfg, W, vocab, dtype="F32", st_pooling=None, normalize=True, prompts=None,
                 extra_files=None):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), W, dtype)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab), f, ensure_ascii=False)
    if st_pooling:
        mods = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if normalize:
            mods.append({"idx": 2, "name": "2", "path": "2_Normalize",
                         "type": "sentence_transformers.models.Normalize"})
        with open(os.path.join(out, "modules.json"), "w") as f:
            json.dump(mods, f, indent=2)
        os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
        with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
            json.dump({"word_embedding_dimension": cfg["hidden_size"],
                       "pooling_mode_cls_token": st_pooling == "cls",
                       "pooling_mode_mean_tokens": st_pooling == "mean",
                       "pooling_mode_max_tokens": False,
                       "pooling_mode_mean_sqrt_len_tokens": False}, f, indent=2)
    if prompts:
        with open(os.path.join(out, "config_sentence_transformers.json"), "w") as f:
            json.dump({"prompts": prompts, "default_prompt_name": None}, f, indent=2)
    for name, content in (extra_files or {}).items():
        with open(os.path.join(out, name), "w") as f:
            f.write(content)


def rounded(W, dtype):
    import torch
    dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype]
    return {k: v.to(dt).to(torch.float32) for k, v in W.items()}


FIXTURE_TEXTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Dense retrieval, sparse retrieval & late interaction!",
    "naïve café résumé",
    "中文 search 测试",
    "a",
    "",
    "science claim: protein cell gene cancer study data result effect risk patient " * 3,
]

HARD_STRINGS = [
    "", " ", "\t\n\r ", "hello", "Hello, World!", "HÉLLO Wörld", "naïve café résumé", "Ångström İstanbul",
    "Straße ΣΊΣΥΦΟΣ", "中文字符测试", "日本語のテキスト", "한국어 텍스트", "emoji 😀🎉 test 👍🏽",
    "!!!???...,,,", "a--b__c..d", "x\u0000y\ufffdz\u0007w", "zero\u200bwidth", "ＡＢＣ fullwidth",
    "don't stop-believing (1984)", "supercalifragilisticexpialidocious" * 4, "a" * 100, "b" * 101,
    "e\u0301 combining", "tab\there\u00a0nbsp\u3000ideo", "résumé" * 30,
    "the retrieval models embedding relevant documents", "unrepresentable preprocessing",
    "\u2028line\u2029para", "ﬁligature №5 ½", "$100 & 50% @home #tag",
]


def make_fixtures(out):
    import torch
    gen = torch.Generator().manual_seed(1234)
    vocab = tiny_vocab()
    tok = RefWordPiece(vocab)
    V = len(vocab)
    max_length = 32
    os.makedirs(out, exist_ok=True)
    refs = {"texts": FIXTURE_TEXTS, "max_length": max_length, "tolerance": 1e-4}
    tokens = [tok.encode(t, max_length) for t in FIXTURE_TEXTS]
    refs["token_ids"] = tokens
    ids, lens = pad(tokens)

    cfg = bert_config(V, 32, 2, 4, 64, 64)
    W = random_bert(cfg, gen)
    refs["dense"] = {}

    def pooled(W32, cfg, prefix, mode, normalize, toks):
        ids_, lens_ = pad(toks)
        x = bert_forward(W32, cfg, ids_, lens_, prefix)
        outs = []
        for b, n in enumerate(lens_):
            v = x[b, 0] if mode == "cls" else x[b, :n].mean(0)
            if normalize:
                v = v / v.norm()
            outs.append([float(z) for z in v])
        return outs

    for dtype, name in [("F32", "bert-mean"), ("F16", "bert-mean-f16"), ("BF16", "bert-mean-bf16")]:
        write_folder(os.path.join(out, name), cfg, W, vocab, dtype, st_pooling="mean")
        refs["dense"][name] = pooled(rounded(W, dtype), cfg, "", "mean", True, tokens)

    # bge-like: `bert.` prefix, CLS pooling, normalised, query prompt.
    cfg_cls = bert_config(V, 32, 2, 4, 64, 64)
    W_cls = random_bert(cfg_cls, gen, prefix="bert.")
    prompts = {"query": "search query: ", "document": ""}
    write_folder(os.path.join(out, "bert-cls"), cfg_cls, W_cls, vocab, "F32", st_pooling="cls",
                 prompts=prompts)
    refs["dense"]["bert-cls"] = pooled(W_cls, cfg_cls, "bert.", "cls", True, tokens)
    qtok = [tok.encode(prompts["query"] + t, max_length) for t in FIXTURE_TEXTS]
    refs["query_dense"] = {"bert-cls": pooled(W_cls, cfg_cls, "bert.", "cls", True, qtok)}

    # SPLADE: BertForMaskedLM, decoder tied to the word embeddings (absent from the file, as HF saves it).
    cfg_sp = bert_config(V, 32, 2, 4, 64, 64, arch="BertForMaskedLM")
    W_sp = random_bert(cfg_sp, gen, prefix="bert.")
    H = 32
    W_sp["cls.predictions.transform.dense.weight"] = torch.randn(H, H, generator=gen) * 0.15
    W_sp["cls.predictions.transform.dense.bias"] = torch.randn(H, generator=gen) * 0.05
    W_sp["cls.predictions.transform.LayerNorm.weight"] = 1 + torch.randn(H, generator=gen) * 0.1
    W_sp["cls.predictions.transform.LayerNorm.bias"] = torch.randn(H, generator=gen) * 0.05
    W_sp["cls.predictions.bias"] = torch.randn(V, generator=gen) * 0.5
    write_folder(os.path.join(out, "splade"), cfg_sp, W_sp, vocab, "F32")
    x = bert_forward(W_sp, cfg_sp, ids, lens, "bert.")
    Wd = {k: v.double() for k, v in W_sp.items()}
    t = x @ Wd["cls.predictions.transform.dense.weight"].T + Wd["cls.predictions.transform.dense.bias"]
    t = torch.nn.functional.layer_norm(torch.nn.functional.gelu(t), (H,),
                                       Wd["cls.predictions.transform.LayerNorm.weight"],
                                       Wd["cls.predictions.transform.LayerNorm.bias"], 1e-12)
    logits = t @ Wd["bert.embeddings.word_embeddings.weight"].T + Wd["cls.predictions.bias"]
    act = torch.log1p(torch.relu(logits))
    sparse = []
    for b, n in enumerate(lens):
        v = act[b, :n].max(0).values
        nz = [(i, float(v[i])) for i in range(V) if v[i] > 0]
        sparse.append({"ids": [i for i, _ in nz], "weights": [w for _, w in nz]})
    refs["splade"] = sparse

    # ColBERT: bert. prefix + linear head (no bias); [unused0]/[unused1] markers; query [MASK] padding.
    cfg_cb = bert_config(V, 32, 2, 4, 64, 64, arch="HF_ColBERT")
    W_cb = random_bert(cfg_cb, gen, prefix="bert.")
    cb_dim = 16
    W_cb["linear.weight"] = torch.randn(cb_dim, H, generator=gen) * 0.2
    qlen = 12
    meta = {"query_maxlen": qlen, "doc_maxlen": max_length, "attend_to_mask_tokens": False,
            "query_token_id": "[unused0]", "doc_token_id": "[unused1]", "dim": cb_dim}
    write_folder(os.path.join(out, "colbert"), cfg_cb, W_cb, vocab, "F32",
                 extra_files={"artifact.metadata": json.dumps(meta, indent=2)})
    Wl = W_cb["linear.weight"].double()
    punct = set(vocab[c] for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" if c in vocab)

    def colbert(texts, query):
        toks, keylens = [], []
        for t in texts:
            body = tok.encode(t, 512, special=False)
            if query:
                body = body[:qlen - 3]
                r = [vocab["[CLS]"], vocab["[unused0]"]] + body + [vocab["[SEP]"]]
                keylens.append(len(r))
                r = r + [vocab["[MASK]"]] * (qlen - len(r))
            else:
                body = body[:max_length - 3]
                r = [vocab["[CLS]"], vocab["[unused1]"]] + body + [vocab["[SEP]"]]
                keylens.append(len(r))
            toks.append(r)
        ids_, lens_ = pad(toks)
        x = bert_forward(W_cb, cfg_cb, ids_, lens_, "bert.", key_lengths=keylens)
        y = x @ Wl.T
        outs = []
        for b, r in enumerate(toks):
            rows = []
            for j, tid in enumerate(r):
                if not query and tid in punct:
                    continue
                v = y[b, j] / y[b, j].norm()
                rows.append([float(z) for z in v])
            outs.append(rows)
        return outs
    refs["colbert"] = {"documents": colbert(FIXTURE_TEXTS, False), "queries": colbert(FIXTURE_TEXTS, True)}

    with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, ensure_ascii=False)
    # ONNX exports of every model (the ONNX Runtime reference of tests/encode/peer_reference_test.cpp).
    for name in ["bert-mean", "bert-mean-f16", "bert-mean-bf16", "bert-cls", "splade", "colbert"]:
        export_onnx(os.path.join(out, name), os.path.join(out, name, "model.onnx"))

    # WordPiece battery: the tiny vocab (always) and the bge vocab of the shared model2vec fixture.
    cases = {"tiny": {"tokenizer": "bert-mean/tokenizer.json", "cases": []}}
    for s in HARD_STRINGS:
        cases["tiny"]["cases"].append({"text": s, "max_length": 512, "ids": tok.encode(s, 512)})
    for s in HARD_STRINGS[:8]:
        cases["tiny"]["cases"].append({"text": s + " " + s, "max_length": 6, "ids": tok.encode(s + " " + s, 6)})
    shared = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                          "model2vec-test-fixtures", "test-model-float32", "tokenizer.json")
    if os.path.exists(shared):
        tj = json.load(open(shared, encoding="utf-8"))
        sp = tj["post_processor"]["special_tokens"]
        bge = RefWordPiece(tj["model"]["vocab"], cls_id=sp["[CLS]"]["ids"][0], sep_id=sp["[SEP]"]["ids"][0])
        cases["bge"] = {"tokenizer": "model2vec-test-fixtures/test-model-float32/tokenizer.json",
                        "cases": [{"text": s, "max_length": 512, "ids": bge.encode(s, 512)} for s in HARD_STRINGS]
                        + [{"text": s * 3, "max_length": 10, "ids": bge.encode(s * 3, 10)} for s in HARD_STRINGS[4:10]]}
    with open(os.path.join(out, "wordpiece_cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)


# --------------------------------------------------------------------------------------------
# ONNX export (the ONNX Runtime peer and reference): a Hugging Face BERT folder as a torch module,
# written the way transformers' BertModel computes (separate Q/K/V projections, an additive
# attention mask, erf GELU, LayerNorm), so ONNX Runtime's graph optimiser sees the usual pattern.
def read_safetensors(path):
    import numpy as np
    import torch
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        raw = data[8 + n + b: 8 + n + en]
        if e["dtype"] == "F32":
            a = np.frombuffer(raw, dtype=np.float32).copy()
        elif e["dtype"] == "F16":
            a = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
        elif e["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32).copy()
        else:
            continue
        out[name] = torch.from_numpy(a).reshape(e["shape"])
    return out


def folder_heads(model_dir):
    """(pooling, normalize) from a sentence-transformers folder; mean + no normalisation otherwise."""
    pooling, normalize = "mean", False
    mods = os.path.join(model_dir, "modules.json")
    if os.path.exists(mods):
        for m in json.load(open(mods)):
            if m["type"].endswith("Normalize"):
                normalize = True
            if m["type"].endswith("Pooling"):
                pc = json.load(open(os.path.join(model_dir, m.get("path") or "1_Pooling", "config.json")))
                pooling = "cls" if pc.get("pooling_mode_cls_token") else "mean"
    return pooling, normalize


def onnx_module(model_dir):
    """A torch.nn.Module: (input_ids [B, L] int64, attention_mask [B, L] int64) -> outputs by head:
    dense: `embedding` [B, H] (the folder's pooling and normalisation), plus `last_hidden_state`;
    SPLADE (cls.predictions.*): `sparse` [B, V] = max over unmasked rows of log(1 + relu(logits));
    ColBERT (linear.weight): `colbert` [B, L, D], each row L2-normalised."""
    import torch
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    W = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    p = "bert." if "bert.embeddings.word_embeddings.weight" in W else ""
    pooling, normalize = folder_heads(model_dir)
    H, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-12)
    d = H // nh
    F = torch.nn.functional

    class Bert(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v, requires_grad=False)
                                             for k, v in W.items()})

        def g(self, name):
            return self.w[name.replace(".", "__")]

        def ln(self, x, name):
            return F.layer_norm(x, (H,), self.g(name + ".weight"), self.g(name + ".bias"), eps)

        def encode(self, ids, mask):
            B, L = ids.shape
            pos = torch.arange(L, device=ids.device)
            x = F.embedding(ids, self.g(p + "embeddings.word_embeddings.weight")) \
                + F.embedding(pos, self.g(p + "embeddings.position_embeddings.weight"))[None] \
                + self.g(p + "embeddings.token_type_embeddings.weight")[0]
            x = self.ln(x, p + "embeddings.LayerNorm")
            add = (1.0 - mask[:, None, None, :].to(x.dtype)) * -10000.0
            for i in range(cfg["num_hidden_layers"]):
                q = p + f"encoder.layer.{i}."
                lin = lambda t, n: F.linear(t, self.g(q + n + ".weight"), self.g(q + n + ".bias"))
                heads = lambda t: t.view(B, L, nh, d).permute(0, 2, 1, 3)
                qq = heads(lin(x, "attention.self.query"))
                kk = heads(lin(x, "attention.self.key"))
                vv = heads(lin(x, "attention.self.value"))
                s = torch.matmul(qq, kk.transpose(-1, -2)) / math.sqrt(d) + add
                o = torch.matmul(torch.softmax(s, -1), vv).permute(0, 2, 1, 3).reshape(B, L, H)
                x = self.ln(lin(o, "attention.output.dense") + x, q + "attention.output.LayerNorm")
                f = F.gelu(lin(x, "intermediate.dense"))
                x = self.ln(lin(f, "output.dense") + x, q + "output.LayerNorm")
            return x

    class Dense(Bert):
        def forward(self, ids, mask):
            x = self.encode(ids, mask)
            if pooling == "cls":
                v = x[:, 0]
            else:
                m = mask.to(x.dtype)[..., None]
                v = (x * m).sum(1) / m.sum(1)
            if normalize:
                v = v / v.norm(dim=-1, keepdim=True)
            return v, x

    class Splade(Bert):
        def forward(self, ids, mask):
            x = self.encode(ids, mask)
            h = "cls.predictions."
            t = self.ln(F.gelu(F.linear(x, self.g(h + "transform.dense.weight"), self.g(h + "transform.dense.bias"))),
                        h + "transform.LayerNorm")
            dec = self.g(h + "decoder.weight") if (h + "decoder.weight") in W else \
                self.g(p + "embeddings.word_embeddings.weight")
            bias = self.g(h + "decoder.bias") if (h + "decoder.bias") in W else self.g(h + "bias")
            act = torch.log1p(torch.relu(F.linear(t, dec, bias))) * mask.to(x.dtype)[..., None]
            return act.max(1).values

    class Colbert(Bert):
        def forward(self, ids, mask, keep):
            # `keep` [B, L]: 1 for rows whose embedding is returned (ColBERT queries attend only to the
            # unpadded tokens but return [MASK] rows too); `mask` is the attention mask.
            x = self.encode(ids, mask)
            y = F.linear(x, self.g("linear.weight"))
            return y / y.norm(dim=-1, keepdim=True) * keep.to(x.dtype)[..., None]

    if "cls.predictions.transform.dense.weight" in W:
        return Splade().eval(), ["sparse"], False
    if "linear.weight" in W:
        return Colbert().eval(), ["colbert"], True
    return Dense().eval(), ["embedding", "last_hidden_state"], False


def export_onnx(model_dir, out_path):
    import torch
    module, outputs, keep = onnx_module(model_dir)
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.long)
    args = (ids, mask, mask) if keep else (ids, mask)
    names = ["input_ids", "attention_mask"] + (["keep"] if keep else [])
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    for o in outputs:
        axes[o] = {0: "batch"} if o in ("embedding", "sparse") else {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(module, args, out_path, input_names=names, output_names=outputs,
                          dynamic_axes=axes, opset_version=14, do_constant_folding=True)


# --------------------------------------------------------------------------------------------
# Decoder-only embedders (Qwen2 / Mistral layouts) and XLM-RoBERTa: tiny random models in Hugging
# Face's layout, with float64 references written from the transformers modelling code's equations
# (Qwen2/Mistral: RMSNorm, rotate_half RoPE, grouped-query causal attention, SwiGLU; XLM-R: BERT with
# positions from pad_token_id + 1).
def random_decoder(cfg, gen, bias, prefix):
    import torch
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    d = cfg.get("head_dim") or H // cfg["num_attention_heads"]
    qn, kvn = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d
    rn = lambda *s, sd=0.15: torch.randn(*s, generator=gen) * sd
    W = {prefix + "embed_tokens.weight": rn(V, H, sd=0.5), prefix + "norm.weight": 1 + rn(H, sd=0.1)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"{prefix}layers.{i}."
        W[p + "input_layernorm.weight"] = 1 + rn(H, sd=0.1)
        W[p + "post_attention_layernorm.weight"] = 1 + rn(H, sd=0.1)
        if cfg["model_type"] == "qwen3":
            W[p + "self_attn.q_norm.weight"] = 1 + rn(d, sd=0.3)
            W[p + "self_attn.k_norm.weight"] = 1 + rn(d, sd=0.3)
        for n, rows in [("q", qn), ("k", kvn), ("v", kvn)]:
            W[p + f"self_attn.{n}_proj.weight"] = rn(rows, H)
            if bias:
                W[p + f"self_attn.{n}_proj.bias"] = rn(rows, sd=0.05)
        W[p + "self_attn.o_proj.weight"] = rn(H, qn)
        W[p + "mlp.gate_proj.weight"] = rn(I, H)
        W[p + "mlp.up_proj.weight"] = rn(I, H)
        W[p + "mlp.down_proj.weight"] = rn(H, I)
    return W


def rope_inv_freq(cfg, L):
    """RoPE inverse frequencies [d/2] and attention factor for a sequence of L tokens, from the
    definitions of transformers' rope_scaling types (default, linear, dynamic, llama3, yarn)."""
    import torch
    d = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    theta, max_pos = cfg["rope_theta"], cfg["max_position_embeddings"]
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type") or rs.get("type") or "default"
    base = theta
    if kind == "dynamic":
        seq = max(L, max_pos)
        base = theta * ((rs["factor"] * seq / max_pos) - (rs["factor"] - 1)) ** (d / (d - 2))
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    attention = 1.0
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        smooth = (old / wavelen - low) / (high - low)
        out = torch.where(wavelen > old / low, inv / factor, inv)
        medium = (wavelen >= old / high) & (wavelen <= old / low)
        inv = torch.where(medium, (1 - smooth) * inv / factor + smooth * inv, out)
    elif kind == "yarn":
        factor = rs["factor"]
        old = rs.get("original_max_position_embeddings") or max_pos
        ms = lambda scale, m=1.0: 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0
        if rs.get("attention_factor") is not None:
            attention = rs["attention_factor"]
        elif rs.get("mscale") and rs.get("mscale_all_dim"):
            attention = ms(factor, rs["mscale"]) / ms(factor, rs["mscale_all_dim"])
        else:
            attention = ms(factor)
        corr = lambda rot: d * math.log(old / (rot * 2 * math.pi)) / (2 * math.log(theta))
        low, high = corr(rs.get("beta_fast") or 32), corr(rs.get("beta_slow") or 1)
        if rs.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, d - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
        extrapolation = 1 - ramp
        inv = inv / factor * (1 - extrapolation) + inv * extrapolation
    return inv, attention


def decoder_forward(W, cfg, ids, prefix):
    """float64 reference for one sequence (list of ids): final normed hidden states [L, H]."""
    import torch
    W = {k: v.double() for k, v in W.items()}
    H, nh, kvh = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or H // nh
    eps = cfg["rms_norm_eps"]
    L = len(ids)
    g = lambda n: W[prefix + n]

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rotate_half(x):
        return torch.cat([-x[..., d // 2:], x[..., :d // 2]], -1)

    inv, attention = rope_inv_freq(cfg, L)
    freqs = torch.arange(L, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat([freqs, freqs], -1)
    cos, sin = emb.cos() * attention, emb.sin() * attention
    qk_norm = cfg["model_type"] == "qwen3"  # Qwen3: RMSNorm of each head of q and k before RoPE
    x = g("embed_tokens.weight")[torch.tensor(ids)]
    causal = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"layers.{i}."
        h = rms(x, g(p + "input_layernorm.weight"))
        def proj(n):
            y = h @ g(p + f"self_attn.{n}_proj.weight").T
            b = W.get(prefix + p + f"self_attn.{n}_proj.bias")
            return y if b is None else y + b
        q = proj("q").view(L, nh, d)
        k = proj("k").view(L, kvh, d)
        if qk_norm:
            q = rms(q, g(p + "self_attn.q_norm.weight"))
            k = rms(k, g(p + "self_attn.k_norm.weight"))
        q, k = q.transpose(0, 1), k.transpose(0, 1)
        v = proj("v").view(L, kvh, d).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // kvh, 0)
        v = v.repeat_interleave(nh // kvh, 0)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        s = s.masked_fill(causal, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(L, nh * d)
        x = x + o @ g(p + "self_attn.o_proj.weight").T
        h = rms(x, g(p + "post_attention_layernorm.weight"))
        f = torch.nn.functional.silu(h @ g(p + "mlp.gate_proj.weight").T) * (h @ g(p + "mlp.up_proj.weight").T)
        x = x + f @ g(p + "mlp.down_proj.weight").T
    return rms(x, g("norm.weight"))


def xlmr_forward(W, cfg, ids, prefix):
    """float64 reference for one sequence: BERT layers, positions pad_token_id + 1 + j."""
    import torch
    pad = cfg["pad_token_id"]
    P = {k: v for k, v in W.items()}
    # Shift the position table so bert_forward's positions 0..L-1 read rows pad+1..pad+L.
    P[prefix + "embeddings.position_embeddings.weight"] = W[prefix + "embeddings.position_embeddings.weight"][pad + 1:]
    ids_t = torch.tensor([ids], dtype=torch.long)
    return bert_forward(P, cfg, ids_t, [len(ids)], prefix)[0]


def write_st_folder(out, cfg, W, vocab, pooling, normalize, prompts=None):
    write_folder(out, cfg, W, vocab, "F32", st_pooling="mean" if pooling == "mean" else "cls",
                 normalize=normalize, prompts=prompts)
    if pooling == "lasttoken":
        with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
            json.dump({"word_embedding_dimension": cfg["hidden_size"], "pooling_mode_cls_token": False,
                       "pooling_mode_mean_tokens": False, "pooling_mode_lasttoken": True}, f, indent=2)


def make_decoder_fixtures(out):
    import torch
    gen = torch.Generator().manual_seed(4321)
    vocab = tiny_vocab()
    tok = RefWordPiece(vocab)
    V = len(vocab)
    max_length = 32
    refs = {"texts": FIXTURE_TEXTS, "max_length": max_length}
    prompts = {"query": "Instruct: find the relevant passage\nQuery: ", "document": ""}
    models = {}
    # Qwen2 layout: q/k/v biases, no `model.` prefix (Qwen2Model as sentence-transformers saves it),
    # GQA 4 query heads over 2 key/value heads, last-token pooling, normalised, an instruction prompt.
    qwen = {"architectures": ["Qwen2Model"], "model_type": "qwen2", "vocab_size": V, "hidden_size": 32,
            "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu",
            "tie_word_embeddings": False, "torch_dtype": "float32"}
    models["qwen2-tiny"] = (qwen, random_decoder(qwen, gen, True, ""), "", "lasttoken", True, prompts)
    # Mistral layout: no biases, `model.` prefix (MistralForCausalLM), GQA 4:1, head_dim 16 != hidden/heads,
    # mean pooling, not normalised.
    mistral = {"architectures": ["MistralModel"], "model_type": "mistral", "vocab_size": V, "hidden_size": 32,
               "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
               "head_dim": 16, "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 1e6,
               "hidden_act": "silu", "torch_dtype": "float32"}
    models["mistral-tiny"] = (mistral, random_decoder(mistral, gen, False, "model."), "model.", "mean", False, None)
    # Qwen3 layout (a generator of its own, so the models above stay as they were): q_norm / k_norm,
    # no biases, head_dim 16 != hidden/heads, GQA 2:1, YaRN (factor 4 = max_position_embeddings /
    # original_max_position_embeddings, so transformers 4.51-4.55 and >= 4.56 agree), last-token
    # pooling, normalised, an instruction prompt.
    gen3 = torch.Generator().manual_seed(8765)
    qwen3 = {"architectures": ["Qwen3Model"], "model_type": "qwen3", "vocab_size": V, "hidden_size": 32,
             "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "head_dim": 16, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
             "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
             "hidden_act": "silu", "attention_bias": False, "use_sliding_window": False,
             "tie_word_embeddings": True, "torch_dtype": "float32"}
    models["qwen3-tiny"] = (qwen3, random_decoder(qwen3, gen3, False, ""), "", "lasttoken", True, prompts)
    refs["decoders"] = {}
    for name, (cfg, W, prefix, pooling, normalize, pr) in models.items():
        write_st_folder(os.path.join(out, name), cfg, W, vocab, pooling, normalize, pr)
        entry = {"documents": [], "queries": [], "token_ids": []}
        for role in ["documents", "queries"]:
            for t in FIXTURE_TEXTS:
                text = (pr["query"] + t) if (pr and role == "queries") else t
                ids = tok.encode(text, max_length)
                x = decoder_forward(W, cfg, ids, prefix)
                v = x[-1] if pooling == "lasttoken" else x.mean(0)
                if normalize:
                    v = v / v.norm()
                entry[role].append([float(z) for z in v])
                if role == "documents":
                    entry["token_ids"].append(ids)
        refs["decoders"][name] = entry
    # RoPE scaling types on the Mistral weights: the test writes each rope_scaling (and
    # max_position_embeddings) into a copy of mistral-tiny's config.json. With dynamic NTK the longer
    # texts (up to 32 tokens) pass max_position_embeddings 16 and get frequencies of their own.
    variants = {
        "linear": ({"type": "linear", "factor": 2.0}, None),
        "dynamic": ({"rope_type": "dynamic", "factor": 3.0}, 16),
        "llama3": ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 64}, None),
        "yarn": ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16, "beta_fast": 8,
                  "mscale": 0.707, "mscale_all_dim": 1.0, "truncate": False}, None),
    }
    mcfg, mW, mprefix = models["mistral-tiny"][0], models["mistral-tiny"][1], models["mistral-tiny"][2]
    refs["rope_scaling"] = {}
    for name, (rs, max_pos) in variants.items():
        cfg = dict(mcfg, rope_scaling=rs)
        if max_pos:
            cfg["max_position_embeddings"] = max_pos
        docs = []
        for t in FIXTURE_TEXTS:
            ids = tok.encode(t, max_length)
            docs.append([float(z) for z in decoder_forward(mW, cfg, ids, mprefix).mean(0)])
        refs["rope_scaling"][name] = {"rope_scaling": json.dumps(rs), "max_position_embeddings": max_pos or 64,
                                      "documents": docs}
    # XLM-RoBERTa layout: no prefix (XLMRobertaModel), type_vocab_size 1, pad_token_id 1, positions from 2,
    # CLS pooling, normalised (bge-m3's dense head).
    xcfg = bert_config(V, 32, 2, 4, 64, 66)
    xcfg.update({"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "type_vocab_size": 1,
                 "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "layer_norm_eps": 1e-5})
    Wx = random_bert(dict(xcfg, type_vocab_size=1), gen)
    Wx["embeddings.token_type_embeddings.weight"] = Wx["embeddings.token_type_embeddings.weight"][:1].clone()
    write_st_folder(os.path.join(out, "xlmr-tiny"), xcfg, Wx, vocab, "cls", True)
    dense = []
    for t in FIXTURE_TEXTS:
        ids = tok.encode(t, max_length)
        v = xlmr_forward(Wx, xcfg, ids, "")[0]
        dense.append([float(z) for z in v / v.norm()])
    refs["xlmr-tiny"] = dense
    with open(os.path.join(out, "decoder_reference.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, ensure_ascii=False)


def make_bench_model(out, layers=6, hidden=384, heads=12, inter=1536, vocab_size=30522, seed=7):
    """MiniLM-L6-shaped random model (mean pooling + normalisation) with a synthetic WordPiece vocab."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    vocab = tiny_vocab()
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    while len(vocab) < vocab_size:
        w = "".join(rng.choice(letters) for _ in range(rng.randint(3, 9)))
        if rng.random() < 0.3:
            w = "##" + w
        if w not in vocab:
            vocab[w] = len(vocab)
    cfg = bert_config(len(vocab), hidden, layers, heads, inter, 512)
    W = random_bert(cfg, gen, std=0.05)
    write_folder(out, cfg, W, vocab, "F32", st_pooling="mean")
    export_onnx(out, os.path.join(out, "model.onnx"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fixtures").add_argument("out")
    sub.add_parser("unicode").add_argument("out")
    bm = sub.add_parser("bench-model")
    bm.add_argument("out")
    bm.add_argument("--layers", type=int, default=6)
    bm.add_argument("--hidden", type=int, default=384)
    bm.add_argument("--heads", type=int, default=12)
    bm.add_argument("--intermediate", type=int, default=1536)
    sub.add_parser("decoders").add_argument("out")
    ox = sub.add_parser("onnx")
    ox.add_argument("model_dir")
    ox.add_argument("out", nargs="?", help="default: MODEL_DIR/model.onnx")
    a = ap.parse_args()
    if a.cmd == "fixtures":
        make_fixtures(a.out)
    elif a.cmd == "unicode":
        write_unicode_tables(a.out)
    elif a.cmd == "decoders":
        make_decoder_fixtures(a.out)
    elif a.cmd == "onnx":
        export_onnx(a.model_dir, a.out or os.path.join(a.model_dir, "model.onnx"))
    else:
        make_bench_model(a.out, a.layers, a.hidden, a.heads, a.intermediate)


if __name__ == "__main__":
    main()
