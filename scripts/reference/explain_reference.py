"""The Xetrieval reference explanation pipeline in PyTorch CPU, as its
explain_retrieval.py runs it (sentence-transformers encoder, the reasoning
internalizers, the TopK SAE, shared features per view), loading the same
bundle files our engine uses, so `npm run bench` can time both on the same pairs.

  .venv-ref/bin/python scripts/reference/explain_reference.py --pairs pairs.jsonl \
      --bundle models/all-MiniLM-L6-v2 --model-dir .cache/reference/all-MiniLM-L6-v2 [--out out.jsonl]

Stdout: one JSON line {pairs, seconds, pairs_per_s, first_result_s, load_s, batch_size, torch_threads, peak_rss_mb}.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import common


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--model-dir", default=str(common.DEFAULT_MODEL_DIR))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out")
    args = ap.parse_args()

    t_load = time.perf_counter()
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file

    bundle = Path(args.bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    model = common.load_model(args.model_dir)
    sae = load_file(str(bundle / manifest["sae"]["file"]))
    k = int(manifest["sae"]["k"])
    w_enc, b_enc, w_dec, b_dec = sae["encoder.weight"], sae["encoder.bias"], sae["decoder.weight"], sae["b_dec"]
    views = []
    for v in manifest["views"]:
        t = load_file(str(bundle / v["file"]))
        net = torch.nn.Sequential(torch.nn.Linear(t["net.0.weight"].shape[1], t["net.0.weight"].shape[0]), torch.nn.Tanh(), torch.nn.Linear(t["net.2.weight"].shape[1], t["net.2.weight"].shape[0]))
        net[0].weight.data, net[0].bias.data, net[2].weight.data, net[2].bias.data = t["net.0.weight"], t["net.0.bias"], t["net.2.weight"], t["net.2.bias"]
        views.append((v["name"], net.eval()))
    load_s = time.perf_counter() - t_load

    pairs = list(common.read_jsonl(args.pairs))

    @torch.no_grad()
    def codes(x):
        post = F.relu((x - b_dec) @ w_enc.T + b_enc)
        top = post.topk(k, dim=-1)
        return top.values, top.indices

    @torch.no_grad()
    def explain(batch):
        zq = model.encode([p["query"] for p in batch], batch_size=args.batch_size, convert_to_tensor=True)
        zd = model.encode([p["doc"] for p in batch], batch_size=args.batch_size, convert_to_tensor=True)
        vecs = {"original": zd}
        for name, net in views:
            vecs[name] = F.normalize(net(zd), dim=-1)
        qv, qi = codes(zq)
        out = []
        view_codes = {name: codes(v) for name, v in vecs.items()}
        for i, p in enumerate(batch):
            qs = {int(j) for j, a in zip(qi[i].tolist(), qv[i].tolist()) if a > 0}
            per = {}
            for name, (vv, vi) in view_codes.items():
                ds = {int(j) for j, a in zip(vi[i].tolist(), vv[i].tolist()) if a > 0}
                per[name] = sorted(qs & ds)
            shared = sorted(set().union(*per.values()))
            out.append({"query_id": p.get("query_id"), "doc_id": p.get("doc_id"), "score": float((zq[i] * zd[i]).sum()), "shared_features": shared, "per_view_shared_features": per})
        return out

    t0 = time.perf_counter()
    first = None
    results = []
    # the same streaming shape as ours: a small first chunk, then larger ones
    chunks = [pairs[:4]] + [pairs[i : i + 64] for i in range(4, len(pairs), 64)]
    for c in chunks:
        if not c:
            continue
        results.extend(explain(c))
        if first is None:
            first = time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    if args.out:
        with open(args.out, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    print(json.dumps({"pairs": len(pairs), "seconds": seconds, "pairs_per_s": len(pairs) / seconds, "first_result_s": first, "load_s": load_s, "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
