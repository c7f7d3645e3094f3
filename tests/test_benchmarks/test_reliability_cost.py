"""benchmarks/reliability_cost.py --dry-run: the real detectors, hooks and datasets, tiny sizes.

Checks that the benchmark runs end to end from the repository and writes its report, and what
its rows must show whatever the machine: the frozen arm trains and saves less than the
fine-tuned one, and the checked LVIS dataset keeps the images MMDetection's keeps. The numbers
themselves are measured in benchmarks/RESULTS.md.
"""
import re

import pytest

pytestmark = pytest.mark.benchmarks

NUMBER = r'(\d+(?:\.\d+)?)'
#: The atomic save's extra time: a difference, below zero where the saves' noise is larger.
SIGNED = r'(-?\d+(?:\.\d+)?)'


def test_reliability_cost_dry_run_writes_the_report(tmp_path, run_tool):
    out = tmp_path / 'reliability_cost.md'
    proc = run_tool(['benchmarks/reliability_cost.py', '--dry-run', '--out', str(out)],
                    timeout=1200)
    report = out.read_text()
    assert report.strip() in proc.stdout
    assert report.startswith('## Reliable runs, what they cost (`python benchmarks/'
                             'reliability_cost.py --dry-run')
    assert re.search(r'^Machine: .+, torch .+, 1 thread\(s\); load average', report, re.M)
    sections = re.split(r'^### ', report, flags=re.M)[1:]
    assert [s.split(':')[0] for s in sections] == [
        'NaN check and atomic checkpoints', 'Checked data']

    detectors = {}
    for arm in ('frozen', 'fine-tuned'):
        row = re.search(rf'^\| {arm} \|' + rf' {NUMBER}%? \|' * 8 + rf' {SIGNED}x \| '
                        rf'{SIGNED}% \|$', sections[0], re.M)
        assert row, (arm, sections[0])
        detectors[arm] = [float(v) for v in row.groups()]
    assert '128x128, batch 2' in sections[0]
    trained, checkpoint_mb = 0, 5
    # ResNet-50's stages 1-4 frozen: fewer trained weights, no optimizer state for them
    assert detectors['frozen'][trained] < detectors['fine-tuned'][trained]
    assert detectors['frozen'][checkpoint_mb] < detectors['fine-tuned'][checkpoint_mb]
    for values in detectors.values():
        assert all(v > 0 for v in values[1:4]), values  # step times and the check alone

    assert '(300 images, ' in sections[1] and '1,203 categories' in sections[1]
    kept = {}
    for cls_name in ('LVISV1Dataset', 'CheckedLVISV1Dataset'):
        row = re.search(rf'^\| {cls_name} \| {NUMBER} \| {NUMBER}x \| {NUMBER} \| '
                        r'([\d,]+) \|$', sections[1], re.M)
        assert row, (cls_name, sections[1])
        kept[cls_name] = int(row.group(4).replace(',', ''))
        assert float(row.group(3)) > 0
    assert kept['CheckedLVISV1Dataset'] == kept['LVISV1Dataset'] > 0
