"""PyTorch version of `xetrieval train adapter`'s training loop, for its speed
benchmark (`npm run bench -- modulation`): the reference IMRNN module
(imrnn_model.py) in training mode (dropout 0.1), margin loss
max(0, 0.3 - cos(q,d+) + cos(q,d-)) averaged over a group's negatives and the
batch, torch.optim.Adam(lr 1e-4, weight_decay 1e-5), batches of 32 groups of
1 positive + 20 negatives, on seeded random unit embeddings (the speed does not
depend on their values). Prints one JSON line: examples/s over the timed steps.

    .venv-ref/bin/python scripts/reference/imrnn_train_bench.py --examples 640 --threads 2
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from imrnn_model import IMRNN, ModelConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=640)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--negatives", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(13)
    D, n = 384, 1 + args.negatives
    model = IMRNN(ModelConfig(input_dim=D))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    steps = max(1, args.examples // args.batch)
    q = F.normalize(torch.randn(steps + args.warmup, args.batch, D), dim=-1)
    d = F.normalize(torch.randn(steps + args.warmup, args.batch, n, D), dim=-1)

    def step(i: int) -> float:
        opt.zero_grad()
        _, _, scores = model(q[i], d[i])
        loss = torch.clamp(0.3 - scores[:, :1] + scores[:, 1:], min=0).mean()
        loss.backward()
        opt.step()
        return float(loss)

    for i in range(args.warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(args.warmup, args.warmup + steps):
        step(i)
    secs = time.perf_counter() - t0
    print(json.dumps({"examples": steps * args.batch, "seconds": secs, "examples_per_s": steps * args.batch / secs, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
