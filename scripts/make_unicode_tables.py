#!/usr/bin/python3
"""Generates src/text/unicode_tables.cpp: the Unicode data of quiver's Hugging Face tokenizers.

  scripts/make_unicode_tables.py src/text/unicode_tables.cpp

Hugging Face `tokenizers` (Rust) mixes Unicode versions, and matching it exactly means mixing them the
same way (each version below was confirmed against the npm binding on characters added in later versions):
  - BertNormalizer clean_text ("other" = Cc Cf Co Cs), the BERT punctuation test (P*) and BERT
    accent stripping (Mn) use the `unicode_categories` crate: Unicode 8.0;
  - NFD/NFC/NFKD/NFKC and the StripAccents normalizer (M*) use `unicode-normalization-alignments`:
    Unicode 9.0;
  - everything else (\\p{L}, \\p{N}, \\w, White_Space, lower case) follows current Unicode; the tables
    use Python's unicodedata and Perl's Unicode::UCD (both Unicode 14.0 on Debian 12);
  - the Precompiled normalizer's extended grapheme clusters (`unicode-segmentation`) use
    Grapheme_Cluster_Break and Extended_Pictographic from Perl's Unicode::UCD.
Ages come from Perl's Unicode::UCD (`In=8.0` is every code point assigned by Unicode 8.0).
"""
import subprocess
import sys
import unicodedata

MAX = 0x110000


def invlist(prop):
    out = subprocess.run(["perl", "-MUnicode::UCD=prop_invlist", "-e",
                          f'print join(",", prop_invlist("{prop}"))'], check=True, capture_output=True,
                         text=True).stdout
    bounds = [int(x) for x in out.split(",") if x]
    member = bytearray(MAX)
    for i in range(0, len(bounds), 2):
        end = bounds[i + 1] if i + 1 < len(bounds) else MAX
        for cp in range(bounds[i], end):
            member[cp] = 1
    return member


def invmap(prop):
    out = subprocess.run(["perl", "-MUnicode::UCD=prop_invmap", "-e",
                          f'my ($l, $m) = prop_invmap("{prop}"); print join(",", map {{ "$l->[$_]:$m->[$_]" }} 0..$#$l)'],
                         check=True, capture_output=True, text=True).stdout
    pairs = [x.split(":", 1) for x in out.split(",") if x]
    return [(int(a), b) for a, b in pairs]


# Grapheme_Cluster_Break values (keep in sync with unicode_data::Gcb in src/text/wordpiece_unicode.h);
# Perl reports Extended_Pictographic code points of GCB Other as "ExtPict_XX".
GCB = {"Other": 0, "ExtPict_XX": 0, "CR": 1, "LF": 2, "Control": 3, "Extend": 4, "ZWJ": 5, "Regional_Indicator": 6,
       "Prepend": 7, "SpacingMark": 8, "L": 9, "V": 10, "T": 11, "LV": 12, "LVT": 13}
EXT_PICT = 0x10


def grapheme_ranges():
    value = [0] * MAX
    bounds = invmap("GCB")
    for i, (start, name) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else MAX
        v = GCB[name]
        for cp in range(start, end):
            value[cp] = v
    pict = invlist("Extended_Pictographic")
    for cp in range(MAX):
        if pict[cp]:
            value[cp] |= EXT_PICT
    ranges = []
    start = 0
    for cp in range(1, MAX + 1):
        if cp == MAX or value[cp] != value[start]:
            if value[start]:
                ranges.append((start, cp - 1, value[start]))
            start = cp
    return ranges


# Flag bits (keep in sync with src/text/wordpiece_unicode.h).
LETTER, NUMBER, DECIMAL, MARK, CONNECTOR, ALPHABETIC, PUNCT8, OTHER8, MN8, MARK9, WHITESPACE = (
    1 << i for i in range(11))


def main(path):
    in8 = invlist("In=8.0")
    in9 = invlist("In=9.0")
    alpha = invlist("Alphabetic")
    white = invlist("White_Space")
    flags = [0] * MAX
    for cp in range(MAX):
        cat = unicodedata.category(chr(cp))
        f = 0
        if cat[0] == "L":
            f |= LETTER
        if cat[0] == "N":
            f |= NUMBER
        if cat == "Nd":
            f |= DECIMAL
        if cat[0] == "M":
            f |= MARK
        if cat == "Pc":
            f |= CONNECTOR
        if alpha[cp]:
            f |= ALPHABETIC
        if white[cp]:
            f |= WHITESPACE
        if in8[cp] and cat[0] == "P":
            f |= PUNCT8
        if in8[cp] and cat in ("Cc", "Cf", "Co", "Cs"):
            f |= OTHER8
        if in8[cp] and cat == "Mn":
            f |= MN8
        if in9[cp] and cat[0] == "M":
            f |= MARK9
        flags[cp] = f
    ranges = []
    start = 0
    for cp in range(1, MAX + 1):
        if cp == MAX or flags[cp] != flags[start]:
            if flags[start]:
                ranges.append((start, cp - 1, flags[start]))
            start = cp
    ccc = []
    start = 0
    cc = [unicodedata.combining(chr(cp)) if in9[cp] else 0 for cp in range(MAX)]
    for cp in range(1, MAX + 1):
        if cp == MAX or cc[cp] != cc[start]:
            if cc[start]:
                ccc.append((start, cp - 1, cc[start]))
            start = cp
    canon, compat, compose, lower = [], [], [], []
    for cp in range(MAX):
        c = chr(cp)
        if 0xAC00 <= cp <= 0xD7A3 or 0xD800 <= cp <= 0xDFFF:
            continue  # Hangul syllables decompose algorithmically; surrogates are not text
        lo = c.lower()
        if lo != c:
            lower.append((cp, [ord(x) for x in lo]))
        if not in9[cp]:
            continue
        d = unicodedata.normalize("NFD", c)
        if d != c:
            canon.append((cp, [ord(x) for x in d]))
        k = unicodedata.normalize("NFKD", c)
        if k != d:
            compat.append((cp, [ord(x) for x in k]))
        raw = unicodedata.decomposition(c)
        if raw and not raw.startswith("<"):
            parts = [int(x, 16) for x in raw.split()]
            if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == c:
                compose.append((parts[0], parts[1], cp))
    compose.sort()
    assert all(len(v) <= 3 for _, v in lower)

    def seq_table(name, entries, out):
        chars = []
        out.append(f"const SeqEntry {name}[] = {{")
        row = []
        for cp, seq in entries:
            row.append(f"{{0x{cp:X}, {len(chars)}, {len(seq)}}}")
            chars.extend(seq)
            if len(row) == 6:
                out.append("    " + ", ".join(row) + ",")
                row = []
        if row:
            out.append("    " + ", ".join(row) + ",")
        out.append("};")
        out.append(f"const std::size_t {name}Size = {len(entries)};")
        out.append(f"const char32_t {name}Chars[] = {{")
        for i in range(0, len(chars), 12):
            out.append("    " + ", ".join(f"0x{x:X}" for x in chars[i:i + 12]) + ",")
        out.append("};")

    out = [f"// Generated by scripts/make_unicode_tables.py (unicodedata {unicodedata.unidata_version}). Do not edit.",
           '#include "text/wordpiece_unicode.h"', "", "namespace quiver::text::unicode_data {", ""]

    def rows(name, typ, items, fmt, per):
        out.append(f"const {typ} {name}[] = {{")
        for i in range(0, len(items), per):
            out.append("    " + ", ".join(fmt(x) for x in items[i:i + per]) + ",")
        out.append("};")
        out.append(f"const std::size_t {name}Size = {len(items)};")

    rows("kFlags", "FlagRange", ranges, lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}, 0x{r[2]:X}}}", 5)
    rows("kCcc", "CccRange", ccc, lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}, {r[2]}}}", 6)
    rows("kCompose", "ComposeEntry", compose, lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}, 0x{r[2]:X}}}", 5)
    rows("kLower", "LowerEntry", lower,
         lambda r: "{0x%X, {%s}}" % (r[0], ", ".join(f"0x{x:X}" for x in (r[1] + [0, 0, 0])[:3])), 4)
    rows("kGcb", "GcbRange", grapheme_ranges(), lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}, {r[2]}}}", 6)
    seq_table("kCanon", canon, out)
    seq_table("kCompat", compat, out)
    out += ["", "}  // namespace quiver::text::unicode_data", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
