"""Writes test/fixtures/parity/readme-sentences.json: sentence-transformers (fp32,
PyTorch CPU) embeddings of the two model-card example sentences.

The values quoted in shared/notes/models.md (0.04592696..., from the
transformers.js model card) come from that card's default *quantized* ONNX
model; fp32 weights give 0.06765691..., which is what this script records.

Usage: .venv-ref/bin/python scripts/reference/readme_sentences.py [model_dir]
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from sentence_transformers import SentenceTransformer  # noqa: E402

model_dir = sys.argv[1] if len(sys.argv) > 1 else ".cache/reference/all-MiniLM-L6-v2"
texts = ["This is an example sentence", "Each sentence is converted"]
emb = SentenceTransformer(model_dir, device="cpu").encode(texts, convert_to_numpy=True)
out = {
    "texts": texts,
    "first3": [[float(x) for x in row[:3]] for row in emb],
    "published_int8_first3": [
        [0.04592696577310562, 0.07328180968761444, 0.05400655046105385],
        [0.08188057690858841, 0.10760223120450974, -0.013241755776107311],
    ],
    "note": "first3: sentence-transformers fp32 on PyTorch CPU. published_int8_first3: the values in shared/notes/models.md, from the transformers.js card's default quantized model; fp32 weights cannot reproduce them.",
    "command": "python scripts/reference/readme_sentences.py",
}
json.dump(out, open("test/fixtures/parity/readme-sentences.json", "w"), indent=1)
print(json.dumps(out["first3"]))
