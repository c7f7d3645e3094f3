"""Fixtures shared by the tests, and the split between the fast suite and the full one.

The fast suite (``bash tools/run_tests.sh``, or plain ``pytest``) leaves out every test that
carries one of :data:`FULL_SUITE_MARKERS`; ``--full`` runs them too (``.ci/run`` does), and
``-m MARKER`` runs the tests it selects whatever their markers. Helpers that are not fixtures
live in :mod:`mmfrozen.testing`; no test module imports another.
"""
import functools
import os
import os.path as osp
import subprocess
import sys
from typing import Callable, Dict, List, Optional

import pytest
import torch

from mmfrozen.testing import (TINY_FASTER_RCNN, coco_cfg_dict, coco_cfg_options, free_port,
                              run_python, write_tiny_coco)
from mmfrozen.testing import tool_env as make_tool_env

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: Markers of the tests that only the full suite runs, and what each holds.
FULL_SUITE_MARKERS = {
    'configs': 'every shipped config through every build path (the fast suite builds one '
               'config per family, arm and build path)',
    'runs': 'more real training, resume and tool runs than the fast suite needs',
    'dist': 'multi-process runs under torchrun (gloo)',
    'mini_world': 'the mini world end to end at tiny scale',
    'benchmarks': 'dry runs of the scripts in benchmarks/',
    'wheel': 'build the wheel and use it from an empty environment',
}


def pytest_addoption(parser) -> None:
    parser.addoption('--full', action='store_true',
                     help='run the full suite: also the tests marked '
                     f'{", ".join(FULL_SUITE_MARKERS)}')


def pytest_configure(config) -> None:
    for name, what in FULL_SUITE_MARKERS.items():
        config.addinivalue_line('markers', f'{name}: full suite only: {what}')
    workers = os.environ.get('PYTEST_XDIST_WORKER_COUNT')
    if workers:
        # A pytest-xdist worker gets its share of the cores: torch's threads of several workers
        # on one core spin waiting for each other.
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // int(workers)))


#: Session-scoped fixtures too costly to build once per pytest-xdist worker: every test that uses
#: one runs in the same worker (``-n auto --dist loadgroup``, opt-in).
SHARED_RUNS = ('tiny_mini_reproduction',)

#: Test modules whose tests must not run side by side, and why.
ONE_WORKER_MODULES = {
    'tests/test_packaging.py': 'pip builds the package in the repository (build/, *.egg-info)',
}


# tryfirst: pytest-xdist reads the groups in its own hook, after this one.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    if not (config.getoption('--full') or config.getoption('markexpr')):
        fast, slow = [], []
        for item in items:
            (slow if any(item.get_closest_marker(m) for m in FULL_SUITE_MARKERS)
             else fast).append(item)
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = fast
    if getattr(config.option, 'loadgroup', False):
        for item in items:
            group = xdist_group(item)
            if group:
                item.add_marker(pytest.mark.xdist_group(group))


def xdist_group(item) -> Optional[str]:
    """The pytest-xdist group of a test. The users of a :data:`SHARED_RUNS` fixture, from
    whatever module, share one worker and its one run; a test with a module- or class-scoped
    fixture stays with its module's tests, which build it once, as without xdist, and so does one
    in :data:`ONE_WORKER_MODULES`; any other test is free (None) to run beside the rest of its
    module."""
    shared = [name for name in SHARED_RUNS if name in item.fixturenames]
    if shared:
        return shared[0]
    module = item.nodeid.split('::')[0]
    if module in ONE_WORKER_MODULES:
        return module
    scopes = {fixturedef.scope for fixturedefs in item._fixtureinfo.name2fixturedefs.values()
              for fixturedef in fixturedefs}
    return module if scopes & {'module', 'class', 'package'} else None


@pytest.fixture(scope='session')
def repo_root() -> str:
    """The repository's root folder (where ``tools/`` and ``configs/`` are)."""
    return REPO


@pytest.fixture(scope='session')
def tool_env() -> Callable[..., Dict[str, str]]:
    """``tool_env(**extra)``: a subprocess environment, one thread, the repository importable."""
    return functools.partial(tool_env_for_repo, REPO)


def tool_env_for_repo(repo: str, **extra: str) -> Dict[str, str]:
    return make_tool_env(pythonpath=repo, **extra)


@pytest.fixture(scope='session')
def run_tool() -> Callable:
    """``run_tool(args, env=None, check=True, timeout=900)``: ``python <args>`` in the repository
    root (``args[0]`` e.g. ``'tools/train.py'``), returning the finished process."""

    def run(args, *, env=None, check: bool = True, timeout: int = 900):
        return run_python(args, cwd=REPO, env=env or tool_env_for_repo(REPO), check=check,
                          timeout=timeout)

    return run


@pytest.fixture(scope='session')
def run_dist_tool() -> Callable:
    """``run_dist_tool(script, args, **env)``: ``bash tools/<script> <args>`` (``dist_train.sh``,
    ``dist_test.sh``: torchrun) in the repository root on a free port; the finished process."""

    def run(script: str, args, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(['bash', osp.join(REPO, 'tools', script), *args], cwd=REPO,
                              capture_output=True, text=True, timeout=900,
                              env=tool_env_for_repo(REPO, PYTHON=sys.executable,
                                                    PORT=str(free_port()), **env))

    return run


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory) -> str:
    """Root of a small COCO-layout data set: 24 train and 15 val images, boxes and masks."""
    return write_tiny_coco(str(tmp_path_factory.mktemp('tiny_coco')))


@pytest.fixture(scope='session')
def tiny_coco_options(tiny_coco) -> List[str]:
    """``--cfg-options`` values that point a stock COCO config at :func:`tiny_coco`."""
    return coco_cfg_options(tiny_coco)


@pytest.fixture(scope='session')
def tiny_coco_cfg(tiny_coco) -> dict:
    """The same as :func:`tiny_coco_options`, as a dict for ``Config.merge_from_dict``."""
    return coco_cfg_dict(tiny_coco)


@pytest.fixture(scope='session')
def trained_tiny(tmp_path_factory, tiny_coco_options, run_tool) -> str:
    """Work dir of :data:`~mmfrozen.testing.TINY_FASTER_RCNN` trained for 2 epochs through
    tools/train.py: ``epoch_1.pth`` and ``epoch_2.pth`` (6 iterations per epoch)."""
    work_dir = str(tmp_path_factory.mktemp('trained_tiny'))
    run_tool(['tools/train.py', TINY_FASTER_RCNN, '--work-dir', work_dir,
              '--cfg-options', *tiny_coco_options])
    return work_dir
