#!/usr/bin/env bash
# Download what benchmarks/gpu_check.sh installs on a bare GPU machine without network:
# cp312 manylinux wheels of the OpenMMLab stack and its dependencies (torch, torchvision, numpy
# and pillow are on that machine already), and mmcv 2.1.0's source, into wheelhouse/ (ignored by
# git). One carry to the GPU machine holds 64 MiB at most; the set does not fit in one (opencv and
# scipy alone are about 90 MB), so it is split in two parts, each under 64 MiB:
#   wheelhouse/part1: opencv-python-headless (cv2, which mmcv and mmengine import)
#   wheelhouse/part2: everything else, mmcv's source included
# and gpu_check.sh is run twice on one warm machine: `--install-only` carrying part1, then the
# check carrying part2 (see benchmarks/gpu_check.sh).
#
#   bash benchmarks/fetch_gpu_wheels.sh [--python-version 3.12]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pyver=3.12
if [[ "${1:-}" == --python-version ]]; then pyver="$2"; fi
out="$root/wheelhouse"
pip=(python3 -m pip download --disable-pip-version-check --no-deps --only-binary=:all:
     --python-version "$pyver" --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
     --platform manylinux_2_28_x86_64)
limit=$((64 * 1024 * 1024))

mkdir -p "$out/part1" "$out/part2"
"${pip[@]}" -d "$out/part1" opencv-python-headless
"${pip[@]}" -d "$out/part2" mmengine==0.10.7 mmdet==3.3.0 'pycocotools>=2.0.7' lvis==0.5.3 \
  faster-coco-eval==1.8.0 scipy matplotlib contourpy cycler fonttools kiwisolver pyparsing \
  python-dateutil six addict yapf platformdirs termcolor rich markdown-it-py mdurl pygments \
  pyyaml shapely terminaltables tqdm 'setuptools>=77,<81' wheel ninja packaging
python3 -m pip download --disable-pip-version-check --no-deps --no-binary=:all: \
  -d "$out/part2" mmcv==2.1.0

for part in "$out"/part1 "$out"/part2; do
  size=$(du -cb "$part"/* | tail -1 | cut -f1)
  echo "[fetch] $part: $((size / 1024 / 1024)) MiB"
  if (( size > limit )); then
    echo "[fetch] $part is over the 64 MiB a carry holds" >&2
    exit 1
  fi
done
