#!/usr/bin/python3
"""Writes tests/data/text/hard_strings.jsonl: 500 strings that stress tokenizers (accents in both
normalisation forms, CJK, emoji and ZWJ sequences, control and format characters, every kind of
whitespace, added and special tokens in context, very long words, very long texts, characters from
recent Unicode versions). Deterministic (seeded); run from the source root:
  tests/text/make_hard_strings.py
"""
import json
import random

rng = random.Random(16)
fixed = [
    "", " ", "   ", "\t\n\r", "a", "A", "hello world", "Hello World!", " leading space", "trailing space ",
    "multiple   spaces   inside", "tab\tseparated\tvalues", "line\nbreaks\r\nand\rreturns", "\u00a0nbsp\u00a0inside\u00a0",
    "ideographic\u3000space", "line\u2028separator\u2029para", "zero\u200bwidth\u200cjoiner\u200dtest", "soft\u00adhyphen",
    "bom\ufeffinside", "nul\u0000char", "bell\u0007char", "del\u007fchar", "c1\u0085\u0090controls", "private\ue000use",
    "replacement\ufffdchar", "café naïve résumé", "cafe\u0301 nai\u0308ve re\u0301sume\u0301", "Ångström Øresund Æsir",
    "Crème Brûlée", "façade jalapeño piñata", "ŁÓDŹ Gdańsk", "Dvořák Škoda", "İstanbul ılık", "Straße STRASSE ß ẞ",
    "ΣΊΣΥΦΟΣ σίσυφος ς", "Ελληνικά", "Кириллица ёЁ", "中文字测试", "日本語のテキスト、カタカナ", "한국어 텍스트 각",
    "\u1100\u1161\u11a8 jamo", "ไทยภาษา", "العربية مع التشكيل مَرْحَبًا", "עִבְרִית", "हिन्दी देवनागरी", "ଓଡ଼ିଆ \u0b4b \u0b47\u0b3e",
    "தமிழ் \u0bca", "a\u0323\u0301 a\u0301\u0323", "ǅ ǆ ǈ", "ﬁ ﬂ ﬃ ligatures", "ＡＢＣ ｆｕｌｌｗｉｄｔｈ １２３", "① ② ⑩ ⅻ Ⅻ",
    "x² y³ H₂O", "½ ¼ ¾", "𝐀𝐁𝐂 𝔸𝔹 𝒜", "™ © ®", "…‥", "«guillemets» „Anführung“ ‹single›", "¿Qué? ¡Sí!",
    "em—dash en–dash minus−sign", "\"quotes\" 'single' `back`", "don't I'M we'LL they'Re you've she'd it's",
    "'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D", "o'clock rock'n'roll", "ſ's long s 'ſ", "3.14159 2,718 1e-10",
    "1234567890123", "٠١٢٣٤٥٦٧٨٩ arabic digits", "१२३ devanagari digits", "version 1.2.3-beta+build.5",
    "email@example.com https://example.org/path?q=1&r=2#frag", "C++ C# F# .NET node.js", "#hashtag @mention $100 50% ^_^",
    "snake_case CamelCase kebab-case SCREAMING_CASE", "αβγ123δεζ", "a1b2c3", "x=y+z*(w/v)-u",
    "😀 😃 😄", "👍🏽 👋🏿", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "🇩🇪🇫🇷 flags", "❤️ ♥ ☺️", "🥰 🫠 🩰 🛝 🟰",
    "\u2e43\u2e44 \u2e52 new punctuation", "\u08e2 \U000110cd \U00013430 new formats", "\u1df6\u1ac1 new marks a\u1df6b",
    "\U0001e944 adlam mark", "\u0378 unassigned", "\U00031350 cjk ext g", "\U0002b740 cjk ext d", "\U0001f10b",
    "[MASK]", "[mask]", "[MASK][MASK]", "hello[MASK]world", "the [MASK] is [MASK].", "[MA SK]", "[UNK] [CLS] [SEP] [PAD]",
    "[CLS]text[SEP]", "a[MASK]", "[MASK]b", "<mask>", "hello <mask> world", "hello   <mask>   world", "<|endoftext|>",
    "text<|endoftext|>more", "<|endoftext|><|endoftext|>", "<sw>", "a<sw>b", "a <sw> b", "<sw>b", "_<sw>_", "<s> </s> <s>",
    "Aerofoil aerofoil AEROFOIL", "the Aerofoil's", "jet Jet JET jetstream", "Jumps jumps JUMPS", "[MASK]<mask><|endoftext|>",
    "<unk> <UNK>", "<0x41> <0xFF>", "\u2581 metaspace \u2581\u2581", "Ġ Ċ byte chars", "##suffix ##", "un##affable",
]
fixed.append("a" * 99)
fixed.append("b" * 100)
fixed.append("c" * 101)
fixed.append("supercalifragilisticexpialidocious" * 4)
fixed.append("pneumonoultramicroscopicsilicovolcanoconiosis")
fixed.append("x" * 5000)
fixed.append("é" * 300)
fixed.append("中" * 3000)
fixed.append("😀" * 1000)
fixed.append("1" * 2000)
fixed.append(" " * 1000 + "word")
fixed.append("word" + "\n" * 500)
fixed.append("-" * 3000)
words = ["aerodynamic", "boundary", "layer", "flow", "supersonic", "heat", "transfer", "the", "of", "café", "naïve",
         "中文", "😀", "[MASK]", "<mask>", "Aerofoil", "don't", "1957", "3.5", "mach-2", "über", "Straße"]
for n in (2000, 20000, 60000):
    fixed.append(" ".join(rng.choice(words) for _ in range(n // 6)))

pool = (
    [chr(c) for c in range(0x20, 0x7f)] * 4 + list("\t\n\r\u00a0\u3000\u2028\u200b\u00ad\ufeff\u0000\u0007") +
    [chr(c) for c in range(0xc0, 0x180)] + [chr(c) for c in range(0x300, 0x370)] + [chr(c) for c in range(0x370, 0x400)] +
    [chr(c) for c in range(0x400, 0x460)] + [chr(c) for c in range(0x4e00, 0x4e80)] + [chr(c) for c in range(0xac00, 0xac40)] +
    [chr(c) for c in range(0x1100, 0x1120)] + [chr(c) for c in range(0x0900, 0x0980)] + [chr(c) for c in range(0x0b00, 0x0b80)] +
    [chr(c) for c in range(0x2000, 0x2070)] + [chr(c) for c in range(0x2e00, 0x2e60)] + [chr(c) for c in range(0xff00, 0xff60)] +
    [chr(c) for c in range(0x1f300, 0x1f340)] + [chr(c) for c in range(0x1f970, 0x1f980)] + [chr(c) for c in range(0x1d400, 0x1d420)] +
    [chr(c) for c in range(0x2150, 0x2190)] + [chr(c) for c in range(0x0600, 0x0660)] + [chr(c) for c in range(0x1ab0, 0x1b00)] +
    [chr(c) for c in range(0xfb00, 0xfb10)] + ["\u200d", "\ufe0f", "\U0001f3fd", "'s", "'LL", "[MASK]", "<mask>", "<sw>",
                                                "<|endoftext|>", "Aerofoil", "jet", "Jumps", " ", "  "] * 3
)
strings = list(dict.fromkeys(fixed))
while len(strings) < 500:
    n = rng.choice([1, 2, 3, 5, 8, 13, 21, 40, 80])
    s = "".join(rng.choice(pool) for _ in range(n))
    if s not in strings:
        strings.append(s)
with open("tests/data/text/hard_strings.jsonl", "w", encoding="utf-8") as f:
    for i, s in enumerate(strings[:500]):
        f.write(json.dumps({"id": f"hard-{i}", "text": s}, ensure_ascii=True) + "\n")
print(len(strings[:500]), "strings")
