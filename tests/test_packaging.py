"""Installing mmfrozen keeps an OpenMMLab stack that is already there."""
import subprocess
import sys

from conftest import REPO


def test_editable_install_reinstalls_nothing_of_the_stack():
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-build-isolation', '-e', '.'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    would = [line for line in proc.stdout.splitlines() if line.startswith('Would install')]
    assert len(would) == 1 and would[0].split()[2:] == [
        f'mmfrozen-{__import__("mmfrozen").__version__}'
    ], would


def test_import_registers_in_mmdetection_registries():
    import mmfrozen  # noqa: F401
    from mmdet.registry import HOOKS, METRICS, RUNNERS
    assert RUNNERS.get('FrozenBackboneRunner') is not None
    assert HOOKS.get('FrozenBackboneCheckHook') is not None
    assert HOOKS.get('CostReportHook') is not None
    assert METRICS.get('LVISStratifiedMetric') is not None
    assert METRICS.get('CocoStratifiedMetric') is not None


def test_import_has_no_side_effects_beyond_registration():
    """``import mmfrozen`` leaves matplotlib's backend alone (no ``matplotlib.use``; lvis-api
    itself imports pyplot, which does not choose one) and does not import the mini world."""
    code = ('import sys, matplotlib; import mmfrozen; '
            "print('mmfrozen.mini' in sys.modules, matplotlib.get_backend())")
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=dict(__import__('os').environ,
                                                           MPLBACKEND='svg'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ['False', 'svg']


def test_frozen_module_builder_registered():
    import mmfrozen  # noqa: F401
    from mmdet.registry import MODELS
    assert MODELS.get('FrozenModule') is not None
