"""Time and peak memory of an evaluation, for the log."""
import os
import resource
import sys
import threading
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

from mmengine.logging import print_log

_PAGE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096


def _status_bytes(field: str) -> Optional[int]:
    """``VmHWM``/``VmRSS`` of this process from /proc (Linux), else None."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _rss_bytes() -> Optional[int]:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return None


def _children_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024


class _PeakSampler(threading.Thread):
    """Samples this process's resident set every ``interval`` seconds, keeping the largest.

    The high-water mark (VmHWM) is exact but covers the process's whole life, and resetting it
    would change what other tools read (``ru_maxrss``, e.g. CostReportHook's peak memory): where
    the evaluation does not set a new high-water mark, the sampled peak is what it used.
    """

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = _rss_bytes() or 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes() or 0)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, _rss_bytes() or 0)


@contextmanager
def measure(what: str) -> Iterator[Dict[str, float]]:
    """Measure the wall time and peak memory of the block and log them.

    Args:
        what: what is measured, for the log line.

    Yields:
        dict: filled on exit with ``time_s``, ``peak_rss_gb`` (this process's resident set,
        GiB) and ``workers_peak_rss_gb`` (the largest worker process, if any ran).
    """
    hwm_before = _status_bytes('VmHWM')
    children_before = _children_peak_bytes()
    sampler = _PeakSampler()
    sampler.start()
    start = time.perf_counter()
    stats: Dict[str, float] = {}
    try:
        yield stats
    finally:
        stats['time_s'] = time.perf_counter() - start
        peak = sampler.stop()
    hwm_after = _status_bytes('VmHWM')
    if hwm_before is not None and hwm_after is not None and hwm_after > hwm_before:
        peak = max(peak, hwm_after)  # a new high-water mark: exact
    stats['peak_rss_gb'] = peak / 1024**3
    text = (f'{what}: {stats["time_s"]:.1f} s, peak memory {stats["peak_rss_gb"]:.2f} GiB '
            '(this process)')
    children = _children_peak_bytes()
    if children > children_before:
        stats['workers_peak_rss_gb'] = children / 1024**3
        text += f', {stats["workers_peak_rss_gb"]:.2f} GiB (largest worker)'
    print_log(text, logger='current')
