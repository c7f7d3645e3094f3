"""Each fix in mmfrozen.compat works, and is still needed (it fails without it)."""
import importlib
import importlib.metadata
import itertools
import os
import os.path as osp
import pickle
import subprocess
import sys
import textwrap
from typing import List, Optional, Union

import pytest
import torch
from packaging.requirements import Requirement

import mmfrozen
from mmfrozen import compat
from mmfrozen.testing import TINY_FASTER_RCNN, tool_env

# Every fix but the one that lets torchvision (hence mmfrozen, through timm/mmpretrain) import.
ALL_BUT_TORCHVISION = ','.join(fix.apply.__name__ for fix in compat.FIXES
                               if fix.apply.__name__ != 'define_torchvision_ops')


def run_snippet(code: str, *, no_compat: Union[bool, str] = False) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter, with mmfrozen's fixes, without them but the one
    that lets torchvision import (``no_compat=True``), or without any (``no_compat='all'``)."""
    skip = '1' if no_compat == 'all' else ALL_BUT_TORCHVISION if no_compat else '0'
    env = tool_env(MMFROZEN_NO_COMPAT=skip)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_import_applies_exactly_the_fixes_this_stack_needs():
    """Each fix is applied where the installed versions are in its range and its check finds the
    problem, and only then.

    On this stack (torch>=2.6, NumPy 2, mmengine 0.10.7, a CPU build of torch, setuptools<81 so
    pkg_resources is still there) that is every fix but the pkg_resources one; the test of that
    fix below imports mmfrozen where pkg_resources is missing.
    """
    needed = [fix.apply.__name__ for fix in compat.FIXES if fix.in_range() and fix.needed()]
    assert mmfrozen.compat.apply_all() == needed
    import numpy as np
    expected = {'allow_mmengine_checkpoints': tuple(map(int, torch.__version__.split('.')[:2]))
                >= (2, 6),
                'patch_lvis_numpy': not hasattr(np, 'float'),
                'patch_cpu_launcher': not torch.cuda.is_available(),
                'patch_cpu_ddp': not torch.cuda.is_available(),
                'patch_package_lookup': False,
                'define_torchvision_ops': _torchvision_fails_to_import_alone()}
    assert needed == [name for name, need in expected.items() if need]


@pytest.mark.runs
def test_each_applied_fix_is_logged_once_at_debug_level():
    proc = run_snippet("""
        import logging
        logging.basicConfig(level=logging.DEBUG, format='%(name)s %(levelname)s %(message)s')
        import mmfrozen
        mmfrozen.compat.apply_all()
    """)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if 'mmfrozen.compat applied' in line]
    assert lines and all(line.startswith('mmfrozen DEBUG') for line in lines)
    names = [line.split('applied ')[1].split(':')[0] for line in lines]
    assert len(names) == len(set(names)) == len(mmfrozen.compat.apply_all())
    ranges = {fix.apply.__name__: ', '.join(fix.versions) for fix in compat.FIXES}
    assert all(line.endswith(f'({ranges[name]})') for name, line in zip(names, lines))


# ---------------------------------------------------------------------------------------------
# version ranges
# ---------------------------------------------------------------------------------------------
FIX_NAMES = [fix.apply.__name__ for fix in compat.FIXES]
PACKAGE_LOOKUP = 'patch_package_lookup'


def _requirements(fix: compat.Fix) -> List[Requirement]:
    return [Requirement(r[:-len(compat.OR_ABSENT)] if r.endswith(compat.OR_ABSENT) else r)
            for r in fix.versions]


def _module_version(distribution: str) -> Optional[str]:
    """The version the package's module itself reports (lvis has none: its metadata's), a
    second source beside the ``importlib.metadata`` lookup that the fixes use."""
    try:
        module = importlib.import_module(distribution)
    except ImportError:
        return None
    return getattr(module, '__version__', None) or importlib.metadata.version(distribution)


def _table_versions(name: str) -> str:
    """The versions column of the fix's row in compat's docstring table (columns 28-53)."""
    lines = compat.__doc__.splitlines()
    first = next(i for i, line in enumerate(lines) if line.split(' ', 1)[0] == name)
    rows = [lines[first]] + list(itertools.takewhile(
        lambda line: line.strip() and not line[:28].strip(), lines[first + 1:]))
    return ' '.join(' '.join(row[28:54].split()) for row in rows if row[28:54].strip())


@pytest.mark.parametrize('fix', compat.FIXES, ids=FIX_NAMES)
def test_fix_states_its_range_in_the_record_and_both_docs(fix, repo_root):
    """Each range is a requirement with specifiers on a package installed here, written in
    compat's table and in docs/fixes.md beside the fix's name."""
    name = fix.apply.__name__
    assert fix.versions and all(req.specifier for req in _requirements(fix)), name
    assert all(compat.installed_version(req.name) for req in _requirements(fix)), name
    assert _table_versions(name) == ', '.join(fix.versions)
    with open(osp.join(repo_root, 'docs', 'fixes.md')) as f:
        rows = [line for line in f if line.startswith(f'| `{name}` |')]
    assert len(rows) == 1, f'docs/fixes.md: no row for {name}'
    assert rows[0].split(' | ')[1] == ', '.join(f'`{r}`' for r in fix.versions)


@pytest.mark.parametrize('fix', compat.FIXES, ids=FIX_NAMES)
def test_range_check_against_the_installed_versions(fix):
    """Inside its range here: every fix but the pkg_resources one (setuptools 80 still ships
    pkg_resources); the versions are read from the modules themselves."""
    expected = all(req.specifier.contains(_module_version(req.name), prereleases=True)
                   for req in _requirements(fix))
    assert fix.in_range() is expected
    assert expected is (fix.apply.__name__ != PACKAGE_LOOKUP)


def test_installed_version_is_the_distributions():
    import mmengine
    assert compat.installed_version('mmengine') == mmengine.__version__
    assert compat.installed_version('torch') == torch.__version__  # local label kept: +cpu
    assert compat.installed_version('no-such-distribution-xyz') is None


def _fake_versions(monkeypatch, **versions: Optional[str]) -> None:
    """Make the fixes' version lookup report ``versions`` (None: not installed)."""
    real = compat.installed_version

    def installed_version(package: str) -> Optional[str]:
        return versions[package] if package in versions else real(package)

    monkeypatch.setattr(compat, 'installed_version', installed_version)


OUT_OF_RANGE = {'allow_mmengine_checkpoints': dict(torch='2.5.1'),
                'patch_lvis_numpy': dict(numpy='1.23.5'),
                'patch_cpu_launcher': dict(mmengine='0.10.8'),
                'patch_cpu_ddp': dict(mmengine='0.11.0'),
                PACKAGE_LOOKUP: dict(setuptools='80.9.0'),
                'define_torchvision_ops': dict(torchvision='0.29.0')}


@pytest.mark.parametrize('fix', compat.FIXES, ids=FIX_NAMES)
def test_a_version_out_of_range_skips_the_fix(fix, monkeypatch):
    """With one package's version faked just outside the range, import applies nothing of the
    fix, even where its feature check finds the problem (where the real import applied it:
    every fix but the pkg_resources one here); just inside, the range holds again."""
    name = fix.apply.__name__
    assert set(OUT_OF_RANGE) == set(FIX_NAMES)
    applied_by_import = compat.apply_all()
    _fake_versions(monkeypatch, **OUT_OF_RANGE[name])
    assert not fix.in_range()
    monkeypatch.setattr(compat, '_APPLIED', [])  # a fresh import's state
    monkeypatch.setenv('MMFROZEN_NO_COMPAT', ','.join(n for n in FIX_NAMES if n != name))
    assert compat.apply_all() == []
    assert fix.needed() is (name in applied_by_import)  # then skipped by its range alone
    (package, _), = OUT_OF_RANGE[name].items()
    inside = dict(torch='2.6.0', numpy='1.24.0', mmengine='0.10.7', setuptools='81.0.0',
                  torchvision='0.28.1')[package]
    _fake_versions(monkeypatch, **{package: inside})
    assert fix.in_range()


def test_an_absent_package_is_out_of_range_unless_the_range_says_or_absent(monkeypatch):
    fixes = {fix.apply.__name__: fix for fix in compat.FIXES}
    _fake_versions(monkeypatch, lvis=None, setuptools=None)
    assert not fixes['patch_lvis_numpy'].in_range()
    assert fixes[PACKAGE_LOOKUP].in_range()  # no setuptools, no pkg_resources


# ---------------------------------------------------------------------------------------------
# torch.load(weights_only=True) and MMEngine checkpoints
# ---------------------------------------------------------------------------------------------
def test_mmengine_checkpoint_loads_with_weights_only(trained_tiny):
    ckpt = osp.join(trained_tiny, 'epoch_1.pth')
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert state['meta']['epoch'] == 1 and state['meta']['iter'] == 6
    hub = state['message_hub']['log_scalars']
    assert any(key.startswith('train/') for key in hub)


def test_checkpoint_globals_are_exactly_what_mmengine_saves(trained_tiny):
    """The allow-list covers what a real checkpoint pickles (and names nothing that runs code)."""
    ckpt = osp.join(trained_tiny, 'epoch_1.pth')
    # Asked in a fresh interpreter: in this one, mmfrozen's allow-list hides them.
    proc = run_snippet(f"""
        import torch
        print(*torch.serialization.get_unsafe_globals_in_checkpoint({ckpt!r}))
    """, no_compat=True)
    needed = set(proc.stdout.split())
    allowed = {g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
               for g in compat.mmengine_checkpoint_globals()}
    assert needed, 'torch no longer needs an allow-list for MMEngine checkpoints: drop the fix'
    assert needed <= allowed, f'not allowed yet: {needed - allowed}'
    for obj in compat.mmengine_checkpoint_globals():
        assert obj not in (os.system, eval, exec, getattr, subprocess.Popen)


def test_getattr_in_a_checkpoint_reaches_only_history_buffer_statistics(tmp_path):
    """Pickled ``getattr`` resolves HistoryBuffer.mean, but not a path to os.system."""
    from mmengine.logging import HistoryBuffer

    class GetattrCall:
        def __init__(self, owner, name):
            self.owner, self.name = owner, name

        def __reduce__(self):
            return (getattr, (self.owner, self.name))

    ok = tmp_path / 'ok.pth'
    torch.save({'m': GetattrCall(HistoryBuffer, 'mean')}, ok)
    assert torch.load(ok, weights_only=True)['m'] is HistoryBuffer.mean
    bad = tmp_path / 'bad.pth'
    torch.save({'m': GetattrCall(HistoryBuffer, '__init__')}, bad)
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer statistics'):
        torch.load(bad, weights_only=True)


def test_without_fix_torch_refuses_mmengine_checkpoint(trained_tiny):
    ckpt = osp.join(trained_tiny, 'epoch_1.pth')
    proc = run_snippet(f"""
        from mmengine.runner import CheckpointLoader
        CheckpointLoader.load_checkpoint({ckpt!r}, map_location='cpu')
    """, no_compat=True)
    assert proc.returncode != 0
    assert 'Weights only load failed' in proc.stderr


class _RunsCommand:
    """An object whose unpickling runs a shell command: what a hostile checkpoint holds."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    ckpt = tmp_path / 'hostile.pth'
    with open(ckpt, 'wb') as f:
        torch.save({'state_dict': {}, 'meta': _RunsCommand(str(marker))}, f)
    from mmengine.runner import CheckpointLoader
    with pytest.raises(pickle.UnpicklingError) as info:
        CheckpointLoader.load_checkpoint(str(ckpt), map_location='cpu')
    assert str(ckpt) in str(info.value) and 'untrusted' in str(info.value)
    assert 'system' in str(info.value)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# lvis 0.5.3 and NumPy 2
# ---------------------------------------------------------------------------------------------
LVIS_EVAL = """
    import json, tempfile, os
    import mmfrozen  # applies the fixes unless MMFROZEN_NO_COMPAT=1
    from lvis import LVIS, LVISEval, LVISResults
    gt = dict(
        images=[dict(id=1, width=100, height=100, neg_category_ids=[],
                     not_exhaustive_category_ids=[])],
        categories=[{'id': 1, 'name': 'a', 'frequency': 'r', 'image_count': 1,
                     'instance_count': 1, 'synset': 'a', 'synonyms': ['a'], 'def': 'a'}],
        annotations=[dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 20, 20], area=400,
                          segmentation=[[10, 10, 30, 10, 30, 30, 10, 30]])])
    path = os.path.join(tempfile.mkdtemp(), 'gt.json')
    json.dump(gt, open(path, 'w'))
    lvis_gt = LVIS(path)
    dt = LVISResults(lvis_gt, [dict(image_id=1, category_id=1, bbox=[10, 10, 20, 20],
                                    score=0.9)])
    ev = LVISEval(lvis_gt, dt, 'bbox')
    ev.run()
    print('AP', ev.results['AP'])
"""


@pytest.mark.runs
def test_lvis_eval_runs_on_numpy2():
    proc = run_snippet(LVIS_EVAL)
    assert proc.returncode == 0, proc.stderr
    assert abs(float(proc.stdout.split()[-1]) - 1.0) < 1e-9  # a perfect detection


@pytest.mark.runs
def test_without_fix_lvis_eval_fails_on_numpy2():
    proc = run_snippet(LVIS_EVAL, no_compat=True)
    assert proc.returncode != 0
    assert "has no attribute 'float'" in proc.stderr


def test_lvis_fix_leaves_numpy_itself_alone():
    import numpy as np
    assert not hasattr(np, 'float')


# ---------------------------------------------------------------------------------------------
# `mmdet::` bases without pkg_resources
# ---------------------------------------------------------------------------------------------
NO_PKG_RESOURCES = f"""
    import importlib.metadata, sys
    sys.modules['pkg_resources'] = None  # as with setuptools>=81
    real_version = importlib.metadata.version
    importlib.metadata.version = lambda name: '81.0.0' if name == 'setuptools' else real_version(
        name)
    import mmfrozen
    from mmengine.config import Config
    cfg = Config.fromfile({TINY_FASTER_RCNN!r})
    print(cfg.model.type, cfg.model.backbone.depth)
"""


@pytest.mark.runs
def test_mmdet_bases_resolve_without_pkg_resources():
    proc = run_snippet(NO_PKG_RESOURCES)
    assert proc.returncode == 0, proc.stderr
    assert 'FasterRCNN 18' in proc.stdout


@pytest.mark.runs
def test_without_fix_mmdet_bases_need_pkg_resources():
    proc = run_snippet(NO_PKG_RESOURCES, no_compat=True)
    assert proc.returncode != 0
    assert 'pkg_resources' in proc.stderr


def test_get_installed_path_matches_import():
    import mmdet
    assert compat.get_installed_path('mmdet') == osp.dirname(mmdet.__file__)
    assert compat.is_installed('mmdet') and not compat.is_installed('no_such_package_xyz')


# ---------------------------------------------------------------------------------------------
# torchvision (and timm) where torchvision's C++ ops do not load
# ---------------------------------------------------------------------------------------------
TIMM_CONVNEXT = """
    import mmfrozen, timm, torch, torchvision
    model = timm.create_model('convnext_atto', features_only=True)
    print(model.feature_info.channels())
    try:
        torchvision.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)
    except RuntimeError as err:
        print('nms:', err)
"""


def _torchvision_fails_to_import_alone() -> bool:
    """Ground truth for the fix's check: a fresh ``import torchvision`` without mmfrozen."""
    proc = run_snippet('import torchvision', no_compat='all')
    return proc.returncode != 0 and 'torchvision::nms does not exist' in proc.stderr


@pytest.mark.runs
def test_timm_imports_and_builds_with_the_fix():
    proc = run_snippet(TIMM_CONVNEXT)
    assert proc.returncode == 0, proc.stderr
    assert '[40, 80, 160, 320]' in proc.stdout
    if compat.torchvision_ops_do_not_load() or 'define_torchvision_ops' in compat.apply_all():
        assert "nms: Couldn't load custom C++ ops" in proc.stdout  # unusable, and says so


@pytest.mark.runs
def test_without_fix_timm_imports_only_where_torchvision_does():
    proc = run_snippet(TIMM_CONVNEXT, no_compat='all')
    if _torchvision_fails_to_import_alone():  # this machine: PyPI's CUDA torchvision
        assert proc.returncode != 0
        assert 'operator torchvision::nms does not exist' in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
