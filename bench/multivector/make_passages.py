#!/usr/bin/python3
"""Real-text passages and queries for `quiver bench multivector` (docs/multivector.md).

Passages: every SciFact title and abstract sentence (>= 3 words), and every Cranfield title and
abstract sentence, one passage per line as {"_id", "text"} (about 60k passages). Queries: SciFact's
test claims (300) as {"_id", "text"}. Encode both per word with `quiver encode --kind multivector`
(GloVe 6B 100-d gives one unit vector per known word).

Usage: make_passages.py DATA_DIR OUT_DIR   (DATA_DIR = ../shared/data)
"""
import json
import os
import re
import sys

SENT = re.compile(r'(?<=[.!?])\s+(?=[A-Z0-9(])')


def sentences(text):
    return [s.strip() for s in SENT.split(text) if len(s.split()) >= 3]


def scifact(data, out):
    n = 0
    with open(os.path.join(data, 'scifact', 'corpus.jsonl'), encoding='utf-8') as f:
        for line in f:
            d = json.loads(line)
            parts = [d['title']] + sentences(d['text'])
            for i, s in enumerate(parts):
                out.write(json.dumps({'_id': f"scifact-{d['_id']}-{i}", 'text': s}) + '\n')
                n += 1
    return n


def cranfield(data, out):
    text = open(os.path.join(data, 'cranfield', 'cran.all.1400'), encoding='utf-8', errors='replace').read()
    n = 0
    for rec in text.split('.I ')[1:]:
        doc_id = rec.split('\n', 1)[0].strip()
        fields = dict(re.findall(r'\n\.([TAWB])\n(.*?)(?=\n\.[TAWBI]\n|\Z)', '\n' + rec.split('\n', 1)[1], re.S))
        body = ' '.join((fields.get('T', '') + ' . ' + fields.get('W', '')).split())
        for i, s in enumerate(x for x in re.split(r'\s\.\s', body) if len(x.split()) >= 3):
            out.write(json.dumps({'_id': f'cran-{doc_id}-{i}', 'text': s}) + '\n')
            n += 1
    return n


def main():
    data, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'passages.jsonl'), 'w', encoding='utf-8') as out:
        n = scifact(data, out) + cranfield(data, out)
    test = set()
    with open(os.path.join(data, 'scifact', 'qrels', 'test.tsv'), encoding='utf-8') as f:
        for line in f:
            q = line.split('\t')[0]
            if q != 'query-id':
                test.add(q)
    nq = 0
    with open(os.path.join(data, 'scifact', 'queries.jsonl'), encoding='utf-8') as f, \
            open(os.path.join(out_dir, 'queries.jsonl'), 'w', encoding='utf-8') as out:
        for line in f:
            q = json.loads(line)
            if q['_id'] in test:
                out.write(json.dumps({'_id': q['_id'], 'text': q['text']}) + '\n')
                nq += 1
    print(f'{n} passages, {nq} queries -> {out_dir}')


if __name__ == '__main__':
    main()
