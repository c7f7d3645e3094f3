"""Read what one run left in its work dir: config, stratified metrics, cost.

A run is an MMEngine work dir. Its files, written by mmfrozen and MMEngine:

- ``<config>.py``: the config the runner dumped;
- ``stratified_eval/summary.json`` and ``stratified_eval/{bbox,segm}_per_class.json``: the
  stratified metrics (``LVISStratifiedMetric`` / ``CocoStratifiedMetric``);
- ``cost.json``: ``CostReportHook``'s training-cost record;
- ``<timestamp>/<timestamp>.json`` or ``<timestamp>/vis_data/scalars.json``: the metrics that
  MMDetection's own evaluators logged (used when there is no stratified summary).

Whatever is missing is left ``None`` and noted, never an error.
"""
import glob
import json
import math
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..utils import config_arm

# MMDetection's logged metric names -> our column names, per data set flavour.
_MMDET_KEYS = {
    'AP': ('lvis/bbox_AP', 'coco/bbox_mAP', 'pascal_voc/mAP'),
    'AP50': ('lvis/bbox_AP50', 'coco/bbox_mAP_50', 'pascal_voc/AP50'),
    'AP75': ('lvis/bbox_AP75', 'coco/bbox_mAP_75'),
    'APr': ('lvis/bbox_APr', ),
    'APc': ('lvis/bbox_APc', ),
    'APf': ('lvis/bbox_APf', ),
}


@dataclass
class RunSummary:
    """What the compare table shows of one run.

    Attributes:
        work_dir: the run's work dir.
        name: the config's name (file name without ``.py``).
        arm: ``'frozen'``, ``'finetune'``, ``'scratch'`` or ``'stage2'``
            (:func:`mmfrozen.utils.config_arm`).
        metrics: box metrics as fractions in [0, 1] (``AP``, ``AP50``, ``APr``, ...,
            ``AP[1-10]`` for annotation bins).
        cost: ``trainable_params``, ``total_params``, ``train_gflops_per_image``,
            ``peak_memory_mb``, ``time_per_iter_s``.
        per_class_json: the per-class box AP table, if written.
        notes: what was missing.
    """
    work_dir: str
    name: str
    arm: str = '-'
    metrics: Dict[str, Optional[float]] = field(default_factory=dict)
    cost: Dict[str, Optional[float]] = field(default_factory=dict)
    per_class_json: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def _read_json(path: str) -> Optional[Any]:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise ValueError(f'{path} is not valid JSON: {err}') from err


def _number(value: Any) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _find_config(work_dir: str) -> Optional[str]:
    dumped = sorted(glob.glob(osp.join(work_dir, '*.py')))
    return dumped[0] if dumped else None


def _stratified_metrics(summary: Dict[str, Any]) -> Dict[str, Optional[float]]:
    box = summary.get('bbox') or {}
    metrics = {key: _number(box.get(key)) for key in _MMDET_KEYS if key in box}
    for bin_name, entry in (box.get('bins') or {}).items():
        metrics[f'AP[{bin_name}]'] = _number(entry.get('AP'))
    return metrics


def _logged_metrics(work_dir: str) -> Dict[str, Optional[float]]:
    """The last metrics MMDetection's evaluators logged (test json, else val scalars)."""
    records: List[Dict[str, Any]] = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', '*.json'))):
        record = _read_json(path)
        if isinstance(record, dict):
            records.append(record)
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    metrics: Dict[str, Optional[float]] = {}
    for record in records:
        for ours, theirs in _MMDET_KEYS.items():
            for key in theirs:
                if key in record:
                    metrics[ours] = _number(record[key])
    return metrics


def _cost(cost: Dict[str, Any]) -> Dict[str, Optional[float]]:
    params = cost.get('params') or {}
    return {
        'trainable_params': _number(params.get('trainable')),
        'total_params': _number(params.get('total')),
        'train_gflops_per_image': _number(cost.get('train_gflops_per_image')),
        'peak_memory_mb': _number(cost.get('peak_memory_mb')),
        'time_per_iter_s': _number(cost.get('time_per_iter_s')),
    }


def load_run(work_dir: str) -> RunSummary:
    """Read one run's work dir.

    Args:
        work_dir: an MMEngine work dir.

    Returns:
        RunSummary: what was found; ``notes`` says what was not.
    """
    from mmengine.config import Config

    work_dir = osp.abspath(work_dir)
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'{work_dir} is not a directory (a run\'s work dir)')
    config_path = _find_config(work_dir)
    name = osp.splitext(osp.basename(config_path))[0] if config_path else osp.basename(work_dir)
    run = RunSummary(work_dir=work_dir, name=name)
    if config_path:
        run.arm = config_arm(name, Config.fromfile(config_path))
    else:
        run.notes.append('no dumped config (<work_dir>/*.py): arm unknown')

    summary = _read_json(osp.join(work_dir, 'stratified_eval', 'summary.json'))
    if summary:
        run.metrics = _stratified_metrics(summary)
        per_class = osp.join(work_dir, 'stratified_eval', 'bbox_per_class.json')
        run.per_class_json = per_class if osp.isfile(per_class) else None
    else:
        run.metrics = _logged_metrics(work_dir)
        run.notes.append('no stratified_eval/summary.json: no annotation bins' +
                         ('' if run.metrics else ', and no logged metrics'))

    cost = _read_json(osp.join(work_dir, 'cost.json'))
    if cost:
        run.cost = _cost(cost)
        if cost.get('complete') is False:
            run.notes.append('cost.json is from an interrupted run')
    else:
        run.notes.append('no cost.json (add CostReportHook to custom_hooks)')
    return run
