"""benchmarks/frozen_path.py --dry-run: the real detectors of the benchmark, tiny images, on CPU.

Checks that the benchmark runs end to end from the repository (as benchmarks/gpu_check.sh
calls it) and writes its report; the numbers themselves are measured in benchmarks/RESULTS.md.
"""
import re

import pytest

pytestmark = pytest.mark.benchmarks

ARMS = ('fine-tuned', 'stock frozen', 'fast frozen')


def test_frozen_path_dry_run_writes_the_report(tmp_path, run_tool):
    out = tmp_path / 'frozen_path.md'
    run_tool(['benchmarks/frozen_path.py', '--device', 'cpu', '--out', str(out), '--dry-run'])
    report = out.read_text()
    assert '`benchmarks/frozen_path.py --dry-run' in report
    sections = re.split(r'^### ', report, flags=re.M)[1:]
    assert [s.split(',')[0] for s in sections] == [
        'Faster R-CNN R50-FPN', 'Cascade R-CNN R50 + NAS-FPN (LSJ)']
    number = r'\d+\.\d+'
    for section in sections:
        assert '128x128, batch 2' in section
        for arm in ARMS:
            cells = rf'\| {arm} \| {number} \[{number}-{number}\] \| {number} \[{number}-{number}\]'
            assert re.search(cells, section), (arm, section)
        assert re.search(rf'fast trunk forward / stock frozen trunk forward: \*\*{number}x\*\* '
                         r'\(target <= 0.6x', section)
        assert re.search(rf'fast frozen step / stock frozen step: \*\*{number}x\*\* '
                         r'\(target <= 0.9x', section)
        # ResNet-50: the stem's BatchNorm, three per bottleneck (16), four downsample shortcuts
        assert 'BatchNorms folded in the fast trunk: 53;' in section


def test_frozen_path_refuses_gpu_options_on_cpu(tmp_path, run_tool):
    proc = run_tool(['benchmarks/frozen_path.py', '--device', 'cpu', '--out',
                     str(tmp_path / 'x.md'), '--amp', '--dry-run'], check=False)
    assert proc.returncode == 2 and '--amp applies on a GPU only' in proc.stderr
