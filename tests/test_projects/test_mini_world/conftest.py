"""Fixtures of the mini world's tests: one tiny run of the mini reproduction, shared."""
import os.path as osp

import pytest

from projects.mini_world.mini_world.pipeline import DETECTOR_CONFIGS, WIDE_FINETUNE_CONFIG


@pytest.fixture(scope='session')
def mini_detectors():
    """The config names of the tiny run's four detectors: the default three, then the one given
    with ``--extra-configs``."""
    return tuple(osp.splitext(osp.basename(config))[0]
                 for config in (*DETECTOR_CONFIGS, WIDE_FINETUNE_CONFIG))


@pytest.fixture(scope='session')
def mini_extra():
    """The ``--extra-configs`` arguments of the tiny run."""
    return ['--extra-configs', WIDE_FINETUNE_CONFIG]


@pytest.fixture(scope='session')
def tiny_mini_reproduction(tmp_path_factory, run_tool, mini_extra):
    """``mini_reproduction.py`` at tiny scale, 2 seeds, the four detectors: its work dir and
    finished process (shared by the mini reproduction's and the classifier sweep's tests)."""
    work_dir = str(tmp_path_factory.mktemp('mini_reproduction'))
    proc = run_tool(['projects/mini_world/tools/mini_reproduction.py', '--scale', 'tiny',
                     '--work-dir', work_dir, '--threads', '1', '--jobs', '2', '--seeds', '2',
                     *mini_extra], timeout=600)
    return work_dir, proc
