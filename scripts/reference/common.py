"""Shared helpers for the Python reference scripts (developers/benchmarks only)."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

# Never touch the network: the model is a local folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = ROOT / ".cache" / "reference" / "all-MiniLM-L6-v2"
DEFAULT_DATA_DIR = (ROOT / ".." / "shared" / "data").resolve()


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def read_jsonl(path: Path | str):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)


def doc_text(d: dict) -> str:
    """BEIR convention: title + " " + text, stripped."""
    return ((d.get("title") or "") + " " + (d.get("text") or "")).strip()


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_model(model_dir: Path | str, pooling: str = "mean", device: str = "cpu"):
    """Load a sentence-transformers model from a local folder.

    pooling="mean" loads the folder as shipped (modules.json). pooling="cls"
    rebuilds it as Transformer -> Pooling(cls) -> Normalize on the same weights.
    """
    from sentence_transformers import SentenceTransformer, models

    model_dir = str(model_dir)
    if pooling == "mean":
        return SentenceTransformer(model_dir, device=device, local_files_only=True)
    if pooling == "cls":
        shipped = SentenceTransformer(model_dir, device=device, local_files_only=True)
        transformer = shipped[0]
        dim_fn = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
        pool = models.Pooling(dim_fn(), pooling_mode="cls")
        return SentenceTransformer(modules=[transformer, pool, models.Normalize()], device=device)
    raise ValueError(f"unknown pooling {pooling!r}")


def versions() -> dict:
    import sentence_transformers
    import torch
    import transformers
    import numpy

    return {
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
    }
