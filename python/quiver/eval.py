"""Retrieval evaluation: test collections, trec_eval metrics and TREC run files.

Qrels and runs use pytrec_eval's shapes: qrels ``{qid: {docid: relevance}}``, runs
``{qid: {docid: score}}``::

    ds = quiver.eval.load_dataset("scifact")              # BEIR, TREC or SMART, detected
    run = {q.id: {...} for q in ds.queries}
    report = quiver.eval.evaluate(ds.qrels, run, "ndcg@10,recall@100")
    report["ndcg@10"], report.per_query["ndcg@10"]["1"]
"""
from ._quiver import _eval as _native

Dataset = _native.Dataset
Document = _native.Document
Query = _native.Query
EvalReport = _native.EvalReport
load_dataset = _native.load_dataset
evaluate = _native.evaluate
read_run = _native.read_run
write_run = _native.write_run
format_run = _native.format_run

__all__ = ["Dataset", "Document", "Query", "EvalReport", "load_dataset", "evaluate", "read_run", "write_run",
           "format_run"]
