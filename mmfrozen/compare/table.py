"""The comparison table: runs grouped by config, each value beside its difference to a baseline.

Runs of the same config (seeds) are one row: mean, and the standard deviation when there are
several. Metrics are shown in AP points (x100) with their difference to the baseline row;
costs with their ratio to it.
"""
import csv
import io
import json
import statistics
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .run_summary import RunSummary

METRIC_COLUMNS = ('AP', 'AP50', 'APr', 'APc', 'APf')
COST_COLUMNS: Tuple[Tuple[str, str, float, str], ...] = (
    # key, header, scale, format
    ('trainable_params', 'trainable params (M)', 1e-6, '{:.2f}'),
    ('train_gflops_per_image', 'train GFLOPs/img', 1.0, '{:.2f}'),
    ('peak_memory_mb', 'peak mem (MB)', 1.0, '{:.0f}'),
    ('time_per_iter_s', 's/iter', 1.0, '{:.3f}'),
)


@dataclass
class Cell:
    """One value of the table: mean over seeds, spread and the baseline comparison."""
    mean: Optional[float]
    std: Optional[float] = None
    n: int = 0
    delta: Optional[float] = None  # metrics: difference; costs: ratio


@dataclass
class Row:
    """One config's runs."""
    name: str
    arm: str
    work_dirs: List[str]
    cells: Dict[str, Cell] = field(default_factory=dict)


@dataclass
class ComparisonTable:
    """Rows, the columns they share, the baseline and the notes on missing files."""
    rows: List[Row]
    metric_columns: List[str]
    baseline: str
    notes: List[str]

    def to_markdown(self) -> str:
        """The table as GitHub markdown, notes below it."""
        headers = ['config', 'arm', 'runs']
        headers += [f'{c} (x100)' for c in self.metric_columns]
        headers += [header for _, header, _, _ in COST_COLUMNS]
        lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
        for row in self.rows:
            cells = [row.name + (' (baseline)' if row.name == self.baseline else ''), row.arm,
                     str(len(row.work_dirs))]
            cells += [_format_metric(row.cells[c], row.name == self.baseline)
                      for c in self.metric_columns]
            cells += [_format_cost(row.cells[key], scale, fmt, row.name == self.baseline)
                      for key, _, scale, fmt in COST_COLUMNS]
            lines.append('| ' + ' | '.join(cells) + ' |')
        if self.notes:
            lines += [''] + [f'- {note}' for note in self.notes]
        return '\n'.join(lines) + '\n'

    def to_records(self) -> List[dict]:
        """One flat dict per row: ``<col>``, ``<col>_std``, ``<col>_n``, ``<col>_delta``."""
        records = []
        for row in self.rows:
            record: dict = dict(config=row.name, arm=row.arm, runs=len(row.work_dirs),
                                baseline=row.name == self.baseline, work_dirs=row.work_dirs)
            for key, cell in row.cells.items():
                record[key] = cell.mean
                record[f'{key}_std'] = cell.std
                record[f'{key}_n'] = cell.n
                record[f'{key}_delta' if key in self.metric_columns else f'{key}_ratio'] = \
                    cell.delta
            records.append(record)
        return records

    def to_json(self) -> str:
        """Rows and notes as JSON."""
        return json.dumps(dict(baseline=self.baseline, rows=self.to_records(),
                               notes=self.notes), indent=2)

    def to_csv(self) -> str:
        """Rows as CSV (work dirs joined by ';')."""
        records = self.to_records()
        buf = io.StringIO()
        fields = list(records[0]) if records else ['config']
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        for record in records:
            writer.writerow({k: (';'.join(v) if isinstance(v, list) else v)
                             for k, v in record.items()})
        return buf.getvalue()


def _format_metric(cell: Cell, is_baseline: bool) -> str:
    if cell.mean is None:
        return '-'
    text = f'{100 * cell.mean:.1f}'
    if cell.std is not None:
        text += f' ± {100 * cell.std:.1f}'
    if cell.delta is not None and not is_baseline:
        text += f' ({100 * cell.delta:+.1f})'
    return text


def _format_cost(cell: Cell, scale: float, fmt: str, is_baseline: bool) -> str:
    if cell.mean is None:
        return '-'
    text = fmt.format(cell.mean * scale)
    if cell.delta is not None and not is_baseline:
        text += f' (x{cell.delta:.2f})'
    return text


def _cell(values: Sequence[Optional[float]]) -> Cell:
    present = [v for v in values if v is not None]
    if not present:
        return Cell(mean=None)
    std = statistics.stdev(present) if len(present) > 1 else None
    return Cell(mean=statistics.fmean(present), std=std, n=len(present))


def build_table(runs: Sequence[RunSummary], baseline: Optional[str] = None) -> ComparisonTable:
    """Group runs by config and compare every row with the baseline row.

    Args:
        runs: the runs, in the order their rows should appear (first seen first).
        baseline: the baseline config's name; default: the first row.

    Returns:
        ComparisonTable: the table.

    Raises:
        ValueError: no runs, or ``baseline`` names no run.
    """
    if not runs:
        raise ValueError('no runs to compare')
    groups: Dict[str, List[RunSummary]] = {}
    for run in runs:
        groups.setdefault(run.name, []).append(run)
    baseline = baseline or next(iter(groups))
    if baseline not in groups:
        raise ValueError(f'baseline {baseline!r} is none of the runs: {sorted(groups)}')

    metric_columns = [c for c in METRIC_COLUMNS if any(c in r.metrics for r in runs)]
    for run in runs:  # annotation bins with a value somewhere, in the order they were written
        for key, value in run.metrics.items():
            if key.startswith('AP[') and key not in metric_columns and value is not None:
                metric_columns.append(key)

    rows = []
    for name, members in groups.items():
        row = Row(name=name, arm=members[0].arm, work_dirs=[m.work_dir for m in members])
        for col in metric_columns:
            row.cells[col] = _cell([m.metrics.get(col) for m in members])
        for key, _, _, _ in COST_COLUMNS:
            row.cells[key] = _cell([m.cost.get(key) for m in members])
        rows.append(row)

    base = next(r for r in rows if r.name == baseline)
    for row in rows:
        for col, cell in row.cells.items():
            ref = base.cells[col].mean
            if cell.mean is None or ref is None:
                continue
            if col in metric_columns:
                cell.delta = cell.mean - ref
            elif ref:
                cell.delta = cell.mean / ref
    notes = [f'{osp_name(r.work_dir)}: {note}' for r in runs for note in r.notes]
    return ComparisonTable(rows=rows, metric_columns=metric_columns, baseline=baseline,
                           notes=notes)


def osp_name(path: str) -> str:
    """A work dir as shown in notes: its last two path parts."""
    parts = path.rstrip('/').split('/')
    return '/'.join(parts[-2:])
