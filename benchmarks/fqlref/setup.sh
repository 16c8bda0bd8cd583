#!/usr/bin/env bash
# The reference environment of benchmarks/fql_vs_reference.py (and benchmarks/fql_ref_train.py).
#   usage: FQLREF_ROOT=<scratch dir> bash benchmarks/fqlref/setup.sh <git dir of github.com/seohongpark/fql>
#   (e.g. `git clone --bare https://github.com/seohongpark/fql`)
# Creates (outside every repository):
#   $FQLREF_ROOT/src   - HEAD tree of github.com/seohongpark/fql (tested at 719d04417cb0b206deddbc7d761b3e710c3d750c)
#   $FQLREF_ROOT/venv  - CPU JAX venv with the versions that were measured
# FQLREF_ROOT must be set; keep it outside this repository: the reference's source is never copied into it.
set -euo pipefail
GITDIR="${1:?usage: setup.sh <bare git dir of seohongpark/fql>}"
ROOT="${FQLREF_ROOT:?set FQLREF_ROOT to a scratch directory outside the repos}"

mkdir -p "$ROOT"
rm -rf "$ROOT/src"
mkdir -p "$ROOT/src"
git --git-dir="$GITDIR" archive HEAD | tar -x -C "$ROOT/src"
echo "fql source: $(git --git-dir="$GITDIR" rev-parse HEAD) -> $ROOT/src"

if [ ! -x "$ROOT/venv/bin/python" ]; then
  python3 -m venv "$ROOT/venv"
fi
"$ROOT/venv/bin/pip" install -q --upgrade pip
# Versions that were measured together (resolved by pip from unpinned names on 2 CPU cores, Python 3.11).
"$ROOT/venv/bin/pip" install -q \
  'jax==0.10.2' 'jaxlib==0.10.2' 'flax==0.12.8' 'optax==0.2.8' 'distrax==0.1.9' \
  'chex==0.1.92' 'ml_collections==1.1.0' 'numpy==2.4.6' 'tfp-nightly==0.26.0.dev20261027'
"$ROOT/venv/bin/python" - <<EOF
import sys; sys.path.insert(0, "$ROOT/src")
import jax, flax, optax, distrax
from agents.fql import FQLAgent, get_config
from utils.datasets import Dataset
print("ok: jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__, "distrax", distrax.__version__)
EOF
echo "run: FQL_REF_SRC=$ROOT/src $ROOT/venv/bin/python $(dirname "$0")/fql_ref_throughput.py --act-dim 7 --hidden 512 --layers 4 --steps 180 --warmup 20"
