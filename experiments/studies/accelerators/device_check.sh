#!/usr/bin/env bash
# The GPU check (experiments/studies/accelerators/device_check.py): GPU-marked tests, ours vs cuDNN/flax/PyTorch at
# FlashRNN's and torchrl's shapes, 200 ptb_small steps; JSON into $OUT (or --out=DIR).
#
#   bash experiments/studies/accelerators/device_check.sh             # on a machine with one NVIDIA GPU
#   bash experiments/studies/accelerators/device_check.sh --dry-run   # anywhere: tiny shapes, same code paths
#
# It uses the machine's own python with jax[cuda], flax, optax, orbax-checkpoint, absl-py,
# ml_collections and torch already installed (no network is needed); PYTHON=... picks another
# interpreter. JAX does not preallocate GPU memory here, so PyTorch can share the device.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY="${PYTHON:-python3}"
args=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) args+=(--dry_run) ;;
    *) args+=("$arg") ;;
  esac
done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
exec "$PY" -m experiments.studies.accelerators.device_check ${args[@]+"${args[@]}"}
