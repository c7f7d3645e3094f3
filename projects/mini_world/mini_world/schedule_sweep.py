"""Does added capacity and a longer schedule close the frozen detector's gap? The paper's remedy
in the mini world (``projects/mini_world/tools/mini_schedule_sweep.py``).

Each pair of configs (a fine-tuned detector and its frozen twin, identical necks and heads) is
trained at several multiples of the mini schedule (6 epochs at the default scale, the learning
rate divided by 10 after two thirds of it, as the main job does), once per seed, by
``tools/train.py`` through the pipeline's jobs. The sweep lives in a mini reproduction's work
dir and shares its data and classifier; at 1x a run is exactly the main job's run of that config
and seed (``mini_reproduction.py``, with ``--extra-configs`` for the others), so it lives in, and
is reused from, ``runs/<config>/seed<S>``; the longer schedules get
``runs_schedule-<K>x/<config>/seed<S>``.
"""
import json
import os
import os.path as osp
import time
from dataclasses import asdict, replace
from typing import Dict, List, Optional, Sequence, Tuple

from .classifier_sweep import SWEEP_METRICS, _arm_result, _mean_std
from .pipeline import (CONFIG_DIR, DETECTOR_CONFIGS, DONE_FILE, WIDE_FINETUNE_CONFIG, Job,
                       MiniReproduction, MiniScale, run_jobs)
from .sweep_results import ScheduleResult

#: The sweep's pairs by neck: (fine-tuned config, its frozen twin).
SCHEDULE_PAIRS: Dict[str, Tuple[str, str]] = {
    'fpn': (DETECTOR_CONFIGS[0], DETECTOR_CONFIGS[1]),
    'wide-fpn': (WIDE_FINETUNE_CONFIG, DETECTOR_CONFIGS[2]),
    'nasfpn': (osp.join(CONFIG_DIR, 'faster-rcnn_r18-finetune_nasfpn_mini-lvis.py'),
               osp.join(CONFIG_DIR, 'faster-rcnn_r18-frozen_nasfpn_mini-lvis.py')),
    'cascade-nasfpn': (osp.join(CONFIG_DIR, 'cascade-rcnn_r18-finetune_nasfpn_mini-lvis.py'),
                       osp.join(CONFIG_DIR, 'cascade-rcnn_r18-frozen_nasfpn_mini-lvis.py')),
}
#: The issue's sweep: the plain FPN pair and the paper's remedy.
DEFAULT_PAIRS = ('fpn', 'cascade-nasfpn')
#: Multiples of the mini schedule.
SCHEDULES = (1, 2, 4)


class SchedulePoint(MiniReproduction):
    """One schedule length: a mini reproduction whose detectors train ``factor`` x the scale's.

    Args:
        work_dir: the mini reproduction's work dir (data and classifier shared by every point).
        scale: the scale; its ``detector_epochs`` is multiplied by ``factor``.
        factor: the multiple of the mini schedule.
        **kwargs: :class:`MiniReproduction`'s other arguments.
    """

    def __init__(self, work_dir: str, scale: MiniScale, factor: int, **kwargs) -> None:
        self.factor = factor
        super().__init__(work_dir, replace(scale, detector_epochs=scale.detector_epochs * factor),
                         **kwargs)

    def run_dir(self, config: str, seed: int) -> str:
        """Work dir of one detector run at this schedule (the main job's at 1x)."""
        if self.factor == 1:
            return super().run_dir(config, seed)
        name = osp.splitext(osp.basename(config))[0]
        return osp.join(self.work_dir, f'runs_schedule-{self.factor}x', name, f'seed{seed}')

    def detector_jobs(self) -> List[Job]:
        """The pipeline's jobs, named with their schedule."""
        jobs = super().detector_jobs()
        for job in jobs:
            job.name = f'{job.name}, {self.factor}x schedule'
        return jobs


class ScheduleSweep:
    """The sweep in ``work_dir``: data and classifier (reused), then every pair at every length.

    Args:
        work_dir: a mini reproduction's work dir (``mini_reproduction.py --work-dir``).
        scale: a :data:`.pipeline.SCALES` entry.
        schedules: multiples of the scale's detector epochs, one sweep point each.
        pairs: names of :data:`SCHEDULE_PAIRS`.
        seeds: runs per config and point (seeds ``0 .. seeds-1``).
        threads: torch threads per training process.
        jobs: training processes at once.
        force: redo finished steps (the main job's too, at 1x).
    """

    def __init__(self, work_dir: str, scale: MiniScale, schedules: Sequence[int] = SCHEDULES,
                 pairs: Sequence[str] = DEFAULT_PAIRS, seeds: int = 3, threads: int = 1,
                 jobs: int = 2, force: bool = False) -> None:
        if len(set(schedules)) != len(schedules) or not schedules or min(schedules) < 1:
            raise ValueError(f'schedules: distinct multiples >= 1, got {list(schedules)}')
        unknown = [p for p in pairs if p not in SCHEDULE_PAIRS]
        if unknown or not pairs or len(set(pairs)) != len(pairs):
            raise ValueError(f'pairs: distinct names of {sorted(SCHEDULE_PAIRS)}, '
                             f'got {list(pairs)}')
        self.work_dir = osp.abspath(work_dir)
        self.scale = scale
        self.pairs = list(pairs)
        self.seeds = seeds
        self.jobs = jobs
        configs = [config for pair in self.pairs for config in SCHEDULE_PAIRS[pair]]
        self.points = [
            SchedulePoint(work_dir, scale, factor, seeds=seeds, threads=threads, jobs=jobs,
                          force=force, detector_configs=configs) for factor in sorted(schedules)
        ]
        self.timing: Dict[str, float] = {}

    @property
    def out_dir(self) -> str:
        return osp.join(self.work_dir, 'schedule_sweep')

    def train(self) -> None:
        """Data, classifier and export (reused when done), then every detector run."""
        first = self.points[0]
        first.classification_data()
        job = first.classifier_job()
        if job is None:
            first.detection_data()
        else:
            run_jobs([job], 1, while_waiting=first.detection_data)
        first.export()
        jobs = [job for point in self.points for job in point.detector_jobs()]
        start = time.time()
        if jobs:
            run_jobs(jobs, self.jobs)
            self.timing['detectors'] = time.time() - start

    def results(self) -> List[ScheduleResult]:
        """Every pair's arms at every schedule length, read from the runs' own files."""
        results = []
        for pair in self.pairs:
            finetune, frozen = SCHEDULE_PAIRS[pair]
            for point in self.points:
                arms = [_arm_result(config, [point.run_dir(config, s) for s in range(self.seeds)])
                        for config in (finetune, frozen)]
                results.append(ScheduleResult(pair, point.factor, point.scale.detector_epochs,
                                              *arms))
        return results

    def run_times(self) -> Dict[str, float]:
        """Each run's training time (its ``done.json``), by run dir relative to the work dir."""
        times = {}
        for point in self.points:
            for run_dir in point.run_dirs():
                with open(osp.join(run_dir, DONE_FILE)) as handle:
                    times[osp.relpath(run_dir, self.work_dir)] = json.load(handle)['elapsed_s']
        return times

    def run(self, plot_file: Optional[str] = None) -> str:
        """Train what is not done, then write ``sweep.json``, ``table.md`` and the plot.

        Args:
            plot_file: the plot's path; default ``<work_dir>/schedule_sweep/gap.png``.

        Returns:
            str: the table (markdown).
        """
        from .schedule_sweep_plot import plot_schedule_gaps

        start = time.time()
        self.train()
        results = self.results()
        os.makedirs(self.out_dir, exist_ok=True)
        table = schedule_table(results, self.seeds)
        with open(osp.join(self.out_dir, 'table.md'), 'w') as handle:
            handle.write(table)
        self.plot_file = plot_schedule_gaps(results,
                                            plot_file or osp.join(self.out_dir, 'gap.png'))
        self.timing['total'] = time.time() - start
        with open(osp.join(self.out_dir, 'sweep.json'), 'w') as handle:
            json.dump(dict(results=[asdict(r) for r in results], pairs=self.pairs,
                           schedules=[p.factor for p in self.points], seeds=self.seeds,
                           scale=asdict(self.scale), jobs=self.jobs, cpus=os.cpu_count(),
                           timing_s={k: round(v, 1) for k, v in self.timing.items()},
                           run_elapsed_s=self.run_times()), handle, indent=1)
        return table


def schedule_table(results: Sequence[ScheduleResult], seeds: int) -> str:
    """The sweep as a markdown table: per pair and length, both arms and their difference.

    Args:
        results: as :meth:`ScheduleSweep.results` reads them.
        seeds: the runs per config and point.

    Returns:
        str: the table, and a line on what the columns mean.
    """
    headers = ['neck', 'schedule', 'epochs']
    for metric in SWEEP_METRICS:
        headers += [f'{metric} fine-tuned', f'{metric} frozen', f'{metric} frozen - fine-tuned']
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    for result in results:
        cells = [result.pair, f'{result.factor}x', str(result.epochs)]
        for metric in SWEEP_METRICS:
            cells += [_mean_std(result.finetune.values[metric]),
                      _mean_std(result.frozen.values[metric]), _mean_std(result.gap(metric))]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += ['', f'Box AP x100 on mini-LVIS val, mean ± std over {seeds} seed(s); '
              'frozen - fine-tuned: seed by seed, positive where the frozen detector leads.']
    return '\n'.join(lines) + '\n'
