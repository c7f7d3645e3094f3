#!/usr/bin/env bash
# The GPU check: set up a bare GPU machine without network and measure this project on it.
#
# The machine has one NVIDIA H100/H200, Python 3.12 with torch 2.11 (CUDA 13), torchvision 0.26
# and nvcc 13; everything else comes from wheelhouse/ (benchmarks/fetch_gpu_wheels.sh, about
# 8 MiB, one carry):
#
#   bash benchmarks/gpu_check.sh --out gpu_check.md
#
# Steps: install the wheels found (no network, no dependency resolution); build mmcv 2.1.0 from
# its source with its CPU ops only (CUDA hidden from the build, so nvcc compiles nothing) and
# route mmcv's RoIAlign and NMS on CUDA tensors to torchvision's CUDA kernels
# (mmfrozen.torchvision_ops); with --mmcv-cuda build mmcv's CUDA ops for sm_90 instead (FORCE_CUDA=1,
# TORCH_CUDA_ARCH_LIST=9.0, MAX_JOBS=nproc). On an H100 machine (16 cores, 2026-11-27) the
# wheels installed in 6 s and the CPU-ops build took 117 s; the CUDA build (~100 .cu files) was
# not tried there. Then python -m mmfrozen.cuda_ops, and
# benchmarks/gpu_check.py: frozen_path.py, tools/cost.py (with and without --amp), 100 training
# iterations frozen vs fine-tuned through tools/train.py; all figures in one markdown file.
#
# --dry-run: no installation, no build: benchmarks/gpu_check.py --dry-run on the CPU with the
# project's environment (tiny images, 2 iterations), as CI runs it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/gpu_check.md"
dry_run=0 mmcv_cuda=0
skip=()
while (($#)); do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --mmcv-cuda) mmcv_cuda=1 ;;
    --out) out="$2"; shift ;;
    --skip) skip+=(--skip "$2"); shift ;;
    *) echo "usage: $0 [--dry-run] [--mmcv-cuda] [--out FILE] [--skip frozen_path|cost|training]" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "[gpu_check] $*"; }
cd "$root"

if ((dry_run)); then
  py="${PYTHON:-$root/.venv/bin/python}"
  exec "$py" benchmarks/gpu_check.py --dry-run --out "$out" "${skip[@]}"
fi

py="${PYTHON:-python3}"
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
t0=$SECONDS
shopt -s nullglob
wheels=("$root"/wheelhouse/*.whl)
if ((${#wheels[@]})); then
  log "installing ${#wheels[@]} wheels from wheelhouse/"
  "$py" -m pip install -q --no-index --no-deps "${wheels[@]}"
fi
install_s=$((SECONDS - t0))

t0=$SECONDS
if ! "$py" -c 'import mmcv, mmcv.ops' 2>/dev/null; then
  sdist=("$root"/wheelhouse/mmcv-2.1.0.tar.gz)
  if [[ ! -f "${sdist[0]}" ]]; then
    echo "[gpu_check] mmcv is not installed and wheelhouse/ has no mmcv-2.1.0.tar.gz" >&2
    exit 1
  fi
  if ((mmcv_cuda)); then
    log "building mmcv 2.1.0 with CUDA ops for sm_90 ($(nproc) jobs)"
    CFLAGS="-g0 ${CFLAGS:-}" FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 MMCV_WITH_OPS=1 \
      MAX_JOBS="$(nproc)" \
      "$py" -m pip install -q --no-index --no-build-isolation --no-deps "${sdist[0]}"
  else
    log "building mmcv 2.1.0 with CPU ops ($(nproc) jobs); CUDA RoIAlign/NMS from torchvision"
    CFLAGS="-g0 ${CFLAGS:-}" CUDA_VISIBLE_DEVICES= FORCE_CUDA=0 MMCV_WITH_OPS=1 \
      MAX_JOBS="$(nproc)" \
      "$py" -m pip install -q --no-index --no-build-isolation --no-deps "${sdist[0]}"
  fi
fi
build_s=$((SECONDS - t0))

extra=()
if "$py" -m mmfrozen.cuda_ops; then
  ops="mmcv's own CUDA kernels"
else
  ops="torchvision's CUDA kernels (mmfrozen.torchvision_ops)"
  extra+=(--torchvision-ops)
fi
notes="Set-up: wheels installed in ${install_s} s, mmcv built in ${build_s} s; RoIAlign/NMS: ${ops}."
log "$notes"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$py" benchmarks/gpu_check.py --device cuda \
  --out "$out" --setup-notes "$notes" "${extra[@]}" "${skip[@]}"
