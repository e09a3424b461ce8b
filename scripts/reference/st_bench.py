"""Times sentence-transformers encoding (fp32, CPU, torch's default threads).

  .venv-ref/bin/python scripts/reference/st_bench.py --model-dir .cache/reference/all-MiniLM-L6-v2 \
      --texts texts.jsonl --batch-size 32 --repeat 1
  .venv-ref/bin/python scripts/reference/st_bench.py --corpus ../shared/data/scifact/corpus.jsonl --limit 1000

--texts: JSON lines with a "text" field (a "title" field, if present, is prepended BEIR-style).
--corpus: a BEIR corpus.jsonl, embedded as title + " " + text.
Stdout carries exactly one JSON line:
  {texts, seconds, texts_per_s, batch_size, torch_threads, peak_rss_mb, ...}
(seconds = best of --repeat timed runs of model.encode over all texts, after a warm-up);
everything else goes to stderr. The TypeScript benchmark spawns this script.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import time
from pathlib import Path

import common


def load_texts(path: Path, limit: int | None) -> list[str]:
    out: list[str] = []
    for row in common.read_jsonl(path):
        out.append(common.doc_text(row) if "title" in row else str(row["text"]))
        if limit and len(out) >= limit:
            break
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=str(common.DEFAULT_MODEL_DIR))
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--texts", help='JSON lines with a "text" field')
    src.add_argument("--corpus", help="BEIR corpus.jsonl (title + ' ' + text)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N texts")
    ap.add_argument("--pooling", choices=["mean", "cls"], default="mean")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=8, help="texts encoded once before timing")
    args = ap.parse_args()

    stdout = sys.stdout
    # Anything a library prints goes to stderr; stdout keeps the single JSON line.
    with contextlib.redirect_stdout(sys.stderr):
        import torch

        texts = load_texts(Path(args.texts or args.corpus), args.limit)
        if not texts:
            raise SystemExit("no texts")
        t0 = time.perf_counter()
        model = common.load_model(args.model_dir, args.pooling)
        load_s = time.perf_counter() - t0
        model.encode(texts[: args.warmup], batch_size=args.batch_size, convert_to_numpy=True,
                     show_progress_bar=False)
        runs = []
        for r in range(max(1, args.repeat)):
            t = time.perf_counter()
            emb = model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True,
                               show_progress_bar=False)
            runs.append(time.perf_counter() - t)
            common.log(f"run {r + 1}: {len(texts)} texts in {runs[-1]:.2f} s")
        assert emb.shape[0] == len(texts)
        best = min(runs)
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
        result = {
            "texts": len(texts),
            "seconds": round(best, 4),
            "texts_per_s": round(len(texts) / best, 2),
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "runs_seconds": [round(x, 4) for x in runs],
            "load_seconds": round(load_s, 3),
            "max_seq_length": int(model.max_seq_length),
            "pooling": args.pooling,
            "engine": "sentence-transformers",
            "versions": common.versions(),
        }
    print(json.dumps(result), file=stdout, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
