#!/usr/bin/env bash
# Download what benchmarks/gpu_check.sh installs on a bare GPU machine without network, into
# wheelhouse/ (ignored by git): cp312 manylinux wheels of the OpenMMLab stack and of what the
# GPU machine's image lacks, and mmcv 2.1.0's source. The image already holds torch,
# torchvision, numpy, pillow, opencv-python-headless, scipy, matplotlib, pyyaml, rich, tqdm,
# ninja and wheel (/work/.library/device/KINDS.md), so the set fits one 64 MiB carry.
# setuptools is carried pinned <81: mmcv's setup.py imports pkg_resources.
#
#   bash benchmarks/fetch_gpu_wheels.sh [--python-version 3.12]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pyver=3.12
if [[ "${1:-}" == --python-version ]]; then pyver="$2"; fi
out="$root/wheelhouse"
pip=(python3 -m pip download --disable-pip-version-check --no-deps --only-binary=:all:
     --python-version "$pyver" --implementation cp --platform manylinux2014_x86_64
     --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64
     --platform manylinux_2_28_x86_64)
limit=$((64 * 1024 * 1024))

rm -rf "$out" && mkdir -p "$out"
"${pip[@]}" -d "$out" mmengine==0.10.7 mmdet==3.3.0 pycocotools==2.0.11 lvis==0.5.3 \
  faster-coco-eval==1.8.0 shapely==2.2.0 terminaltables==3.1.10 addict==2.4.0 yapf==0.43.0 \
  platformdirs termcolor 'setuptools>=77,<81'
# mmcv's setup.py imports torch even to be downloaded: the project's environment has it
"${PYTHON:-$root/.venv/bin/python}" -m pip download --disable-pip-version-check --no-deps \
  --no-binary=:all: --no-build-isolation -d "$out" mmcv==2.1.0

size=$(du -cb "$out"/* | tail -1 | cut -f1)
echo "[fetch] $out: $(ls "$out" | wc -l) files, $((size / 1024 / 1024)) MiB"
if ((size > limit)); then
  echo "[fetch] $out is over the 64 MiB a carry holds" >&2
  exit 1
fi
