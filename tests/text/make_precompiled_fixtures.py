#!/usr/bin/python3
"""Makes the Unigram tokenizer.json fixtures with a `Precompiled` normalizer (SentencePiece's precompiled
charsmap), as Hugging Face converts XLM-RoBERTa and T5, and the strings that exercise the charsmap:

  tests/text/make_precompiled_fixtures.py            (run from the source root)

Needs Debian's python3-sentencepiece (not in scripts/install-deps: only this generator uses it; the
suite compares the committed files against the npm `tokenizers` library). SentencePiece itself builds
every charsmap (its trainer with normalization_rule_name / normalization_rule_tsv), so the committed
files are real charsmaps, not our reading of the format:

  - unigram-precompiled.json: XLM-R shape (Sequence[Precompiled, Replace(" {2,}", " ")], Metaspace,
    <s> ... </s>) with SentencePiece's whole nmt_nfkc charsmap;
  - unigram-precompiled-t5.json: T5 shape (Precompiled alone, WhitespaceSplit + Metaspace, ... </s>)
    with a smaller charsmap built from a rule table: the nmt_nfkc rules (keys of up to 3 characters)
    whose characters all occur in the test texts, plus rules with multi-character keys that start with
    a mapped character (so a grapheme cluster's first character decides its replacement, as the library
    does);
  - grapheme_strings.jsonl: texts built around the charsmap keys and grapheme cluster rules (combining
    marks after mapped characters, Prepend characters before spaces, emoji ZWJ sequences, flags,
    Hangul jamo, CR LF, NUL, zero-width spaces next to spaces, space runs).

The vocabulary is tests/data/text/unigram.json's (trained on Cranfield by make_tokenizer_fixtures.js).
"""
import base64
import json
import os
import struct
import sys
import tempfile

import sentencepiece as spm

OUT = "tests/data/text"


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def proto_fields(buf):
    """(field number, wire type, value) of a protobuf message; length-delimited values as bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield field, wire, v


def charsmap_of(model_bytes):
    """ModelProto.normalizer_spec (3) .precompiled_charsmap (2)."""
    for f, w, v in proto_fields(model_bytes):
        if f == 3 and w == 2:
            for g, x, cm in proto_fields(v):
                if g == 2 and x == 2:
                    return bytes(cm)
    raise ValueError("no precompiled_charsmap")


def train(text_file, **normalization):
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "m")
        spm.SentencePieceTrainer.train(input=text_file, model_prefix=prefix, model_type="char",
                                       vocab_size=40, hard_vocab_limit=False, minloglevel=2, **normalization)
        with open(prefix + ".model", "rb") as f:
            return charsmap_of(f.read())


def decompile(cm):
    """{key bytes: replacement bytes} of a charsmap (darts-clone double array, then NUL-terminated strings)."""
    (size,) = struct.unpack_from("<I", cm, 0)
    units = struct.unpack_from(f"<{size // 4}I", cm, 4)
    blob = cm[4 + size:]
    offset = lambda u: (u >> 10) << ((u & (1 << 9)) >> 6)
    out = {}
    stack = [(offset(units[0]), b"")]
    while stack:
        base, key = stack.pop()
        for c in range(1, 256):
            q = base ^ c
            if q >= len(units) or (units[q] & (0x800000FF)) != c:
                continue
            child = q ^ offset(units[q])
            if (units[q] >> 8) & 1:
                v = units[child] & 0x7FFFFFFF
                out[key + bytes([c])] = blob[v:blob.index(b"\0", v)]
            stack.append((child, key + bytes([c])))
    return out


def test_texts():
    data = os.environ.get("QUIVER_DATA_DIR", os.path.join("..", "shared", "data"))
    texts = [json.loads(l)["text"] for l in open(os.path.join(OUT, "hard_strings.jsonl"), encoding="utf-8") if l.strip()]
    for name in ["corpus.jsonl", "queries.jsonl"]:
        for l in open(os.path.join(data, "scifact", name), encoding="utf-8"):
            d = json.loads(l)
            texts.append(d.get("title", "") + " " + d["text"])
    for name in ["cran.all.1400", "cran.qry"]:
        texts.append(open(os.path.join(data, "cranfield", name), encoding="utf-8", errors="replace").read())
    return texts


def hexes(s):
    return " ".join(f"{ord(c):X}" for c in s)


def main():
    base = json.load(open(os.path.join(OUT, "unigram.json"), encoding="utf-8"))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("the quick brown fox jumps over the lazy dog\n" * 50)
        corpus = f.name
    full = train(corpus, normalization_rule_name="nmt_nfkc")
    rules = decompile(full)
    print(f"nmt_nfkc: {len(full)} bytes, {len(rules)} keys, "
          f"{sum(1 for k in rules if len(k.decode()) > 1)} with several characters")

    # The T5 fixture's rule table.
    seen = set("".join(test_texts()))
    keep = {}
    for k, v in rules.items():
        ks = k.decode()
        if all(c in seen for c in ks) and (len(ks) == 1 or not ks.isascii()) and len(ks) <= 3:
            keep[ks] = v.decode()
    # Multi-character keys whose first character is itself a key (the shortest key wins on a cluster):
    # a ligature and a fullwidth letter followed by combining marks, and a fraction before U+20DD.
    extra = {"\ufb01\u0301": "fi-acute", "\uff21\u0308": "A-diaeresis", "\u00bd\u20dd": "half-circled",
             "\u2460\u0300": "one-grave"}
    for k, v in extra.items():
        keep[k] = v
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8") as f:
        for k, v in sorted(keep.items()):
            f.write(f"{hexes(k)}\t{hexes(v)}\n")
        tsv = f.name
    small = train(corpus, normalization_rule_tsv=tsv)
    got = {k.decode(): v.decode() for k, v in decompile(small).items()}
    assert got == keep, "SentencePiece dropped or changed rules of the table"
    print(f"t5 subset: {len(small)} bytes, {len(got)} keys")
    os.unlink(tsv)
    os.unlink(corpus)

    def write(name, normalizer, pre, post):
        j = dict(base)
        j["normalizer"] = normalizer
        j["pre_tokenizer"] = pre
        j["post_processor"] = post
        path = os.path.join(OUT, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
        print(f"{path}: {os.path.getsize(path)} bytes")

    b64 = lambda b: base64.b64encode(b).decode("ascii")
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True, "prepend_scheme": "always",
                 "split": True}
    n = len(base["model"]["vocab"])
    specials = {t["content"]: t["id"] for t in base["added_tokens"]}
    roberta = {"type": "RobertaProcessing", "sep": ["</s>", specials["</s>"]], "cls": ["<s>", specials["<s>"]],
               "trim_offsets": True, "add_prefix_space": True}
    write("unigram-precompiled.json",
          {"type": "Sequence", "normalizers": [{"type": "Precompiled", "precompiled_charsmap": b64(full)},
                                               {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
          metaspace, roberta)
    t5_post = {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}},
                                                        {"SpecialToken": {"id": "</s>", "type_id": 0}}],
               "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
               "special_tokens": {"</s>": {"id": "</s>", "ids": [specials["</s>"]], "tokens": ["</s>"]}}}
    write("unigram-precompiled-t5.json", {"type": "Precompiled", "precompiled_charsmap": b64(small)},
          {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, metaspace]}, t5_post)
    assert n > 0

    # Strings around the keys and the cluster rules.
    marks = ["\u0301", "\u0308\u0323", "\u20dd", "\u200d", "\U0001f3fd", "\ufe0f"]
    strings = []
    keys = sorted(k for k in got if len(k) == 1)
    for i, k in enumerate(keys[::max(1, len(keys) // 120)]):
        strings.append(f"x{k}{marks[i % len(marks)]} {k}y {k}{k} {k} {k}")
    for k in extra:
        strings.append(f"a {k} b{k}c {k}{k}")
    strings += [
        "\u0600 x \u0600\u0600 y\u06dd z",             # Prepend before a space and letters
        "\u0915\u094d\u0937\u0301 \u0928\u094d\u0928\u093c",  # Devanagari conjuncts (GB9c) with marks
        "\U0001f469\u200d\U0001f469\u200d\U0001f467 \U0001f44d\U0001f3fd! \u2764\ufe0f\u200d\U0001f525",
        "\U0001f1fa\U0001f1f8\U0001f1e9\U0001f1ea\U0001f1eb flags",
        "\u1100\u1161\u11a8 \uac00\u11a8 \u1100\u1100\u1161",  # Hangul jamo clusters
        "line\r\nbreak\r\r\n\n end", "nul\u0000 char \u0000\u0301",
        "zero\u200b width\u200b  \u200b space", "tabs\t\t and\u3000ideographic\u00a0nbsp",
        "many     spaces   here  ", "   leading and trailing   ", "e\u0301\u0301\u0301 a\u0308 A\u030a",
        "\uff21\uff22\uff23\u0308 \u2460\u2461\u0300", "\u00bd\u20dd \u00bc \u2155",
        "\ufb01\u0301le \ufb02\u0308", "\u1e9b\u0323 \u212b \u2126 \u00c5",
        "caf\u00e9 cafe\u0301 CAF\u00c9 CAFE\u0301", "\u3300 \u32ff \u33ff \u3250",
        "x" + "\u0301" * 40 + " long cluster", "\u0e01\u0e33 \u0e40\u0e01 thai",
    ]
    with open(os.path.join(OUT, "grapheme_strings.jsonl"), "w", encoding="utf-8") as f:
        for i, s in enumerate(strings):
            f.write(json.dumps({"id": f"g{i}", "text": s}, ensure_ascii=False) + "\n")
    print(f"grapheme_strings.jsonl: {len(strings)} strings")


if __name__ == "__main__":
    sys.exit(main())
