"""Times TopK sparse-autoencoder training steps in plain PyTorch (CPU, fp32, autograd, torch.optim.Adam).

  .venv-ref/bin/python scripts/reference/sae_bench.py --dict-size 4096 --k 32 --batch-size 256 --steps 50
  .venv-ref/bin/python scripts/reference/sae_bench.py --data x.f32 --dim 384 ...   # rows to train on

The model is the Xetrieval reference module (Hihiczx/Xetrieval mechanistic_explainer.py): an
nn.Linear encoder, ReLU, top-k kept by scatter into a dense code, an nn.Linear decoder without bias,
and b_dec subtracted before encoding and added after decoding. One step, as the TypeScript trainer
does it: loss = mean over the batch of ||x - x_hat||^2, backward, remove from each decoder column's
gradient its component along the column, Adam (0.9, 0.999, 1e-8), renormalise the decoder columns.
--impl sparse instead decodes from the k gathered columns (the same arithmetic as the TypeScript
graph; the reference module decodes densely).

--data: little-endian float32 rows of --dim values (default: seeded random unit vectors).
Batches are taken in order, cycling. Stdout carries exactly one JSON line:
  {steps_per_s, ms_per_step, steps, dict_size, k, batch_size, dim, torch_threads, first_loss, last_loss, ...}
(ms_per_step = best of --repeat timed runs of --steps steps, after --warmup steps); logs go to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

import common


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="float32 rows (little-endian); default random unit vectors")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--rows", type=int, default=8192, help="random rows when --data is not given")
    ap.add_argument("--dict-size", type=int, default=4096)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
    ap.add_argument("--impl", choices=["reference", "sparse"], default="reference")
    args = ap.parse_args()

    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        import numpy as np
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        if args.threads > 0:
            torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        D, Fd, k, B = args.dim, args.dict_size, args.k, args.batch_size
        if args.data:
            data = torch.from_numpy(np.fromfile(args.data, dtype="<f4").reshape(-1, D).copy())
        else:
            data = F.normalize(torch.randn(args.rows, D), dim=-1)
        n = data.shape[0]
        if n < B:
            raise SystemExit(f"{n} rows, fewer than one batch of {B}")

        class TopKSae(nn.Module):
            # the reference module's parameters and forward
            def __init__(self) -> None:
                super().__init__()
                self.encoder = nn.Linear(D, Fd)
                self.decoder = nn.Linear(Fd, D, bias=False)
                self.b_dec = nn.Parameter(torch.zeros(D))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                post_relu = F.relu(self.encoder(x - self.b_dec))
                topk = post_relu.topk(k, sorted=False, dim=-1)
                if args.impl == "sparse":
                    cols = self.decoder.weight.t()[topk.indices]  # [B, k, D]
                    return torch.bmm(topk.values.unsqueeze(1), cols).squeeze(1) + self.b_dec
                code = torch.zeros_like(post_relu)
                code.scatter_(dim=-1, index=topk.indices, src=topk.values)
                return self.decoder(code) + self.b_dec

        model = TopKSae()
        with torch.no_grad():
            w = F.normalize(torch.randn(D, Fd), dim=0)
            model.decoder.weight.copy_(w)
            model.encoder.weight.copy_(w.t())
            model.encoder.bias.zero_()
            model.b_dec.copy_(data.mean(0))
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
        W = model.decoder.weight

        cursor = 0

        def step() -> float:
            nonlocal cursor
            if cursor + B > n:
                cursor = 0
            x = data[cursor : cursor + B]
            cursor += B
            x_hat = model(x)
            loss = (x - x_hat).pow(2).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                W.grad -= (W.grad * W).sum(0, keepdim=True) * W  # keep the step tangent to unit columns
            opt.step()
            with torch.no_grad():
                W.div_(W.norm(dim=0, keepdim=True).clamp_min(1e-12))
            return float(loss)

        first_loss = step()
        for _ in range(max(0, args.warmup - 1)):
            step()
        runs = []
        last_loss = first_loss
        for r in range(max(1, args.repeat)):
            t = time.perf_counter()
            for _ in range(args.steps):
                last_loss = step()
            runs.append(time.perf_counter() - t)
            common.log(f"run {r + 1}: {args.steps} steps in {runs[-1]:.3f} s")
        best = min(runs)
        result = {
            "steps_per_s": round(args.steps / best, 3),
            "ms_per_step": round(1000 * best / args.steps, 3),
            "steps": args.steps,
            "dict_size": Fd,
            "k": k,
            "batch_size": B,
            "dim": D,
            "impl": args.impl,
            "torch_threads": torch.get_num_threads(),
            "first_loss": round(first_loss, 6),
            "last_loss": round(last_loss, 6),
            "runs_seconds": [round(x, 4) for x in runs],
            "engine": "pytorch",
            "torch": torch.__version__,
        }
    print(json.dumps(result), file=stdout, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
