"""Record the training cost of a real run and write it to ``<work_dir>/cost.json``."""
import contextlib
import json
import logging
import os.path as osp
import resource
import statistics
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_gather, get_rank, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner.base_loop import BaseLoop

from ...cost.flops import TrainingFlopCounter, watch_backward
from ...cost.memory import MB, count_parameters
from ...utils import atomic_write, unwrap_model

CUDA_PEAK = 'cuda_max_memory_allocated'
CPU_PEAK = 'cpu_max_rss'


@HOOKS.register_module()
class CostReportHook(Hook):
    """Record a training run's cost: parameters, FLOPs, peak memory, step and data time.

    Writes ``<work_dir>/<out_file>`` (rank 0, atomically) at the end of training, every
    ``interval`` iterations, at each epoch's end, and when training raises (an error,
    ``KeyboardInterrupt``): then with ``"complete": false``. A run killed outright (SIGKILL)
    leaves the last periodic file.

    The file::

        {"config": str, "world_size": int,
         "params": {"total", "trainable", "backbone": {"total", "trainable"}, "neck", "heads"},
         "train_gflops_per_image": float|null, "train_gflops_forward_per_image": float|null,
         "train_gflops_backward_per_image": float|null,
         "peak_memory_mb": float, "peak_memory_source": "cuda_max_memory_allocated"|"cpu_max_rss",
         "peak_memory_mb_per_rank": [float], "peak_memory_reserved_mb": float|null,
         "time_per_iter_s": float|null, "data_time_s": float|null, "iters": int,
         "complete": bool}

    FLOPs are counted with ``FlopCounterMode`` on one training iteration of this rank (see
    :mod:`mmfrozen.cost.flops` for what is counted) and divided by its batch size. Peak memory
    is the maximum over ranks of ``torch.cuda.max_memory_allocated`` (or of the process's
    maximum resident set size on a CPU); on a GPU ``peak_memory_reserved_mb`` is the maximum of
    ``torch.cuda.max_memory_reserved``, what the caching allocator held. Iteration and data
    time are MMEngine's own, those ``IterTimerHook`` (a default hook) puts in the message hub
    as ``train/time`` and ``train/data_time`` and the log shows as ``time`` and ``data_time``:
    means over the iterations after ``warmup_iters``, leaving out the FLOP-counted one (null
    without ``IterTimerHook``). ``iters`` is the number of iterations this run completed.

    Args:
        count_flops: count training FLOPs on one iteration (it runs slower, and is left out
            of the timing).
        flops_iter: which iteration of this run (0-based) to count.
        warmup_iters: iterations left out of the timing at the start.
        interval: also write the file every this many iterations.
        out_file: file name under the work dir.
    """

    # After IterTimerHook (NORMAL, 50), which updates the times read here, and before LoggerHook
    # (BELOW_NORMAL, 60), whose LogProcessor resets CUDA's peak memory stats when it logs: read
    # later, the peak would cover only the iterations since the last log line.
    priority = 55

    def __init__(self,
                 count_flops: bool = True,
                 flops_iter: int = 1,
                 warmup_iters: int = 1,
                 interval: int = 50,
                 out_file: str = 'cost.json') -> None:
        self.count_flops = count_flops
        self.flops_iter = flops_iter
        self.warmup_iters = warmup_iters
        self.interval = interval
        self.out_file = out_file
        self._iters = 0
        self._iter_times: List[float] = []
        self._data_times: List[float] = []
        self._flops: Dict[str, Optional[float]] = dict.fromkeys(
            ('train_gflops_per_image', 'train_gflops_forward_per_image',
             'train_gflops_backward_per_image'))
        self._counting: Optional[contextlib.ExitStack] = None
        self._counter: Optional[TrainingFlopCounter] = None
        self._batch_size = 1
        self._peak_per_rank: List[List[float]] = []
        self._cuda_peak = [0.0, 0.0]  # allocated, reserved (MB), kept across LoggerHook's resets

    # ---------------------------------------------------------------------------------------
    # hooks
    # ---------------------------------------------------------------------------------------
    def before_run(self, runner) -> None:
        """Wrap the training loop so that an exception still leaves a cost file."""
        loop = getattr(runner, '_train_loop', None)
        if not isinstance(loop, BaseLoop):  # a test or validation run
            return
        run = loop.run

        def run_and_record(*args: Any, **kwargs: Any) -> Any:
            try:
                return run(*args, **kwargs)
            except BaseException:
                self._write_after_error(runner)
                raise

        loop.run = run_and_record

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        if self.count_flops and self._iters == self.flops_iter:
            self._batch_size = _batch_size(data_batch, runner)
            self._start_counting(runner)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Any = None) -> None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            self._cuda_peak = [
                max(self._cuda_peak[0], torch.cuda.max_memory_allocated() / MB),
                max(self._cuda_peak[1], torch.cuda.max_memory_reserved() / MB)
            ]
        if self._counting is not None:
            self._stop_counting()
        elif self._iters >= self.warmup_iters:
            self._record_times(runner)
        self._iters += 1
        if self.interval and self._iters % self.interval == 0:
            self._write(runner, complete=False)

    def after_train_epoch(self, runner) -> None:
        self._write(runner, complete=False)

    def after_train(self, runner) -> None:
        self._write(runner, complete=True)

    def _record_times(self, runner) -> None:
        """Keep this iteration's ``train/time`` and ``train/data_time`` from the message hub.

        ``IterTimerHook`` (priority NORMAL) has updated both by now: this hook runs after it.
        """
        scalars = runner.message_hub.log_scalars
        if 'train/time' not in scalars:  # no IterTimerHook in this run
            return
        self._iter_times.append(float(scalars['train/time'].current()))
        if 'train/data_time' in scalars:
            self._data_times.append(float(scalars['train/data_time'].current()))

    # ---------------------------------------------------------------------------------------
    # FLOPs
    # ---------------------------------------------------------------------------------------
    def _start_counting(self, runner) -> None:
        counter = TrainingFlopCounter()
        stack = contextlib.ExitStack()
        stack.enter_context(
            watch_backward(runner.optim_wrapper, counter.mark_backward_start,
                           counter.mark_backward_end))
        stack.enter_context(counter)
        self._counter, self._counting = counter, stack

    def _stop_counting(self, record: bool = True) -> None:
        """Stop counting FLOPs; keep the count only if the iteration finished (``record``)."""
        if self._counting is None:
            return
        self._counting.close()
        self._counting = None
        if not record:
            return
        counter, per_image = self._counter, 1e9 * self._batch_size
        forward, backward = counter.forward / per_image, counter.backward / per_image
        self._flops = dict(
            train_gflops_per_image=forward + backward,
            train_gflops_forward_per_image=forward,
            train_gflops_backward_per_image=backward)

    # ---------------------------------------------------------------------------------------
    # report
    # ---------------------------------------------------------------------------------------
    def _peak_memory(self, runner, collective: bool) -> Tuple[List[List[float]], str]:
        """Peak memory of every rank in MB, ``[allocated, reserved]``, and how it was measured.

        On a CPU "allocated" is the process's maximum resident set size and "reserved" 0.
        With ``collective`` every rank is asked (all ranks call this at the same point);
        otherwise this rank updates its own entry of the last list gathered.
        """
        on_cuda = any(p.is_cuda for p in unwrap_model(runner.model).parameters())
        if on_cuda:
            local = [
                max(self._cuda_peak[0], torch.cuda.max_memory_allocated() / MB),
                max(self._cuda_peak[1], torch.cuda.max_memory_reserved() / MB)
            ]
            source = CUDA_PEAK
        else:  # ru_maxrss is in KiB on Linux
            local = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0.0]
            source = CPU_PEAK
        if collective:
            gathered = all_gather(torch.tensor(local, dtype=torch.float64))
            self._peak_per_rank = [[float(v) for v in t.tolist()] for t in gathered]
        else:
            rank = get_rank()
            per_rank = self._peak_per_rank or [[0.0, 0.0] for _ in range(get_world_size())]
            per_rank[rank] = [max(old, new) for old, new in zip(per_rank[rank], local)]
            self._peak_per_rank = per_rank
        return [list(peaks) for peaks in self._peak_per_rank], source

    def report(self, runner, complete: bool, collective: bool = True) -> dict:
        """The cost so far, in the ``cost.json`` format.

        Args:
            runner: the runner.
            complete: whether training finished.
            collective: whether every rank calls this now, so the peak memory can be reduced
                over ranks (not so after an exception on one rank).

        Returns:
            dict: the report.
        """
        per_rank, source = self._peak_memory(runner, collective)
        allocated = [peaks[0] for peaks in per_rank]
        return dict(
            config=str(getattr(runner.cfg, 'filename', None) or ''),
            world_size=get_world_size(),
            params=count_parameters(runner.model),
            **self._flops,
            peak_memory_mb=max(allocated),
            peak_memory_source=source,
            peak_memory_mb_per_rank=allocated,
            peak_memory_reserved_mb=(max(peaks[1] for peaks in per_rank)
                                     if source == CUDA_PEAK else None),
            time_per_iter_s=statistics.fmean(self._iter_times) if self._iter_times else None,
            data_time_s=statistics.fmean(self._data_times) if self._data_times else None,
            iters=self._iters,
            complete=complete)

    def _write_after_error(self, runner) -> None:
        """Write what there is, without masking the error that stopped training."""
        try:
            self._stop_counting(record=False)  # a partial count would mislead
            self._write(runner, complete=False, collective=False)
        except Exception as err:  # noqa: BLE001  the training error matters more
            print_log(
                f'CostReportHook could not write {self.out_file}: {err!r}',
                logger='current',
                level=logging.WARNING)

    def _write(self, runner, complete: bool, collective: bool = True) -> None:
        report = self.report(runner, complete, collective)
        if not is_main_process():
            return
        path = osp.join(runner.work_dir, self.out_file)
        with atomic_write(path) as tmp_path, open(tmp_path, 'w') as f:
            json.dump(report, f, indent=2)
        if complete or not collective:
            print_log(f'training cost written to {path}', logger='current')


def _batch_size(data_batch: Any, runner) -> int:
    """Images in a training batch."""
    if isinstance(data_batch, dict) and 'inputs' in data_batch:
        return len(data_batch['inputs'])
    if isinstance(data_batch, (list, tuple)):
        return len(data_batch)
    return int(runner.train_dataloader.batch_size or 1)
