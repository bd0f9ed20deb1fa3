#!/usr/bin/env bash
# SciFact: BM25 + GloVe dense runs, fusion weights tuned on train, nDCG@10 reported on test, then the
# same weighted fusion through a collection over HTTP (quiver serve), scored by `quiver eval`.
# Usage: scripts/pipeline/scifact-fusion.sh [BUILD_DIR] [WORK_DIR]   (figures: docs/pipeline.md)
set -euo pipefail
BUILD=${1:-build/release}
WORK=${2:-$(mktemp -d)}
Q=$BUILD/bin/quiver
DATA=${QUIVER_DATA_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/data}
SCIFACT=$DATA/scifact
GLOVE=$DATA/glove-6b-100d
DEPTH=${DEPTH:-1000}
mkdir -p "$WORK"
for split in train test; do
  $Q eval --dataset "$SCIFACT" --split $split --retriever bm25 --k "$DEPTH" --quiet --trec "$WORK/bm25.$split.trec" >/dev/null
  $Q eval --dataset "$SCIFACT" --split $split --retriever dense --model "$GLOVE" --k "$DEPTH" --quiet \
    --trec "$WORK/glove.$split.trec" >/dev/null
done
cat "$WORK/bm25.train.trec" "$WORK/bm25.test.trec" > "$WORK/bm25.trec"
cat "$WORK/glove.train.trec" "$WORK/glove.test.trec" > "$WORK/glove.trec"
echo "== BM25 alone (test)"
$Q eval --dataset "$SCIFACT" --split test --run-file "$WORK/bm25.test.trec" --metrics ndcg@10 2>/dev/null | tail -1
echo "== GloVe alone (test)"
$Q eval --dataset "$SCIFACT" --split test --run-file "$WORK/glove.test.trec" --metrics ndcg@10 2>/dev/null | tail -1
echo "== convex min-max fusion, weights tuned on train, reported on test"
$Q eval --dataset "$SCIFACT" --split test --fuse "$WORK/bm25.trec,$WORK/glove.trec" --fusion convex --norm minmax \
  --depth "$DEPTH" --sweep weights=0:1:0.05 --tune-on train --metric ndcg@10 --save-pipeline "$WORK/pipeline.json" \
  --metrics ndcg@10 2>/dev/null
echo "== the same fusion through a collection over HTTP"
mkdir -p "$WORK/models" && ln -sfn "$GLOVE" "$WORK/models/glove"
rm -rf "$WORK/data"
PORT=${PORT:-$((20000 + RANDOM % 20000))}
$Q serve --data "$WORK/data" --models "$WORK/models" --port "$PORT" --max-body-mb 256 2>"$WORK/serve.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
/usr/bin/python3 - "$PORT" "$SCIFACT" "$WORK" "$DEPTH" <<'PY'
import json, sys, time, urllib.request
port, scifact, work, depth = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
base = f"http://127.0.0.1:{port}/v1/collections/scifact"
def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read() or b"{}")
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2); break
    except Exception:
        time.sleep(0.1)
call("PUT", base, {"fields": [
    {"name": "title", "type": "text", "indexed": False}, {"name": "text", "type": "text", "indexed": False},
    {"name": "contents", "type": "text", "sources": ["title", "text"]},
    {"name": "emb", "type": "vector", "dim": 100, "metric": "cosine", "index": "flat", "encoder": "glove",
     "sources": ["title", "text"]}]})
docs = [json.loads(l) for l in open(f"{scifact}/corpus.jsonl")]
for i in range(0, len(docs), 1000):
    call("POST", base + "/documents", [{"id": d["_id"], "title": d.get("title", ""), "text": d["text"]} for d in docs[i:i+1000]])
call("POST", base + "/optimize", {})
fusion = json.load(open(f"{work}/pipeline.json"))["fusion"]
judged = {l.split("\t")[0] for l in open(f"{scifact}/qrels/test.tsv") if not l.startswith("query-id")}
with open(f"{work}/http.test.trec", "w") as out:
    for l in open(f"{scifact}/queries.jsonl"):
        q = json.loads(l)
        if q["_id"] not in judged: continue
        r = call("POST", base + "/search", {"queries": [{"field": "contents", "text": q["text"]},
                                                        {"field": "emb", "text": q["text"]}],
                                            "fusion": fusion, "limit": depth, "fields": []})
        for rank, h in enumerate(r["hits"], 1):
            out.write(f"{q['_id']} Q0 {h['id']} {rank} {h['score']!r} http\n")
PY
$Q eval --dataset "$SCIFACT" --split test --run-file "$WORK/http.test.trec" --metrics ndcg@10 2>/dev/null | tail -2
echo "work files in $WORK"
