"""tools/compare.py on hand-made work dirs, including runs with missing files."""
import json
import os.path as osp

import pytest
from mmfrozen.compare import build_table, load_run

PRETRAINED = "dict(type='Pretrained', checkpoint='classifier.pth')"


def make_run(root, name, *, config, summary=None, cost=None, per_class=None, logged=None):
    """Write a work dir as MMEngine and mmfrozen leave it."""
    work_dir = root / name
    work_dir.mkdir(parents=True)
    (work_dir / f'{config}.py').write_text(config_text(config))
    if summary is not None:
        (work_dir / 'stratified_eval').mkdir()
        (work_dir / 'stratified_eval' / 'summary.json').write_text(json.dumps(summary))
        if per_class is not None:
            (work_dir / 'stratified_eval' / 'bbox_per_class.json').write_text(
                json.dumps(per_class))
    if cost is not None:
        (work_dir / 'cost.json').write_text(json.dumps(cost))
    if logged is not None:
        (work_dir / '20261126_120000').mkdir()
        (work_dir / '20261126_120000' / '20261126_120000.json').write_text(json.dumps(logged))
    return str(work_dir)


def config_text(config: str) -> str:
    init = 'None' if 'scratch' in config else PRETRAINED
    text = f'model = dict(type="FasterRCNN", backbone=dict(type="ResNet", init_cfg={init}))\n'
    if 'frozen' in config:
        text += "frozen = dict(modules=['backbone'], check=True)\n"
    return text


def summary(ap, apr, apc, apf, bins):
    return dict(dataset='lvis', num_images=10, bbox=dict(
        AP=ap, AP50=ap + 0.2, AP75=None, APr=apr, APc=apc, APf=apf,
        bins={**{k: dict(AP=v, num_classes=3) for k, v in bins.items()},
              '>1000': dict(AP=None, num_classes=0)}))


def cost(trainable, gflops, mem, t):
    return dict(params=dict(total=1_000_000, trainable=trainable), train_gflops_per_image=gflops,
                peak_memory_mb=mem, time_per_iter_s=t, complete=True)


def per_class(aps):
    """Rows as the stratified metrics write ``bbox_per_class.json``."""
    counts = [5, 50, 500]
    return [dict(category_id=i + 1, name=f'c{i}', frequency='rcf'[i], train_images=n,
                 train_instances=n, AP=ap, AP50=ap) for i, (ap, n) in enumerate(zip(aps, counts))]


@pytest.fixture
def runs(tmp_path):
    ft = make_run(tmp_path, 'ft', config='det_r18-finetune_mini',
                  summary=summary(0.30, 0.10, 0.30, 0.50, {'1-10': 0.1, '11-100': 0.3}),
                  cost=cost(800_000, 10.0, 400.0, 0.5), per_class=per_class([0.1, 0.3, 0.5]))
    fz0 = make_run(tmp_path, 'fz_seed0', config='det_r18-frozen_mini',
                   summary=summary(0.32, 0.20, 0.30, 0.46, {'1-10': 0.2, '11-100': 0.3}),
                   cost=cost(200_000, 7.5, 300.0, 0.4), per_class=per_class([0.2, 0.3, 0.46]))
    fz1 = make_run(tmp_path, 'fz_seed1', config='det_r18-frozen_mini',
                   summary=summary(0.34, 0.24, 0.32, 0.46, {'1-10': 0.2, '11-100': 0.3}),
                   cost=cost(200_000, 7.5, 300.0, 0.6))
    bare = make_run(tmp_path, 'bare', config='det_r18-scratch_mini')
    return ft, fz0, fz1, bare


def test_rows_group_seeds_and_compare_with_baseline(runs):
    table = build_table([load_run(d) for d in runs])
    ft, fz, bare = table.rows
    assert (ft.arm, fz.arm, bare.arm) == ('finetune', 'frozen', 'scratch')
    assert table.baseline == 'det_r18-finetune_mini'
    assert len(fz.work_dirs) == 2
    assert fz.cells['AP'].mean == pytest.approx(0.33)
    assert fz.cells['AP'].std == pytest.approx(0.0141421356, rel=1e-6)
    assert fz.cells['APr'].delta == pytest.approx(0.12)
    assert fz.cells['AP[1-10]'].delta == pytest.approx(0.1)
    assert fz.cells['train_gflops_per_image'].delta == pytest.approx(0.75)
    assert fz.cells['time_per_iter_s'].mean == pytest.approx(0.5)
    # a bin without classes in any run ('>1000' here) gets no column
    assert table.metric_columns == ['AP', 'AP50', 'APr', 'APc', 'APf', 'AP[1-10]', 'AP[11-100]']


def test_missing_files_show_dash_and_a_note(runs):
    table = build_table([load_run(d) for d in runs])
    text = table.to_markdown()
    bare_line = next(line for line in text.splitlines() if 'scratch_mini' in line)
    assert bare_line.count('| - ') >= 5
    assert any('no cost.json' in n and 'bare' in n for n in table.notes)
    assert any('no stratified_eval/summary.json' in n for n in table.notes)


def test_logged_mmdet_metrics_are_used_without_a_stratified_summary(tmp_path):
    run = load_run(make_run(tmp_path, 'stock', config='det_r18-finetune_mini',
                            logged={'coco/bbox_mAP': 0.25, 'coco/bbox_mAP_50': 0.5}))
    assert run.metrics == {'AP': 0.25, 'AP50': 0.5}


def test_baseline_option_and_unknown_baseline(runs):
    table = build_table([load_run(d) for d in runs], baseline='det_r18-frozen_mini')
    assert table.rows[0].cells['AP'].delta == pytest.approx(0.30 - 0.33)
    with pytest.raises(ValueError, match='baseline'):
        build_table([load_run(d) for d in runs], baseline='nope')


@pytest.mark.runs
def test_cli_formats_and_plot(runs, tmp_path, run_tool):
    root = osp.dirname(runs[0])
    proc = run_tool(['tools/compare.py', osp.join(root, '*'), '--baseline',
                     'det_r18-finetune_mini', '--plot-dir', str(tmp_path / 'plots'),
                     '--out', str(tmp_path / 'table.md')])
    assert '| det_r18-frozen_mini | frozen | 2 | 33.0 ± 1.4 (+3.0)' in proc.stdout
    assert (tmp_path / 'table.md').read_text() in proc.stdout
    assert (tmp_path / 'plots' / 'metrics.png').stat().st_size > 1000
    # per-class AP difference vs training annotations, frozen against the fine-tuned baseline
    assert (tmp_path / 'plots' / 'delta_det_r18-frozen_mini.png').stat().st_size > 1000
    data = json.loads(run_tool(['tools/compare.py', *runs, '--format', 'json']).stdout)
    assert [r['config'] for r in data['rows']] == [
        'det_r18-finetune_mini', 'det_r18-frozen_mini', 'det_r18-scratch_mini']
    assert data['rows'][1]['APr_delta'] == pytest.approx(0.12)
    csv_text = run_tool(['tools/compare.py', *runs, '--format', 'csv']).stdout
    assert csv_text.splitlines()[0].startswith('config,arm,runs')


@pytest.mark.runs
def test_missing_work_dir_is_a_clear_error(tmp_path, run_tool):
    proc = run_tool(['tools/compare.py', str(tmp_path / 'nope*')], check=False)
    assert proc.returncode != 0 and 'matches no work dir' in proc.stderr
