"""The steps of the mini reproduction, each resumable, run by ``tools/mini_reproduction.py``.

1. ``classification-data``: render the world's balanced classification set (and a contact
   sheet of its classes, ``data/world_classes.png``).
2. ``classifier``: train the classifier (``tools/train.py``, MMEngine's runner) while
   ``detection-data`` renders the long-tailed LVIS v1-format detection set alongside.
3. ``export``: write the classifier's backbone as a detector backbone checkpoint.
4. ``detectors``: train and evaluate each detection config (``tools/train.py``; the validation
   at the end runs ``LVISStratifiedMetric``, ``CostReportHook`` records the cost), once per seed,
   ``jobs`` at a time.
5. ``compare``: ``tools/compare.py`` on all runs: the table (mean ± std over seeds) and plots.

A finished step leaves ``done.json`` in its folder and is skipped next time, unless ``force``.
An interrupted training resumes from its last epoch's checkpoint.
"""
import functools
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.logging import print_log

from mmfrozen.utils import atomic_write
from .lvis_data import LongTailSpec, choose_vocabulary, write_mini_lvis
from .world import world_classes

#: This project (``projects/mini_world``) and the repository it lives in, whose ``tools/`` run
#: the trainings.
PROJECT_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO_ROOT = osp.dirname(osp.dirname(PROJECT_DIR))
CONFIG_DIR = osp.join(PROJECT_DIR, 'configs')
CLASSIFIER_CONFIG = osp.join(CONFIG_DIR, 'classifier_r18-w16_8e_mini-world.py')
DETECTOR_CONFIGS = tuple(osp.join(CONFIG_DIR, name) for name in (
    'faster-rcnn_r18-finetune_fpn_mini-lvis.py',
    'faster-rcnn_r18-frozen_fpn_mini-lvis.py',
    'faster-rcnn_r18-frozen_wide-fpn_mini-lvis.py',
))
#: The fine-tuned twin of the wide detector, for ``--extra-configs`` (the 3-seed table).
WIDE_FINETUNE_CONFIG = osp.join(CONFIG_DIR, 'faster-rcnn_r18-finetune_wide-fpn_mini-lvis.py')
BACKBONE_FILE = 'backbone_r18-w16.pth'
DONE_FILE = 'done.json'
PROGRESS_INTERVAL_S = 30.0


@dataclass(frozen=True)
class MiniScale:
    """Sizes of one mini reproduction.

    Attributes:
        world: ``world_classes`` arguments (``num_shapes``, ``num_colours``, ``num_textures``).
        classification_train_per_class: training images per class, upstream.
        classification_val_per_class: validation images per class, upstream.
        classification_image_size: side of the classification images.
        classifier_epochs: upstream training epochs.
        detection: the long-tailed detection set.
        detector_epochs: downstream training epochs.
        seed: the world's seed (data); detector seeds are ``0 .. seeds-1``.
    """

    world: Dict[str, int]
    classification_train_per_class: int
    classification_val_per_class: int
    classification_image_size: int
    classifier_epochs: int
    detection: LongTailSpec
    detector_epochs: int
    seed: int = 0


SCALES: Dict[str, MiniScale] = {
    'default': MiniScale(
        world=dict(num_shapes=8, num_colours=4, num_textures=2),
        classification_train_per_class=150,
        classification_val_per_class=20,
        classification_image_size=48,
        classifier_epochs=8,
        detection=LongTailSpec(),
        detector_epochs=6),
    # For the test suite: every step on every code path, in seconds rather than minutes.
    'tiny': MiniScale(
        world=dict(num_shapes=3, num_colours=2, num_textures=2),
        classification_train_per_class=16,
        classification_val_per_class=4,
        classification_image_size=48,
        classifier_epochs=1,
        detection=LongTailSpec(
            num_frequent=1, num_common=2, num_rare=3, frequent_images=(101, 101),
            common_images=(11, 20), val_images_per_category=3, distractor_prob=0.3),
        detector_epochs=1),
}


@dataclass
class Job:
    """A tool run as a subprocess, its output going to ``log_file``."""

    name: str
    args: List[str]
    log_file: str
    threads: int
    on_success: Optional[Callable[['Job'], None]] = None
    process: Optional[subprocess.Popen] = None
    started: float = 0.0
    handle: Optional[object] = None
    last_report: float = field(default=0.0)


def _status(message: str) -> None:
    print_log(f'[mini] {message}', logger='current')


def _done_file(folder: str) -> str:
    return osp.join(folder, DONE_FILE)


def is_done(folder: str) -> bool:
    """Whether the step that owns ``folder`` finished (its ``done.json`` exists)."""
    return osp.isfile(_done_file(folder))


def mark_done(folder: str, step: str, elapsed_s: float, **details) -> None:
    """Write ``folder/done.json``: the step, its duration and what it produced."""
    os.makedirs(folder, exist_ok=True)
    record = dict(step=step, elapsed_s=round(elapsed_s, 1),
                  finished=time.strftime('%Y-%m-%d %H:%M:%S'), **details)
    with atomic_write(_done_file(folder)) as tmp, open(tmp, 'w') as handle:
        json.dump(record, handle, indent=1)


def tool_env(threads: int) -> dict:
    """Environment of a tool subprocess: ``threads`` torch threads, the repository importable."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p))
    return env


def _last_progress_line(log_file: str) -> str:
    """The last ``Epoch(...)`` line of an MMEngine log, shortened for a status line."""
    try:
        with open(log_file, 'rb') as handle:
            handle.seek(max(0, osp.getsize(log_file) - 8192))
            lines = handle.read().decode(errors='replace').splitlines()
    except OSError:
        return ''
    for line in reversed(lines):
        if 'Epoch(' in line:
            text = line[line.index('Epoch('):]
            return text[:110]
    return 'building, or before the first logged iteration'


def _start(job: Job) -> None:
    os.makedirs(osp.dirname(job.log_file), exist_ok=True)
    job.handle = open(job.log_file, 'a')
    job.started = job.last_report = time.time()
    job.process = subprocess.Popen([sys.executable, *job.args], cwd=REPO_ROOT,
                                   env=tool_env(job.threads), stdout=job.handle,
                                   stderr=subprocess.STDOUT)
    _status(f'{job.name}: started ({job.threads} thread(s)), log {job.log_file}')


def _poll(job: Job) -> Optional[int]:
    """The job's exit code once it ended (then its log is closed); reports progress meanwhile."""
    code = job.process.poll()
    now = time.time()
    if code is None:
        if now - job.last_report >= PROGRESS_INTERVAL_S:
            job.last_report = now
            _status(f'{job.name}: {now - job.started:.0f}s, {_last_progress_line(job.log_file)}')
        return None
    job.handle.close()
    if code == 0:
        if job.on_success is not None:
            job.on_success(job)
        _status(f'{job.name}: done in {now - job.started:.0f}s')
    else:
        _status(f'{job.name}: FAILED (exit {code}) after {now - job.started:.0f}s; '
                f'see {job.log_file}')
    return code


def run_jobs(jobs: Sequence[Job], max_parallel: int,
             while_waiting: Optional[Callable[[], None]] = None) -> None:
    """Run ``jobs``, ``max_parallel`` at a time, with a status line per job now and then.

    Args:
        jobs: the jobs, started in this order.
        max_parallel: how many run at once.
        while_waiting: work done in this process once the first jobs are started.

    Raises:
        RuntimeError: a job failed; the message names it and its log. The others still run.
    """
    pending, running, failed = list(jobs), [], []
    try:
        while pending or running:
            while pending and len(running) < max_parallel:
                running.append(pending.pop(0))
                _start(running[-1])
            if while_waiting is not None:
                while_waiting()
                while_waiting = None
            time.sleep(1.0)
            for job in list(running):
                code = _poll(job)
                if code is not None:
                    running.remove(job)
                    if code != 0:
                        failed.append(job)
    finally:
        # Interrupted (Ctrl-C, an error here): stop the trainings; the next run resumes them
        # from their last epoch's checkpoint.
        for job in running:
            job.process.terminate()
            job.process.wait()
            job.handle.close()
            _status(f'{job.name}: stopped; the next run resumes it')
    if failed:
        tails = []
        for job in failed:
            with open(job.log_file, errors='replace') as handle:
                tails.append(f'--- {job.name} ({job.log_file}), last lines:\n'
                             + ''.join(handle.readlines()[-25:]))
        raise RuntimeError('mini reproduction: step(s) failed: '
                           + ', '.join(job.name for job in failed) + '\n' + '\n'.join(tails))


NUM_CLASSES_OPTION = 'model.roi_head.bbox_head.num_classes='


@functools.lru_cache(maxsize=None)
def box_head_stages(config: str) -> int:
    """How many box heads a detector config lists (Cascade R-CNN's stages); 0 for one head."""
    from mmengine.config import Config

    heads = Config.fromfile(config).model.roi_head.bbox_head
    return len(heads) if isinstance(heads, (list, tuple)) else 0


def per_stage_options(args: List[str], stages: int) -> List[str]:
    """``args`` with the box head's ``num_classes`` option given to each of ``stages`` heads.

    MMEngine's ``--cfg-options`` address a list's items by index only
    (``model.roi_head.bbox_head.0.num_classes``), so the one option for a single head
    (:func:`detector_options`) becomes one per stage.

    Args:
        args: a training job's arguments.
        stages: the config's box heads (0: one head, the arguments are returned as they are).

    Returns:
        list[str]: the arguments.
    """
    if not stages:
        return list(args)
    out = []
    for arg in args:
        if arg.startswith(NUM_CLASSES_OPTION):
            value = arg[len(NUM_CLASSES_OPTION):]
            out += [f'model.roi_head.bbox_head.{i}.num_classes={value}' for i in range(stages)]
        else:
            out.append(arg)
    return out


def _options(values: Dict[str, object]) -> List[str]:
    """``--cfg-options`` arguments from a dict (lists written as ``[a,b]``)."""
    args = ['--cfg-options']
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            value = '[' + ','.join(str(v) for v in value) + ']'
        args.append(f'{key}={value}')
    return args


class MiniReproduction:
    """The mini reproduction in ``work_dir``: data, classifier, detectors, comparison.

    Args:
        work_dir: where everything goes.
        scale: a :data:`SCALES` entry.
        seeds: detector runs per config (seeds ``0 .. seeds-1``).
        threads: torch threads per training process.
        jobs: training processes at once.
        force: redo finished steps.
        detector_configs: the detection configs to train (default :data:`DETECTOR_CONFIGS`).
    """

    def __init__(self, work_dir: str, scale: MiniScale, seeds: int = 1, threads: int = 1,
                 jobs: int = 2, force: bool = False,
                 detector_configs: Sequence[str] = DETECTOR_CONFIGS) -> None:
        self.work_dir = osp.abspath(work_dir)
        self.scale = scale
        self.seeds = seeds
        self.threads = threads
        self.jobs = jobs
        self.force = force
        self.detector_configs = list(detector_configs)
        self.classes = world_classes(**scale.world)
        vocabulary, _ = choose_vocabulary(self.classes, scale.detection, scale.seed)
        self.vocabulary = [self.classes[i].name for i in vocabulary]
        self.timing: Dict[str, float] = {}

    # ---------------------------------------------------------------- paths
    @property
    def classification_dir(self) -> str:
        return osp.join(self.work_dir, 'data', 'classification')

    @property
    def detection_dir(self) -> str:
        return osp.join(self.work_dir, 'data', 'mini_lvis')

    @property
    def classifier_dir(self) -> str:
        return osp.join(self.work_dir, 'classifier')

    @property
    def backbone_file(self) -> str:
        return osp.join(self.classifier_dir, BACKBONE_FILE)

    @property
    def compare_dir(self) -> str:
        return osp.join(self.work_dir, 'compare')

    def run_dir(self, config: str, seed: int) -> str:
        """Work dir of one detector run."""
        name = osp.splitext(osp.basename(config))[0]
        return osp.join(self.work_dir, 'runs', name, f'seed{seed}')

    def run_dirs(self) -> List[str]:
        """Every detector run's work dir."""
        return [self.run_dir(c, s) for c in self.detector_configs for s in range(self.seeds)]

    # ---------------------------------------------------------------- steps
    def _skip(self, folder: str, step: str) -> bool:
        if self.force and osp.isdir(folder):
            shutil.rmtree(folder)
        if is_done(folder):
            _status(f'{step}: done before, reused ({folder}; --force redoes it)')
            return True
        return False

    def _timed(self, step: str, folder: str, func: Callable[[], dict]) -> None:
        if self._skip(folder, step):
            return
        _status(f'{step}: running')
        start = time.time()
        details = func() or {}
        elapsed = time.time() - start
        self.timing[step] = elapsed
        mark_done(folder, step, elapsed, **details)
        _status(f'{step}: done in {elapsed:.0f}s')

    def classification_data(self) -> None:
        """Step 1: the classification set (``train.npz``, ``val.npz``) and a contact sheet."""
        from .classification_data import save_montage, write_classification_split
        from .world import image_rng, render_object_image

        def work() -> dict:
            scale = self.scale
            for split, per_class in (('train', scale.classification_train_per_class),
                                     ('val', scale.classification_val_per_class)):
                write_classification_split(osp.join(self.classification_dir, f'{split}.npz'),
                                           self.classes, per_class,
                                           scale.classification_image_size, scale.seed, split)
            samples = [render_object_image(image_rng(scale.seed, 99, i), self.classes, i,
                                           scale.classification_image_size)
                       for i in range(len(self.classes))]
            sheet = save_montage(samples, osp.join(self.classification_dir, 'world_classes.png'),
                                 columns=self.scale.world['num_colours']
                                 * self.scale.world['num_textures'])
            return dict(classes=len(self.classes), contact_sheet=sheet)

        self._timed('classification-data', self.classification_dir, work)

    def detection_data(self) -> None:
        """The long-tailed LVIS v1-format detection set."""

        def work() -> dict:
            paths = write_mini_lvis(self.detection_dir, self.classes, self.scale.detection,
                                    self.scale.seed)
            return dict(annotations=paths, vocabulary=self.vocabulary)

        self._timed('detection-data', self.detection_dir, work)

    def classifier_job(self) -> Optional[Job]:
        """Step 2's training job, or None when it is done already."""
        if self._skip(self.classifier_dir, 'classifier'):
            return None
        epochs = self.scale.classifier_epochs
        data = self.classification_dir
        args = ['tools/train.py', CLASSIFIER_CONFIG, '--work-dir', self.classifier_dir]
        if osp.isfile(osp.join(self.classifier_dir, 'last_checkpoint')):
            args.append('--resume')
        args += _options({
            'train_dataloader.dataset.data_file': osp.join(data, 'train.npz'),
            'val_dataloader.dataset.data_file': osp.join(data, 'val.npz'),
            'test_dataloader.dataset.data_file': osp.join(data, 'val.npz'),
            'model.num_classes': len(self.classes),
            'train_cfg.max_epochs': epochs,
            'train_cfg.val_interval': epochs,
            'param_scheduler.1.end': epochs,
            'param_scheduler.1.T_max': epochs,
        })

        def finish(job: Job) -> None:
            elapsed = time.time() - job.started
            self.timing['classifier'] = elapsed
            mark_done(self.classifier_dir, 'classifier', elapsed,
                      accuracy=self.classifier_accuracy())

        return Job('classifier', args, osp.join(self.classifier_dir, 'train.log'),
                   threads=self.threads, on_success=finish)

    def classifier_accuracy(self) -> Dict[str, float]:
        """The classifier's last validation accuracy, from its MMEngine scalar log."""
        accuracy: Dict[str, float] = {}
        pattern = osp.join(self.classifier_dir, '*', 'vis_data', 'scalars.json')
        for path in sorted(glob.glob(pattern)):
            with open(path) as handle:
                for line in handle:
                    record = json.loads(line)
                    for key in ('classification/top1', 'classification/top5'):
                        if key in record:
                            accuracy[key.split('/')[1]] = record[key]
        return accuracy

    def export(self) -> None:
        """Step 3: the classifier's backbone as a detector backbone checkpoint."""
        from .backbone_export import export_backbone

        def work() -> dict:
            with open(osp.join(self.classifier_dir, 'last_checkpoint')) as handle:
                checkpoint = handle.read().strip()
            with open(_done_file(self.classifier_dir)) as handle:
                accuracy = json.load(handle).get('accuracy', {})
            export_backbone(checkpoint, self.backbone_file,
                            meta=dict(classes=len(self.classes), accuracy=accuracy))
            return dict(checkpoint=self.backbone_file, source=checkpoint)

        self._timed('export', osp.join(self.classifier_dir, 'export'), work)

    def detector_jobs(self) -> List[Job]:
        """Step 4's jobs: one per config and seed that is not done yet."""
        jobs = []
        root = self.detection_dir + '/'
        epochs = self.scale.detector_epochs
        for seed in range(self.seeds):
            # The configs widen towards the end of the list: starting the heaviest first keeps
            # both cores busy until the end instead of leaving it to run alone.
            for config in reversed(self.detector_configs):
                run_dir = self.run_dir(config, seed)
                name = f'{osp.splitext(osp.basename(config))[0]} seed {seed}'
                if self._skip(run_dir, name):
                    continue
                args = ['tools/train.py', config, '--work-dir', run_dir]
                if osp.isfile(osp.join(run_dir, 'last_checkpoint')):
                    args.append('--resume')
                args += _options(detector_options(root, self.backbone_file, self.vocabulary,
                                                  epochs, seed))
                args = per_stage_options(args, box_head_stages(config))
                jobs.append(Job(name, args, osp.join(run_dir, 'train.log'), self.threads,
                                on_success=_mark_job_done))
        return jobs

    def compare(self) -> str:
        """Step 5: ``tools/compare.py`` on every run; returns the table (markdown)."""
        os.makedirs(self.compare_dir, exist_ok=True)
        table_file = osp.join(self.compare_dir, 'table.md')
        baseline = osp.splitext(osp.basename(self.detector_configs[0]))[0]
        args = [sys.executable, 'tools/compare.py', *self.run_dirs(), '--baseline', baseline,
                '--out', table_file, '--plot-dir', self.compare_dir]
        proc = subprocess.run(args, cwd=REPO_ROOT, env=tool_env(self.threads),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f'tools/compare.py failed ({proc.returncode}):\n'
                               f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
        # The same table for programs, from the library the tool prints with.
        from mmfrozen.compare import build_table, load_run
        table = build_table([load_run(d) for d in self.run_dirs()], baseline=baseline)
        with open(osp.join(self.compare_dir, 'table.json'), 'w') as handle:
            handle.write(table.to_json())
        return proc.stdout

    # ---------------------------------------------------------------- all
    def run(self) -> str:
        """Every step; returns what ``tools/compare.py`` printed."""
        start = time.time()
        os.makedirs(self.work_dir, exist_ok=True)
        self.classification_data()
        job = self.classifier_job()
        if job is None:
            self.detection_data()
        else:
            run_jobs([job], 1, while_waiting=self.detection_data)
        self.export()
        jobs = self.detector_jobs()
        if jobs:
            step_start = time.time()
            run_jobs(jobs, self.jobs)
            self.timing['detectors'] = time.time() - step_start
        step_start = time.time()
        table = self.compare()
        self.timing['compare'] = time.time() - step_start
        self.timing['total'] = time.time() - start
        with open(osp.join(self.work_dir, 'timing.json'), 'w') as handle:
            json.dump(dict(timing_s={k: round(v, 1) for k, v in self.timing.items()},
                           scale=asdict(self.scale), seeds=self.seeds, threads=self.threads,
                           jobs=self.jobs, cpus=os.cpu_count()), handle, indent=1)
        return table


def detector_options(data_root: str, backbone_file: str, classes: Sequence[str], epochs: int,
                     seed: int) -> Dict[str, object]:
    """``--cfg-options`` that point a detector of ``configs/`` at a mini reproduction's files.

    Args:
        data_root: the mini-LVIS root (with ``annotations/``), ending in ``/``.
        backbone_file: the exported backbone checkpoint.
        classes: the vocabulary's names, in category id order.
        epochs: training epochs (validation runs at the end).
        seed: the run's random seed.

    Returns:
        dict: option name to value.
    """
    train_ann = data_root + 'annotations/lvis_v1_train.json'
    val_ann = data_root + 'annotations/lvis_v1_val.json'
    options: Dict[str, object] = {
        'train_dataloader.dataset.dataset.data_root': data_root,
        'train_dataloader.dataset.dataset.metainfo.classes': list(classes),
        'model.backbone.init_cfg.checkpoint': backbone_file,
        'model.roi_head.bbox_head.num_classes': len(classes),
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs,
        'param_scheduler.1.end': epochs,
        'param_scheduler.1.milestones': [max(1, epochs * 2 // 3)],
        'randomness.seed': seed,
    }
    for loader, evaluator in (('val_dataloader', 'val_evaluator'),
                              ('test_dataloader', 'test_evaluator')):
        options[f'{loader}.dataset.data_root'] = data_root
        options[f'{loader}.dataset.metainfo.classes'] = list(classes)
        options[f'{evaluator}.ann_file'] = val_ann
        options[f'{evaluator}.train_ann_file'] = train_ann
    return options


def _mark_job_done(job: Job) -> None:
    mark_done(osp.dirname(job.log_file), job.name, time.time() - job.started)
