"""Tables of training-cost measurements, with each row's ratio to the first."""
import os
import os.path as osp
import platform
from typing import Dict, List, Optional, Sequence

#: (key, header, how many decimals); ratios are reported for each of these.
RATIO_METRICS = (
    ('trainable_params_m', 'trainable params (M)', 2),
    ('train_gflops_per_image', 'train GFLOPs/img', 1),
    ('train_gflops_forward_per_image', 'fwd GFLOPs/img', 1),
    ('train_gflops_backward_per_image', 'bwd GFLOPs/img', 1),
    ('saved_activations_mb', 'saved act. (MB)', 0),
    ('state_mb', 'params+grads+opt (MB)', 0),
    ('peak_memory_mb', 'peak mem. (MB)', 0),
    ('step_time_s', 'step (s)', 3),
)


def machine_name() -> str:
    """The CPU model and core count (from /proc/cpuinfo where there is one) and the OS."""
    model = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    return f'{model}, {cores} cores, {platform.system()}'


def _metrics(result: dict) -> Dict[str, Optional[float]]:
    """The numbers a table row shows, derived from a measurement."""
    metrics = {key: result.get(key) for key, _, _ in RATIO_METRICS}
    metrics['trainable_params_m'] = result['params']['trainable'] / 1e6
    metrics['state_mb'] = (result['params_mb'] + result['grads_mb'] + result['optimizer_state_mb'])
    return metrics


def add_ratios(results: Sequence[dict]) -> List[dict]:
    """Add ``ratio_to_first`` (metric -> this value / the first result's) to each result.

    Returns:
        list[dict]: the same dicts, each with a ``ratio_to_first`` entry (None where the first
        value is zero or missing).
    """
    if not results:
        return []
    first = _metrics(results[0])
    for result in results:
        mine = _metrics(result)
        result['ratio_to_first'] = {
            key: (mine[key] / first[key] if first[key] and mine[key] is not None else None)
            for key in first
        }
    return list(results)


def config_name(path: str) -> str:
    """A config's name: its file name without ``.py``."""
    return osp.splitext(osp.basename(path))[0]


def _adapter_params(result: dict) -> int:
    """Parameters of a measured model's adapters (0 in a measurement without the count)."""
    return result['params'].get('adapters', {}).get('total', 0)


def format_cost_table(results: Sequence[dict]) -> str:
    """A markdown table: one row per measurement, each value with its ratio to the first row's.

    Args:
        results: measurements from :func:`mmfrozen.cost.measure_training_cost`, with
            ``ratio_to_first`` added by :func:`add_ratios`.

    Returns:
        str: the table.
    """
    # a column for adapters' parameters where a model has them (LoRA, residual adapters)
    adapted = any(_adapter_params(result) for result in results)
    headers = ['config', 'input', 'params (M)'] + (['adapter params (M)'] if adapted else []) + [
        header for _, header, _ in RATIO_METRICS]
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    for index, result in enumerate(results):
        metrics = _metrics(result)
        height, width = result.get('input_shape') or result['shape']
        cells = [
            config_name(result['config']), f'{height}x{width}',
            f'{result["params"]["total"] / 1e6:.2f}'
        ] + ([f'{_adapter_params(result) / 1e6:.2f}'] if adapted else [])
        for key, _, decimals in RATIO_METRICS:
            value = metrics[key]
            cell = '-' if value is None else f'{value:.{decimals}f}'
            ratio = result.get('ratio_to_first', {}).get(key)
            if index > 0 and ratio is not None:
                cell += f' ({ratio:.2f}x)'
            cells.append(cell)
        lines.append('| ' + ' | '.join(cells) + ' |')
    estimates = {r['peak_memory_source'] for r in results}
    if 'model_estimate' in estimates:
        lines.append('')
        lines.append('peak mem. on a CPU is a model-based estimate (params + grads + optimizer '
                     'state + saved activations), not a measurement.')
    return '\n'.join(lines)
