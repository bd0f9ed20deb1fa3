#!/usr/bin/python3
"""RM3 parameters tuned on one split, reported on another (never tuned on the reported split).

Runs `quiver eval --retriever bm25 --prf rm3:...` over a grid of fb_docs x fb_terms x original query
weight on --tune-on's judgments, picks the best by --metric, then reports BM25 and the tuned RM3 on
--split (MAP and nDCG@10). Figures: docs/pipeline.md.

Usage: scripts/pipeline/rm3-tune.py [--quiver build/release/bin/quiver] [--dataset DIR]
           [--tune-on train] [--split test] [--metric map] [--fb-docs 1,3,5,10] [--fb-terms 5,10,20,40]
           [--weights 0.3,0.5,0.7,0.9] [--threads 2]
"""
import argparse, itertools, json, os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
default_data = os.environ.get("QUIVER_DATA_DIR") or os.path.join(here, "..", "..", "..", "shared", "data")
ap = argparse.ArgumentParser()
ap.add_argument("--quiver", default="build/release/bin/quiver")
ap.add_argument("--dataset", default=os.path.join(default_data, "scifact"))
ap.add_argument("--tune-on", default="train")
ap.add_argument("--split", default="test")
ap.add_argument("--metric", default="map")
ap.add_argument("--fb-docs", default="1,3,5,10")
ap.add_argument("--fb-terms", default="5,10,20,40")
ap.add_argument("--weights", default="0.3,0.5,0.7,0.9")
ap.add_argument("--threads", default="2")
a = ap.parse_args()
if a.tune_on == a.split:
    sys.exit("--tune-on must differ from --split (never tune on the reported split)")


def evaluate(split, prf, metrics):
    cmd = [a.quiver, "eval", "--dataset", a.dataset, "--split", split, "--retriever", "bm25", "--metrics", metrics,
           "--threads", a.threads, "--json", "--quiet"]
    if prf:
        cmd += ["--prf", prf]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["metrics"]


grid = list(itertools.product(a.fb_docs.split(","), a.fb_terms.split(","), a.weights.split(",")))
base_tune = evaluate(a.tune_on, None, a.metric)[a.metric]
print(f"BM25 on {a.tune_on}: {a.metric} {base_tune:.4f}; {len(grid)} RM3 settings", flush=True)
best = None
for d, t, w in grid:
    prf = f"rm3:fb_docs={d},fb_terms={t},weight={w}"
    v = evaluate(a.tune_on, prf, a.metric)[a.metric]
    print(f"  {a.tune_on} {a.metric} {v:.4f}  {prf}", flush=True)
    if best is None or v > best[0]:
        best = (v, prf)
print(f"best on {a.tune_on}: {best[1]} ({a.metric} {best[0]:.4f}; BM25 {base_tune:.4f})")
report = "map,ndcg@10"
bm25 = evaluate(a.split, None, report)
rm3 = evaluate(a.split, best[1], report)
default = evaluate(a.split, "rm3:fb_docs=10,fb_terms=10,weight=0.5", report)
print(f"on {a.split}:        MAP     nDCG@10")
print(f"  BM25             {bm25['map']:.4f}  {bm25['ndcg@10']:.4f}")
print(f"  RM3 default      {default['map']:.4f}  {default['ndcg@10']:.4f}  rm3:fb_docs=10,fb_terms=10,weight=0.5")
print(f"  RM3 tuned        {rm3['map']:.4f}  {rm3['ndcg@10']:.4f}  {best[1]} (tuned on {a.tune_on})")
