"""Write and print the stratified evaluation: summary.json, per-class CSV/JSON, tables.

Files (the compare tool reads these names):

- ``summary.json``: ``{"bbox": {"AP", "AP50", ..., "bins": {label: {"AP", "num_classes",
  ...}}, "frequency_groups": {...}}, "segm": {...}, "dataset": "lvis"|"coco",
  "num_images": n}``; NaN is written as ``null``.
- ``{iou_type}_per_class.csv`` and ``.json``: one row per class with the fields
  ``category_id, name, frequency, train_images, train_instances, AP, AP50`` (and
  ``class_groups``, the names of the class's groups, where the metric has ``class_groups``);
  without training counts ``bins`` is empty and the counts are null. With class groups,
  ``summary.json`` has ``"class_groups": {name: {"AP", "AP50", "AP75", "num_classes",
  ...}}`` per IoU type too.
"""
import csv
import json
import math
import os
import os.path as osp
from typing import Any, Dict, List, Sequence

import numpy as np
from terminaltables import AsciiTable

from .stratified_result import GROUP_FIELD, PER_CLASS_FIELDS, StratifiedResult

SUMMARY_FILE = 'summary.json'


def nan_to_none(value: Any) -> Any:
    """Replace NaN floats by None and NumPy scalars by Python's, recursively (for JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    return value


def _write_json(obj: Any, path: str) -> None:
    # Write then rename: a crash mid-write never leaves a truncated file behind.
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump(nan_to_none(obj), f, indent=1, allow_nan=False)
    os.replace(tmp, path)


def write_per_class(rows: Sequence[Dict[str, Any]], out_dir: str, iou_type: str) -> List[str]:
    """Write ``{iou_type}_per_class.csv`` and ``.json`` under ``out_dir``.

    Returns:
        list: the two paths.
    """
    os.makedirs(out_dir, exist_ok=True)
    csv_path = osp.join(out_dir, f'{iou_type}_per_class.csv')
    json_path = osp.join(out_dir, f'{iou_type}_per_class.json')
    fields = PER_CLASS_FIELDS + ((GROUP_FIELD, ) if rows and GROUP_FIELD in rows[0] else ())
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ('' if isinstance(row[k], float) and math.isnan(row[k])
                                 else row[k]) for k in fields})
    _write_json([{k: row[k] for k in fields} for row in rows], json_path)
    return [csv_path, json_path]


def read_per_class(path: str) -> List[Dict[str, Any]]:
    """Read a ``*_per_class.json`` file (null AP read as NaN).

    Raises:
        ValueError: the file is not a list of rows with ``train_instances`` and ``AP``.
    """
    with open(path) as f:
        rows = json.load(f)
    if not isinstance(rows, list):
        raise ValueError(f'{path!r}: expected a list of per-class rows.')
    for i, row in enumerate(rows):
        for key in ('category_id', 'train_instances', 'AP'):
            if key not in row:
                raise ValueError(f'{path!r}: row {i} has no field "{key}".')
        row['AP'] = float('nan') if row['AP'] is None else float(row['AP'])
    return rows


def build_summary(results: Sequence[StratifiedResult], dataset: str,
                  num_images: int) -> Dict[str, Any]:
    """The ``summary.json`` content of one evaluation."""
    summary: Dict[str, Any] = {r.iou_type: r.summary() for r in results}
    summary.update(dataset=dataset, num_images=int(num_images))
    return summary


def write_summary(summary: Dict[str, Any], out_dir: str) -> str:
    """Write ``summary.json`` under ``out_dir`` and return its path."""
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, SUMMARY_FILE)
    _write_json(summary, path)
    return path


def _fmt(value: float) -> str:
    return '-' if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f'{100 * value:.1f}'


def format_tables(result: StratifiedResult) -> str:
    """Human-readable tables: headline metrics, then AP per bin, per frequency group and per
    class group (each where there is one)."""
    head = AsciiTable([list(result.headline), [_fmt(v) for v in result.headline.values()]],
                      title=f' {result.iou_type} (AP x 100) ')
    tables = [head.table]
    if result.bins:
        strata = [['training instances', 'classes', 'with GT', 'AP']]
        for label, value in result.bins.items():
            strata.append([label, value['num_classes'], value['num_classes_evaluated'],
                           _fmt(value['AP'])])
        tables.append(AsciiTable(strata).table)
    if result.frequency_groups:
        groups = [['frequency (training images)', 'classes', 'with GT', 'AP']]
        names = dict(r='r (1-10)', c='c (11-100)', f='f (>100)')
        for label, value in result.frequency_groups.items():
            groups.append([names.get(label, label), value['num_classes'],
                           value['num_classes_evaluated'], _fmt(value['AP'])])
        tables.append(AsciiTable(groups).table)
    if result.class_groups:
        named = [['class group', 'classes', 'with GT', 'AP', 'AP50', 'AP75']]
        for label, value in result.class_groups.items():
            named.append([label, value['num_classes'], value['num_classes_evaluated'],
                          _fmt(value['AP']), _fmt(value['AP50']), _fmt(value['AP75'])])
        tables.append(AsciiTable(named).table)
    return '\n'.join(tables)
