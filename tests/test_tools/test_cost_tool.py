"""tools/cost.py on a tiny detector and its frozen variant: the table, ratios and JSON."""
import json
import os.path as osp

import pytest

from mmfrozen.testing import TINY_FASTER_RCNN


@pytest.mark.runs
def test_cost_tool_compares_frozen_with_finetuned(tmp_path, run_tool):
    frozen_config = tmp_path / 'faster-rcnn_r18-tiny-frozen_fpn_coco.py'
    frozen_config.write_text(f'_base_ = {TINY_FASTER_RCNN!r}\n'
                             "model = dict(backbone=dict(frozen_stages=4, norm_eval=True))\n"
                             "frozen = dict(modules=['backbone'])\n")
    out = tmp_path / 'cost.json'
    proc = run_tool([
        'tools/cost.py', TINY_FASTER_RCNN,
        str(frozen_config), '--device', 'cpu', '--steps', '2', '--warmup', '0', '--out',
        str(out)
    ])

    report = json.loads(out.read_text())
    assert 'cores' in report['machine']
    finetuned, frozen = report['results']
    for result in (finetuned, frozen):
        assert result['batch_size'] == 4  # the config's train batch size
        assert result['shape'] == [128, 128]  # its Resize scale
        assert result['input_shape'] == [128, 128]  # a multiple of pad_size_divisor=32
        assert len(result['step_times_s']) == 2
        assert result['peak_memory_source'] == 'model_estimate'
    assert frozen['frozen_modules'] == ['backbone']
    assert frozen['params']['backbone']['trainable'] == 0
    ratios = frozen['ratio_to_first']
    assert ratios['train_gflops_per_image'] == (
        frozen['train_gflops_per_image'] / finetuned['train_gflops_per_image'])
    assert ratios['saved_activations_mb'] == (
        frozen['saved_activations_mb'] / finetuned['saved_activations_mb'])
    assert ratios['step_time_s'] == frozen['step_time_s'] / finetuned['step_time_s']
    assert ratios['train_gflops_per_image'] < 1 and ratios['saved_activations_mb'] < 1
    assert all(r == 1 for r in finetuned['ratio_to_first'].values())

    rows = [line for line in proc.stdout.splitlines() if line.startswith('| ')]
    assert rows[1].startswith('| ' + osp.splitext(osp.basename(TINY_FASTER_RCNN))[0] + ' |')
    assert rows[2].startswith('| faster-rcnn_r18-tiny-frozen_fpn_coco |')
    assert f'({ratios["train_gflops_per_image"]:.2f}x)' in rows[2]
    assert f'({ratios["saved_activations_mb"]:.2f}x)' in rows[2]
    assert 'model-based estimate' in proc.stdout


@pytest.mark.runs
def test_cost_tool_names_a_missing_config(tmp_path, run_tool):
    missing = str(tmp_path / 'nope.py')
    proc = run_tool(['tools/cost.py', missing], check=False)
    assert proc.returncode != 0
    assert missing in proc.stderr
