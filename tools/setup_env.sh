#!/usr/bin/env bash
# Create, or reuse, the project's virtual environment (.venv in the repository root).
#
# Installs torch (kept if the calling Python already has one; a CPU build where there is no GPU),
# the torchvision that matches it, mmcv 2.1.0 built from source with its C++ ops, then what
# setup.cfg declares: requirements/runtime.txt, optional.txt (mmfrozen[classifiers]) and
# tests.txt, at the versions in requirements/constraints.txt, and mmfrozen itself in editable
# mode. A second call with nothing changed returns at once.
#
# Environment:
#   MMFROZEN_VENV          where the environment lives (default: <repo>/.venv)
#   PYTHON                 the interpreter that creates it (default: python3)
#   MMFROZEN_TORCH         torch requirement when torch is missing (default: torch==2.13.0)
#   MMFROZEN_TORCH_INDEX   extra index for torch (default on machines without nvidia-smi:
#                          the PyTorch CPU index); set it empty to use PyPI only
#   FORCE_CUDA, TORCH_CUDA_ARCH_LIST, MAX_JOBS are passed to the mmcv build (see README).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MMFROZEN_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
stamp="$venv/.mmfrozen-setup"
want="$(cat "$root"/requirements/*.txt "$root/setup.cfg" "$root/tools/setup_env.sh" | sha1sum | cut -c1-16)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "[setup] reusing $venv"
  exit 0
fi

log() { echo "[setup] $*"; }

if [[ ! -x "$venv/bin/python" ]]; then
  if "$python" -c 'import torch' 2>/dev/null; then
    # Keep the torch (and any OpenMMLab stack) the user already has.
    log "creating $venv with the system site-packages of $python (keeps its torch)"
    "$python" -m venv --system-site-packages "$venv"
  else
    log "creating $venv"
    "$python" -m venv "$venv"
  fi
fi
py="$venv/bin/python"
pip=("$py" -m pip install --disable-pip-version-check)

# mmcv 2.1.0's setup.py imports pkg_resources, gone from setuptools 81; torch>=2.9 asks for >=77.
"${pip[@]}" -q 'setuptools>=77,<81' wheel ninja packaging

if ! "$py" -c 'import torch' 2>/dev/null; then
  torch_req="${MMFROZEN_TORCH:-torch==2.13.0}"
  if command -v nvidia-smi >/dev/null 2>&1; then
    index="${MMFROZEN_TORCH_INDEX-}"
  else
    index="${MMFROZEN_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
  fi
  log "installing $torch_req${index:+ (extra index $index)}"
  if [[ -n "$index" ]]; then
    # torch alone from the extra index (falls back to PyPI when unreachable), its deps from PyPI.
    "${pip[@]}" --no-deps --retries 1 --timeout 20 --extra-index-url "$index" "$torch_req"
  fi
  "${pip[@]}" "$torch_req" 'setuptools>=77,<81'
fi

# torchvision (timm needs it) to match the installed torch, never the other way round: installed
# with its dependencies, the latest torchvision would replace torch. torch 2.N goes with 0.(N+15),
# from the same index as torch; PyPI's needs a CUDA torch for its ops (see mmfrozen/compat.py).
if ! "$py" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("torchvision") is None)'; then
  tv="$("$py" -c 'import torch; print("0.%d.*" % (int(torch.__version__.split(".")[1]) + 15))')"
  if command -v nvidia-smi >/dev/null 2>&1; then
    tv_index="${MMFROZEN_TORCH_INDEX-}"
  else
    tv_index="${MMFROZEN_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
  fi
  log "installing torchvision==$tv to match torch${tv_index:+ (extra index $tv_index)}"
  "${pip[@]}" -q --no-deps --retries 1 --timeout 20 \
    ${tv_index:+--extra-index-url "$tv_index"} "torchvision==$tv"
fi

if ! "$py" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
  log "building mmcv 2.1.0 with its C++ ops (about 7 minutes on 2 cores; pip caches the wheel)"
  # -g0: Python's own CFLAGS carry -g, and debug info for torch's headers more than doubles each
  # file's compile time (roi_align.cpp: 30 s with it, 13 s without); nothing in the built ops
  # changes. The user's CFLAGS come after, so a -g there still wins.
  CFLAGS="-g0 ${CFLAGS:-}" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "${pip[@]}" --no-build-isolation -c "$root/requirements/constraints.txt" 'mmcv==2.1.0'
fi

# What setup.cfg declares (runtime, the classifiers extra, tests), at the tested versions.
"${pip[@]}" -q -c "$root/requirements/constraints.txt" -r "$root/requirements/runtime.txt" \
  -r "$root/requirements/optional.txt" -r "$root/requirements/tests.txt"

# Editable install without touching the stack installed above.
"${pip[@]}" -q --no-build-isolation --no-deps -e "$root"
"$py" - <<'PY'
import mmcv, mmcv.ops, mmdet, mmengine, torch, mmfrozen  # noqa: F401
print(f'[setup] torch {torch.__version__}, mmengine {mmengine.__version__}, '
      f'mmcv {mmcv.__version__} (ops), mmdet {mmdet.__version__}')
PY
# On a GPU machine: do mmcv's NMS and RoIAlign run on CUDA tensors? If not (mmcv built without
# CUDA ops), say so and what to do now, not at the first training iteration.
if command -v nvidia-smi >/dev/null 2>&1; then
  if ! "$py" -m mmfrozen.cuda_ops; then
    log "WARNING: training on the GPU needs mmcv's CUDA ops (or the torchvision route above)"
  fi
fi
echo "$want" > "$stamp"
log "ready: $venv"
