"""Dense-retrieval reference run with sentence-transformers on a BEIR folder.

  .venv-ref/bin/python scripts/reference/st_eval.py --data ../shared/data/scifact --split test \
      --model-dir .cache/reference/all-MiniLM-L6-v2 [--save-run run.tsv]

Documents are embedded as title + " " + text (stripped), queries as they are; score =
dot product of L2-normalised vectors (cosine); exact search over the whole corpus.
Metrics (averaged over the split's queries that have at least one qrel):
  ndcg@10   linear gains, log2(rank + 1) discount, ideal from all of the query's qrels
            (as pytrec_eval / trec_eval ndcg_cut.10)
  recall@100  relevant (score > 0) docs in the top 100 / all relevant docs
  mrr@10    1 / rank of the first relevant doc within the top 10, else 0
Prints one JSON line on stdout; logs go to stderr.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import common


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        assert header[0].lower().startswith("query"), header
        for row in reader:
            if len(row) < 3:
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def ndcg_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    ap.add_argument("--split", default="test")
    ap.add_argument("--model-dir", default=str(common.DEFAULT_MODEL_DIR))
    ap.add_argument("--pooling", choices=["mean", "cls"], default="mean",
                    help="mean = the folder as shipped; cls = same weights with CLS pooling + Normalize")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--query-prefix", default="", help="prepended to every query (e.g. a bge instruction)")
    ap.add_argument("--top-k", type=int, default=100, help="depth kept per query (run file, recall)")
    ap.add_argument("--save-run", default=None, help="write qid<TAB>docid<TAB>rank<TAB>score, top-k per query")
    args = ap.parse_args()

    import numpy as np
    import torch

    data = Path(args.data)
    t0 = time.perf_counter()
    qrels_all = load_qrels(data / "qrels" / f"{args.split}.tsv")
    queries = {q["_id"]: q["text"] for q in common.read_jsonl(data / "queries.jsonl")}
    qids = [q for q in queries if q in qrels_all and any(r > 0 for r in qrels_all[q].values())]
    skipped = sum(1 for q in qrels_all if q not in qids)
    corpus = list(common.read_jsonl(data / "corpus.jsonl"))
    doc_ids = [d["_id"] for d in corpus]
    doc_texts = [common.doc_text(d) for d in corpus]
    common.log(f"{data.name}/{args.split}: {len(qids)} queries with qrels ({skipped} skipped), "
               f"{len(doc_ids)} documents")

    model = common.load_model(args.model_dir, args.pooling)
    t_load = time.perf_counter()
    d_emb = model.encode(doc_texts, batch_size=args.batch_size, convert_to_numpy=True,
                         normalize_embeddings=True, show_progress_bar=False)
    t_docs = time.perf_counter()
    q_emb = model.encode([args.query_prefix + queries[q] for q in qids], batch_size=args.batch_size,
                         convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    t_queries = time.perf_counter()

    scores = torch.from_numpy(np.asarray(q_emb, dtype=np.float32)) @ torch.from_numpy(
        np.asarray(d_emb, dtype=np.float32)).T
    k = min(args.top_k, len(doc_ids))
    top_s, top_i = torch.topk(scores, k, dim=1)  # sorted, descending
    t_search = time.perf_counter()

    ndcg, rec, mrr = [], [], []
    run_rows = []
    for row, qid in enumerate(qids):
        ranked = [doc_ids[j] for j in top_i[row].tolist()]
        rels = qrels_all[qid]
        ndcg.append(ndcg_at(ranked, rels, 10))
        rec.append(recall_at(ranked, rels, 100))
        mrr.append(mrr_at(ranked, rels, 10))
        if args.save_run:
            for rank, (d, s) in enumerate(zip(ranked, top_s[row].tolist()), start=1):
                run_rows.append(f"{qid}\t{d}\t{rank}\t{s:.6f}")
    if args.save_run:
        Path(args.save_run).parent.mkdir(parents=True, exist_ok=True)
        with open(args.save_run, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(run_rows) + "\n")
        common.log(f"wrote {len(run_rows)} rows to {args.save_run}")

    mean = lambda xs: float(sum(xs) / len(xs)) if xs else 0.0  # noqa: E731
    print(json.dumps({
        "dataset": data.name, "split": args.split, "model_dir": args.model_dir, "pooling": args.pooling,
        "max_seq_length": int(model.max_seq_length), "queries": len(qids), "skipped_queries": skipped,
        "documents": len(doc_ids),
        "ndcg@10": round(mean(ndcg), 5), "recall@100": round(mean(rec), 5), "mrr@10": round(mean(mrr), 5),
        "seconds": {"total": round(t_search - t0, 2), "load": round(t_load - t0, 2),
                    "encode_docs": round(t_docs - t_load, 2), "encode_queries": round(t_queries - t_docs, 2),
                    "search": round(t_search - t_queries, 3)},
        "docs_per_s": round(len(doc_ids) / (t_docs - t_load), 1),
        "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
        "versions": common.versions(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
