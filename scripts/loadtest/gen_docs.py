#!/usr/bin/env python3
"""Writes N synthetic documents (JSONL) for the load test: SciFact sentences recombined, a keyword, a year,
and a 32-d vector. Usage: gen_docs.py SCIFACT_CORPUS N OUT.jsonl"""
import json
import random
import sys

corpus, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
texts = []
with open(corpus) as f:
    for line in f:
        d = json.loads(line)
        texts.append((d.get("title", ""), d.get("text", "")))
rng = random.Random(6)
with open(out, "w") as f:
    for i in range(n):
        title, text = texts[rng.randrange(len(texts))]
        _, text2 = texts[rng.randrange(len(texts))]
        doc = {"id": f"doc{i}", "title": title, "text": text[:600] + " " + text2[:300],
               "tag": rng.choice(["a", "b", "c", "d"]), "year": 1990 + i % 35,
               "emb": [round(rng.gauss(0, 1), 4) for _ in range(32)]}
        f.write(json.dumps(doc) + "\n")
