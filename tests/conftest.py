"""Shared fixtures: the repository, a tiny COCO data set, and a runner for the tools."""
import os
import os.path as osp
import subprocess
import sys
from typing import List, Sequence

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from tiny_coco import coco_cfg_options, write_tiny_coco  # noqa: E402

TINY_FASTER_RCNN = osp.join(REPO, 'tests', 'configs', 'faster-rcnn_r18-tiny_fpn_coco.py')


def tool_env(**extra: str) -> dict:
    """Environment for a tool subprocess: one torch thread each, the repo importable."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONPATH=REPO)
    env.update(extra)
    return env


def run_tool(args: Sequence[str], *, env: dict = None, check: bool = True,
             timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repository root and return the finished process."""
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env or tool_env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} exited {proc.returncode}:\n'
                             f'{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}')
    return proc


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory) -> str:
    """Root of a small COCO-layout data set: 24 train and 15 val images, boxes and masks."""
    return write_tiny_coco(str(tmp_path_factory.mktemp('tiny_coco')))


@pytest.fixture(scope='session')
def tiny_coco_options(tiny_coco) -> List[str]:
    """``--cfg-options`` values that point a stock COCO config at :func:`tiny_coco`."""
    return coco_cfg_options(tiny_coco)
