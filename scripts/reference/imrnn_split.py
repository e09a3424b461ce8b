"""The query split the released IMRNN adapters were trained on, reproduced.

Both the released package (src/imrnns/beir_data.py) and the original training
script (IMRNN_train.py, first commit) load a BEIR set's *test* split with
GenericDataLoader (queries in the order their ids first appear in
qrels/test.tsv), then split it with scikit-learn:
train_test_split(qids, test_size=0.3, random_state=42) and the 30% again in
halves (val, test). This writes the three id lists, one id per line, so
`xetrieval modulate --query-ids` can measure on queries an adapter could not
have seen. Assumes the adapters came from this split (we cannot check it).

    .venv-ref/bin/python scripts/reference/imrnn_split.py --data ../shared/data/scifact --out test/fixtures/imrnn
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sklearn.model_selection import train_test_split

from common import log


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    name = Path(args.data).resolve().name
    qids: list[str] = []
    seen = set()
    with open(Path(args.data) / "qrels" / "test.tsv") as f:
        next(f)
        for line in f:
            q = line.split("\t")[0].strip()
            if q and q not in seen:
                seen.add(q)
                qids.append(q)
    train_ids, temp_ids = train_test_split(qids, test_size=0.3, random_state=42)
    val_ids, test_ids = train_test_split(temp_ids, test_size=0.5, random_state=42)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, ids in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
        p = out / f"{name}-released-{split}.txt"
        p.write_text(f"# {name} test queries in the released IMRNN adapters' {split} split (scripts/reference/imrnn_split.py)\n" + "\n".join(ids) + "\n")
        log(f"{p}: {len(ids)} ids")


if __name__ == "__main__":
    main()
