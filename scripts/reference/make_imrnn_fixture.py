"""Reference for IMRNN modulation: one query's modulated scores from the
released adapters, computed by the reference module (imrnn_model.py, the
released code's forward pass) in PyTorch fp32 on fixed input embeddings.

Inputs are seeded, not encoded: a query and 12 candidates drawn from a normal
distribution (numpy, seed 16) and L2-normalised like MiniLM's outputs; the
candidates are mixes of the query and noise so their scores spread out. The
fixture stores the inputs themselves, so the test needs no Python and no encoder.

    .venv-ref/bin/python scripts/reference/make_imrnn_fixture.py \
        [--adapters ../shared/models/imrnn-minilm] [--out test/fixtures/imrnn/reference.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from common import ROOT, log, sha256_file
from imrnn_model import load_adapter

DATASETS = ["scifact", "msmarco"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adapters", default=str((ROOT / ".." / "shared" / "models" / "imrnn-minilm").resolve()))
    ap.add_argument("--out", default=str(ROOT / "test" / "fixtures" / "imrnn" / "reference.json"))
    args = ap.parse_args()

    rng = np.random.default_rng(16)
    dim, n = 384, 12
    q = rng.standard_normal(dim)
    q /= np.linalg.norm(q)
    docs = []
    for j in range(n):
        noise = rng.standard_normal(dim)
        noise /= np.linalg.norm(noise)
        d = (j / n) * q + (1 - j / n) * noise
        docs.append(d / np.linalg.norm(d))
    q32 = q.astype(np.float32)
    d32 = np.stack(docs).astype(np.float32)

    torch.manual_seed(0)
    adapters = {}
    for name in DATASETS:
        path = Path(args.adapters) / f"imrnns-minilm-{name}.safetensors"
        model, meta = load_adapter(str(path))
        with torch.no_grad():
            qt = torch.from_numpy(q32).unsqueeze(0)
            dt = torch.from_numpy(d32).unsqueeze(0)
            q_mod, d_mod, scores = model(qt, dt)
            q_p = model.project(qt)
            # the per-side form of the first training script (IMRNN_train.py, commit f9f7cae):
            # each side modulated by its own hypernet, then cosine
            d_p = model.project(dt[0])
            qs, qb = model.query_hypernet(q_p)
            ds, db = model.doc_hypernet(d_p)
            q_self = torch.nn.functional.normalize(model.query_norm(q_p * qs + qb), dim=-1)
            d_self = torch.nn.functional.normalize(model.doc_norm(d_p * ds + db), dim=-1)
            per_side = (d_self @ q_self[0])
        adapters[name] = {
            "file": path.name,
            "sha256": sha256_file(path),
            "metadata": meta,
            "scores": [float(x) for x in scores[0]],
            "q_p": [float(x) for x in q_p[0]],
            "q_mod": [float(x) for x in q_mod[0]],
            "d_mod_0": [float(x) for x in d_mod[0, 0]],
            "per_side_scores": [float(x) for x in per_side],
        }
        log(f"{name}: scores {np.round(scores[0].numpy(), 4).tolist()}")

    out = {
        "about": "IMRNN modulated scores cos(q_mod, d_mod) for one query and 12 candidates, PyTorch fp32 (scripts/reference/make_imrnn_fixture.py)",
        "torch": torch.__version__,
        "query": [float(x) for x in q32],
        "candidates": [[float(x) for x in row] for row in d32],
        "adapters": adapters,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
