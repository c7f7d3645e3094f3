"""Better classifier, better frozen detector? The mini world's classifier trained for several
epoch counts, each reused frozen and fine-tuned in the same detector
(``projects/mini_world/tools/mini_classifier_sweep.py``).

The sweep lives in a mini reproduction's work dir and shares its data. The point whose epoch
count is the scale's own (8 at the default scale) *is* the main job's classifier and its narrow
FPN runs (same config, data, backbone and seeds), so they are reused, not trained again; the other
points get ``classifier_<E>e/`` and ``runs_classifier-<E>e/<config>/seed<S>/``. Each point's
classifier is trained once (its config's seed); the detectors once per seed.
"""
import json
import os
import os.path as osp
import statistics
import time
from dataclasses import asdict, replace
from typing import Dict, List, Optional, Sequence

from .pipeline import DETECTOR_CONFIGS, DONE_FILE, MiniReproduction, MiniScale, run_jobs
from .sweep_results import ArmResult, PointResult

#: The narrow FPN pair: fine-tuned, then its frozen twin (the same detector but for the freeze).
SWEEP_CONFIGS = DETECTOR_CONFIGS[:2]
SWEEP_EPOCHS = (1, 2, 4, 8)
#: The metrics the sweep reports, as ``stratified_eval/summary.json`` names them.
SWEEP_METRICS = ('AP', 'APr', 'APc', 'APf')


class SweepPoint(MiniReproduction):
    """One epoch count of the sweep: a mini reproduction whose classifier trains ``epochs``.

    Args:
        work_dir: the mini reproduction's work dir (data shared by every point).
        scale: the scale; its ``classifier_epochs`` is replaced by ``epochs``.
        epochs: the classifier's training epochs at this point.
        **kwargs: :class:`MiniReproduction`'s other arguments.
    """

    def __init__(self, work_dir: str, scale: MiniScale, epochs: int, **kwargs) -> None:
        self.epochs = epochs
        self.is_main = epochs == scale.classifier_epochs
        super().__init__(work_dir, replace(scale, classifier_epochs=epochs), **kwargs)

    @property
    def classifier_dir(self) -> str:
        if self.is_main:
            return super().classifier_dir
        return osp.join(self.work_dir, f'classifier_{self.epochs}e')

    def run_dir(self, config: str, seed: int) -> str:
        """Work dir of one detector run at this point."""
        if self.is_main:
            return super().run_dir(config, seed)
        name = osp.splitext(osp.basename(config))[0]
        return osp.join(self.work_dir, f'runs_classifier-{self.epochs}e', name, f'seed{seed}')

    def top1(self) -> Optional[float]:
        """The classifier's top-1 accuracy on the world's validation set (percent)."""
        with open(osp.join(self.classifier_dir, DONE_FILE)) as handle:
            return json.load(handle).get('accuracy', {}).get('top1')


def _arm_result(config: str, run_dirs: Sequence[str]) -> ArmResult:
    from mmfrozen.compare import load_run

    runs = [load_run(d) for d in run_dirs]
    result = ArmResult(config=runs[0].name, arm=runs[0].arm)
    for metric in SWEEP_METRICS:
        values = [run.metrics.get(metric) for run in runs]
        missing = [d for d, v in zip(run_dirs, values) if v is None]
        if missing:
            raise ValueError(f'{missing[0]}/stratified_eval/summary.json: no box {metric}')
        result.values[metric] = [100 * v for v in values]
    return result


class ClassifierSweep:
    """The sweep in ``work_dir``: data, one classifier per epoch count, the detector pair.

    Args:
        work_dir: a mini reproduction's work dir (``mini_reproduction.py --work-dir``).
        scale: a :data:`.pipeline.SCALES` entry.
        epochs: the classifier's epoch counts, one sweep point each.
        seeds: detector runs per config and point (seeds ``0 .. seeds-1``).
        threads: torch threads per training process.
        jobs: training processes at once.
        force: redo finished steps (the main job's too, at its point).
        detector_configs: the fine-tuned config, then its frozen twin.
    """

    def __init__(self, work_dir: str, scale: MiniScale, epochs: Sequence[int] = SWEEP_EPOCHS,
                 seeds: int = 3, threads: int = 1, jobs: int = 2, force: bool = False,
                 detector_configs: Sequence[str] = SWEEP_CONFIGS) -> None:
        if len(detector_configs) != 2:
            raise ValueError('detector_configs: the fine-tuned config and its frozen twin, '
                             f'got {len(detector_configs)}')
        if len(set(epochs)) != len(epochs) or min(epochs) < 1:
            raise ValueError(f'epochs: distinct counts >= 1, got {list(epochs)}')
        self.work_dir = osp.abspath(work_dir)
        self.scale = scale
        self.seeds = seeds
        self.jobs = jobs
        self.detector_configs = list(detector_configs)
        self.points = [
            SweepPoint(work_dir, scale, e, seeds=seeds, threads=threads, jobs=jobs, force=force,
                       detector_configs=detector_configs) for e in sorted(epochs)
        ]
        self.timing: Dict[str, float] = {}

    @property
    def out_dir(self) -> str:
        return osp.join(self.work_dir, 'classifier_sweep')

    def train(self) -> None:
        """Data, classifiers (``jobs`` at a time), exports, then every detector run."""
        first = self.points[0]
        first.classification_data()
        classifier_jobs = []
        for point in self.points:
            job = point.classifier_job()
            if job is not None:
                job.name = f'classifier {point.epochs} epoch(s)'
                classifier_jobs.append(job)
        start = time.time()
        if classifier_jobs:
            run_jobs(classifier_jobs, self.jobs, while_waiting=first.detection_data)
            self.timing['classifiers'] = time.time() - start
        else:
            first.detection_data()
        for point in self.points:
            point.export()
        detector_jobs = []
        for point in self.points:  # fewest epochs first: a cut-short sweep has whole points
            for job in point.detector_jobs():
                job.name = f'{job.name}, classifier {point.epochs} epoch(s)'
                detector_jobs.append(job)
        start = time.time()
        if detector_jobs:
            run_jobs(detector_jobs, self.jobs)
            self.timing['detectors'] = time.time() - start

    def results(self) -> List[PointResult]:
        """Every point's classifier top-1 and detector metrics, read from the work dirs."""
        finetune, frozen = self.detector_configs
        results = []
        for point in self.points:
            results.append(PointResult(
                epochs=point.epochs, top1=point.top1(),
                finetune=_arm_result(finetune, [point.run_dir(finetune, s)
                                                for s in range(self.seeds)]),
                frozen=_arm_result(frozen, [point.run_dir(frozen, s)
                                            for s in range(self.seeds)])))
        return results

    def run(self, plot_file: Optional[str] = None) -> str:
        """Train what is not done, then write ``sweep.json``, ``table.md`` and the plot.

        Args:
            plot_file: the plot's path; default ``<work_dir>/classifier_sweep/sweep.png``.

        Returns:
            str: the table (markdown).
        """
        from .classifier_sweep_plot import plot_sweep

        start = time.time()
        self.train()
        results = self.results()
        os.makedirs(self.out_dir, exist_ok=True)
        table = sweep_table(results, self.seeds)
        with open(osp.join(self.out_dir, 'table.md'), 'w') as handle:
            handle.write(table)
        self.plot_file = plot_sweep(results, plot_file or osp.join(self.out_dir, 'sweep.png'))
        self.timing['total'] = time.time() - start
        with open(osp.join(self.out_dir, 'sweep.json'), 'w') as handle:
            json.dump(dict(points=[asdict(r) for r in results], seeds=self.seeds,
                           scale=asdict(self.scale), jobs=self.jobs, cpus=os.cpu_count(),
                           timing_s={k: round(v, 1) for k, v in self.timing.items()}),
                      handle, indent=1)
        return table


def _mean_std(values: Sequence[float]) -> str:
    text = f'{statistics.fmean(values):.1f}'
    if len(values) > 1:
        text += f' ± {statistics.stdev(values):.1f}'
    return text


def sweep_table(results: Sequence[PointResult], seeds: int) -> str:
    """The sweep as a markdown table: per point, top-1 and both arms' AP and APr (mean ± std).

    Args:
        results: the points, as :meth:`ClassifierSweep.results` reads them.
        seeds: the detector runs per config and point.

    Returns:
        str: the table, and a line on what the ± means.
    """
    headers = ['classifier epochs', 'top-1 (%)']
    for metric in SWEEP_METRICS:
        headers += [f'{metric} fine-tuned', f'{metric} frozen', f'{metric} gap']
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    for point in results:
        cells = [str(point.epochs), f'{point.top1:.1f}']
        for metric in SWEEP_METRICS:
            cells += [_mean_std(point.finetune.values[metric]),
                      _mean_std(point.frozen.values[metric]), _mean_std(point.gap(metric))]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += ['', f'Box AP x100 on mini-LVIS val, mean ± std over {seeds} detector seed(s); '
              'gap: fine-tuned minus frozen, seed by seed. One classifier per row.']
    return '\n'.join(lines) + '\n'
