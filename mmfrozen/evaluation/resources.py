"""Time and peak memory of an evaluation, for the log."""
import resource
import sys
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

from mmengine.logging import print_log


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> Optional[int]:
    """This process's peak RSS since the last reset (VmHWM), else since it started."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024


def _children_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024


@contextmanager
def measure(what: str) -> Iterator[Dict[str, float]]:
    """Measure the wall time and peak memory of the block and log them.

    Args:
        what: what is measured, for the log line.

    Yields:
        dict: filled on exit with ``time_s``, ``peak_rss_gb`` (this process) and
        ``workers_peak_rss_gb`` (the largest worker process, if any ran).
    """
    since_reset = _reset_peak_rss()
    children_before = _children_peak_bytes()
    start = time.perf_counter()
    stats: Dict[str, float] = {}
    yield stats
    stats['time_s'] = time.perf_counter() - start
    stats['peak_rss_gb'] = (_peak_rss_bytes() or 0) / 1024**3
    children = _children_peak_bytes()
    text = (f'{what}: {stats["time_s"]:.1f} s, peak memory {stats["peak_rss_gb"]:.2f} GiB '
            f'(this process{"" if since_reset else ", since it started"})')
    if children > children_before:
        stats['workers_peak_rss_gb'] = children / 1024**3
        text += f', {stats["workers_peak_rss_gb"]:.2f} GiB (largest worker)'
    print_log(text, logger='current')
