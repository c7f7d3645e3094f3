"""benchmarks/gpu_check.sh --dry-run: the GPU check's script runs end to end on a CPU."""
import re
import subprocess

import pytest

pytestmark = pytest.mark.benchmarks

COST_ROWS = ('faster-rcnn_r50-finetune_fpn_1x_coco', 'faster-rcnn_r50-frozen_fpn_1x_coco',
             'cascade-rcnn_r50-finetune_nasfpn_lsj-1x_coco',
             'cascade-rcnn_r50-frozen_nasfpn_lsj-1x_coco')


def table_rows(text: str, first_cell: str) -> list:
    return [line.split(' | ') for line in text.splitlines() if line.startswith(f'| {first_cell}')]


def test_dry_run_writes_every_section(tmp_path, repo_root, tool_env):
    out = tmp_path / 'gpu_check.md'
    # frozen_path.py's own dry run has its own test; the rest of the script runs here
    proc = subprocess.run(['bash', 'benchmarks/gpu_check.sh', '--dry-run', '--skip', 'frozen_path',
                           '--out', str(out)], cwd=repo_root, env=tool_env(), capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert 'DRY RUN on CPU' in text and 'no figure below is a GPU measurement' in text
    assert 'skipped (--skip frozen_path)' in text
    # tools/cost.py, full precision and --amp (a CPU measures full precision): every config
    for config in COST_ROWS:
        rows = table_rows(text, config)
        assert len(rows) == 2, config
        for row in rows:
            # 128x160 images, padded to the model's size divisor (NAS-FPN: 128)
            assert row[1] in ('128x160', '128x256') and float(row[3]) > 0 and float(row[4]) > 0
            assert row[6] == '-'  # no reserved memory on a CPU
    assert 'mmcv RoIAlign and RoIPool' in text
    # 2 training iterations per arm through tools/train.py, with CostReportHook's figures
    finetune, = table_rows(text, 'finetune')
    frozen, = table_rows(text, 'frozen')
    assert finetune[1] == frozen[1] == '2'
    assert 0 < float(frozen[2]) < float(finetune[2])  # trainable parameters (M)
    assert re.search(r'Measurements took \d+ s', text)
