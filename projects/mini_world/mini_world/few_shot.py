"""Few-shot detection in the mini world: the protocol of "Frustratingly Simple Few-Shot Object
Detection" (TFA) with the mini world's classifier, frozen or fine-tuned
(``projects/mini_world/tools/mini_few_shot.py``).

1. **Data.** The mini world's classifier and its exported backbone (:class:`.MiniReproduction`'s
   steps, shared with a main job in the same work dir), and a long-tailed mini-LVIS of its own,
   ``data/mini_lvis_few_shot/``: the main job's 30 classes and tiers, but the rare tier given
   enough training images (:attr:`FewShotScale.novel_images`) to draw K-shot sets from. The
   frequent and common tiers are the **base** classes, the rare tier the **novel** ones.
2. **Base training** on the base classes only (``annotations/lvis_v1_{train,val}_base.json``:
   novel annotations and categories taken out, :func:`base_only`), once with the backbone
   frozen and once fine-tuned (``configs/*_base-training_mini-lvis-few-shot.py``).
3. **K-shot sets**: K annotated instances of every class, base and novel (TFA's generalized
   setting), one group per seed (:func:`mmfrozen.datasets.few_shot_sampler.sample_k_shot`),
   ``annotations/few_shot/lvis_v1_train_{K}shot_seed{S}.json``.
4. **Weight surgery** (:func:`mmfrozen.models.few_shot_surgery.surgery_checkpoint`): each base
   detector extended to the 30 classes, novel rows TFA's randinit drawn with the group's seed.
5. **K-shot fine-tuning**, three arms (:data:`ARMS`): ``frozen`` (the paper: the backbone frozen
   in both stages, from the frozen base), ``finetune`` (everything trains, from the fine-tuned
   base) and ``lastlayers`` (TFA's reference: only ``fc_cls`` and ``fc_reg`` train, from the
   fine-tuned base, as TFA's base detector is fine-tuned). An epoch is the fewest whole passes
   over the K-shot set that make :attr:`FewShotScale.kshot_iters_per_epoch` iterations, so
   small K train about as long as each other and a large K one pass of its set. Scored on the
   full val set: novel AP (``bbox_AP_novel``) and base AP.
6. **Results**: ``few_shot/results.json``, the table (mean ± std over groups) and the plot.

Every training goes through ``tools/train.py`` (MMEngine's runner); a finished step leaves
``done.json`` and is reused next time, as in :mod:`.pipeline`.
"""
import json
import math
import os
import os.path as osp
import statistics
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .pipeline import (CONFIG_DIR, DONE_FILE, Job, MiniReproduction, MiniScale, _options,
                       detector_options, is_done, mark_done, run_jobs)

#: The K-shot stage's arms, in table order.
ARMS = ('frozen', 'finetune', 'lastlayers')
#: The base detectors (stage 1), by backbone arm.
BASE_CONFIGS = {
    arm: osp.join(CONFIG_DIR, f'faster-rcnn_r18-{arm}_fpn_base-training_mini-lvis-few-shot.py')
    for arm in ('frozen', 'finetune')
}
#: The K-shot detectors (stage 2), by arm.
KSHOT_CONFIGS = {
    arm: osp.join(CONFIG_DIR, f'faster-rcnn_r18-{arm}_fpn_kshot-fine-tuning_mini-lvis-few-shot.py')
    for arm in ARMS
}
#: The base detector each arm's K-shot stage starts from. TFA's last-layers fine-tuning starts
#: from a base detector whose backbone was fine-tuned, so ``lastlayers`` does too.
ARM_BASE = {'frozen': 'frozen', 'finetune': 'finetune', 'lastlayers': 'finetune'}
#: What the results report: name -> where ``stratified_eval/summary.json`` has it (box AP).
METRICS = {
    'nAP': ('class_groups', 'novel', 'AP'),
    'nAP50': ('class_groups', 'novel', 'AP50'),
    'bAP': ('class_groups', 'base', 'AP'),
    'AP': ('AP', ),
}
FEW_SHOT_DIR = 'few_shot'


@dataclass(frozen=True)
class FewShotScale:
    """Sizes of one few-shot experiment.

    Attributes:
        novel_images: ``(min, max)`` training images of a novel (rare-tier) class in the full
            set the K-shot sets are drawn from.
        shots: the K of the K-shot stage.
        base_epochs: base training epochs.
        kshot_epochs: K-shot fine-tuning epochs.
        kshot_iters_per_epoch: the fewest iterations of one K-shot epoch (the set is repeated
            until one epoch has at least these many; a larger set makes one pass).
        batch_size: images per iteration (the configs').
    """

    novel_images: Tuple[int, int]
    shots: Tuple[int, ...]
    base_epochs: int
    kshot_epochs: int
    kshot_iters_per_epoch: int
    batch_size: int = 8


FEW_SHOT_SCALES: Dict[str, FewShotScale] = {
    # Sized for a shared 2-core machine (the README's "Few-shot" section has the run times).
    'default': FewShotScale(novel_images=(25, 40), shots=(1, 5, 10), base_epochs=3,
                            kshot_epochs=3, kshot_iters_per_epoch=14),
    # For the test suite: every step on every code path, in seconds.
    'tiny': FewShotScale(novel_images=(8, 10), shots=(1, 2), base_epochs=1, kshot_epochs=1,
                         kshot_iters_per_epoch=1),
}


def split_classes(vocabulary: Sequence[str], scale: MiniScale) -> Tuple[List[str], List[str]]:
    """The base classes (frequent and common tiers) and the novel ones (the rare tier).

    Args:
        vocabulary: the detection set's classes in category id order (tiers in order: frequent,
            common, rare; :func:`.lvis_data.choose_vocabulary`).
        scale: the mini reproduction's scale (its tier sizes).

    Returns:
        tuple: base class names, novel class names, each in category id order.
    """
    num_base = scale.detection.num_frequent + scale.detection.num_common
    return list(vocabulary[:num_base]), list(vocabulary[num_base:])


def base_only(data: Dict[str, Any], base_classes: Sequence[str], source: str) -> Dict[str, Any]:
    """An LVIS v1-format dict of the base classes only, for base training and its scoring.

    The novel categories and their annotations are taken out (their objects stay in the images,
    unlabelled, as in TFA's base training); every image is kept, its
    ``neg_category_ids`` and ``not_exhaustive_category_ids`` restricted to the base categories.
    mmdet's ``LVISV1Dataset`` numbers labels by category id, so the base classes must come
    first-to-last in id order.

    Args:
        data: the full LVIS v1-format dict.
        base_classes: the base class names, in category id order.
        source: the file ``data`` came from, for messages.

    Returns:
        dict: the base-only dict (``info.few_shot_base`` records the classes).

    Raises:
        ValueError: a base class is not in ``categories`` or not in id order.
    """
    by_id = sorted(data['categories'], key=lambda cat: cat['id'])
    wanted = set(base_classes)
    kept = [cat for cat in by_id if cat['name'] in wanted]
    if [cat['name'] for cat in kept] != list(base_classes):
        raise ValueError(f'{source}: field "categories" does not hold the base classes '
                         f'{list(base_classes)} in category id order (it has '
                         f'{[cat["name"] for cat in by_id]}).')
    ids = {cat['id'] for cat in kept}
    images = []
    for image in data['images']:
        image = dict(image)
        for key in ('neg_category_ids', 'not_exhaustive_category_ids'):
            if key in image:
                image[key] = [i for i in image[key] if i in ids]
        images.append(image)
    info = dict(data.get('info') or {})
    info['few_shot_base'] = dict(source=source, base_classes=list(base_classes))
    out = dict(data, info=info, images=images, categories=kept,
               annotations=[ann for ann in data['annotations'] if ann['category_id'] in ids])
    return out


def repeat_times(num_images: int, iters_per_epoch: int, batch_size: int) -> int:
    """How often to repeat a K-shot set so that one epoch is at least ``iters_per_epoch``
    iterations of ``batch_size`` images."""
    if num_images < 1:
        raise ValueError('repeat_times: the K-shot set has no image')
    return max(1, math.ceil(iters_per_epoch * batch_size / num_images))


def _mean_std(values: Sequence[float]) -> str:
    text = f'{statistics.fmean(values):.1f}'
    if len(values) > 1:
        text += f' ± {statistics.stdev(values):.1f}'
    return text


class MiniFewShot(MiniReproduction):
    """The few-shot experiment in ``work_dir`` (module doc).

    Args:
        work_dir: where everything goes; a mini reproduction's work dir shares its classifier.
        scale: a :data:`.pipeline.SCALES` entry (world, classifier, tiers).
        few_shot: a :data:`FEW_SHOT_SCALES` entry.
        groups: K-shot groups per K (seeds ``0 .. groups-1``).
        arms: the K-shot stage's arms (of :data:`ARMS`).
        threads: torch threads per training process.
        jobs: training processes at once.
        force: redo finished steps.
    """

    def __init__(self, work_dir: str, scale: MiniScale, few_shot: FewShotScale,
                 groups: int = 3, arms: Sequence[str] = ARMS, threads: int = 1, jobs: int = 2,
                 force: bool = False) -> None:
        unknown = [arm for arm in arms if arm not in ARMS]
        if unknown or not arms:
            raise ValueError(f'arms: each one of {list(ARMS)}, got {list(arms)}')
        if groups < 1:
            raise ValueError(f'groups must be at least 1, got {groups}')
        detection = replace(scale.detection, rare_images=few_shot.novel_images)
        super().__init__(work_dir, replace(scale, detection=detection), seeds=1,
                         threads=threads, jobs=jobs, force=force, detector_configs=[])
        self.few_shot = few_shot
        self.groups = groups
        self.arms = [arm for arm in ARMS if arm in arms]
        self.base_classes, self.novel_classes = split_classes(self.vocabulary, self.scale)

    # ---------------------------------------------------------------- paths
    @property
    def detection_dir(self) -> str:
        return osp.join(self.work_dir, 'data', 'mini_lvis_few_shot')

    @property
    def out_dir(self) -> str:
        return osp.join(self.work_dir, FEW_SHOT_DIR)

    def annotation_file(self, name: str) -> str:
        """A file of the few-shot set's ``annotations/`` folder."""
        return osp.join(self.detection_dir, 'annotations', name)

    def kshot_file(self, shots: int, group: int) -> str:
        """The K-shot set of ``shots`` and group ``group`` (the sampler's seed)."""
        return self.annotation_file(osp.join('few_shot', f'lvis_v1_train_{shots}shot_seed'
                                             f'{group}.json'))

    def base_dir(self, arm: str) -> str:
        """Work dir of the base detector of backbone arm ``arm``."""
        return osp.join(self.out_dir, 'base', arm)

    def surgery_file(self, arm: str, group: int) -> str:
        """The base detector of ``arm`` after the surgery with group ``group``'s seed."""
        return osp.join(self.base_dir(arm), f'surgery_seed{group}.pth')

    def kshot_dir(self, arm: str, shots: int, group: int) -> str:
        """Work dir of one K-shot fine-tuning."""
        return osp.join(self.out_dir, 'kshot', arm, f'{shots}shot', f'seed{group}')

    # ---------------------------------------------------------------- data
    def few_shot_data(self) -> None:
        """The base-only files and every K-shot set (``annotations/``), from the full set.

        Written every time (a second or two): the same set and seeds give the same bytes, and a
        run with more groups or another K finds its files.
        """
        from mmfrozen.datasets.few_shot_sampler import dump_coco, read_checked, sample_k_shot

        start = time.time()
        for split in ('train', 'val'):
            source = self.annotation_file(f'lvis_v1_{split}.json')
            dump_coco(base_only(read_checked(source), self.base_classes, source),
                      self.annotation_file(f'lvis_v1_{split}_base.json'))
        data = read_checked(self.annotation_file('lvis_v1_train.json'))
        for group in range(self.groups):
            for shots in self.few_shot.shots:
                path = self.kshot_file(shots, group)
                os.makedirs(osp.dirname(path), exist_ok=True)
                dump_coco(sample_k_shot(data, shots, group, source='lvis_v1_train.json'), path)
        self.timing['few-shot data'] = time.time() - start

    # ---------------------------------------------------------------- stage 1
    def base_jobs(self) -> List[Job]:
        """The base trainings not done yet, one per backbone arm the K-shot arms need."""
        jobs = []
        root = self.detection_dir + '/'
        for arm in sorted({ARM_BASE[a] for a in self.arms}, reverse=True):
            run_dir = self.base_dir(arm)
            name = f'base training, {arm}'
            if self._skip(run_dir, name):
                continue
            options = detector_options(root, self.backbone_file, self.base_classes,
                                       self.few_shot.base_epochs, seed=0)
            train_ann = root + 'annotations/lvis_v1_train_base.json'
            val_ann = root + 'annotations/lvis_v1_val_base.json'
            options['train_dataloader.dataset.dataset.ann_file'] = train_ann
            for loader, evaluator in (('val_dataloader', 'val_evaluator'),
                                      ('test_dataloader', 'test_evaluator')):
                options[f'{loader}.dataset.ann_file'] = val_ann
                options[f'{evaluator}.ann_file'] = val_ann
                options[f'{evaluator}.train_ann_file'] = train_ann
            jobs.append(self._train_job(name, BASE_CONFIGS[arm], run_dir, options))
        return jobs

    def _train_job(self, name: str, config: str, run_dir: str,
                   options: Dict[str, object]) -> Job:
        args = ['tools/train.py', config, '--work-dir', run_dir]
        if osp.isfile(osp.join(run_dir, 'last_checkpoint')):
            args.append('--resume')
        args += _options(options)
        return Job(name, args, osp.join(run_dir, 'train.log'), self.threads,
                   on_success=lambda job: mark_done(run_dir, job.name,
                                                    time.time() - job.started))

    # ---------------------------------------------------------------- surgery
    def surgery(self) -> None:
        """Each base detector extended to every class, novel rows drawn with each group's
        seed (:func:`mmfrozen.models.few_shot_surgery.surgery_checkpoint`)."""
        import torch

        import mmfrozen  # noqa: F401  torch.load(weights_only=True) reads MMEngine checkpoints
        from mmfrozen.models.few_shot_surgery import surgery_checkpoint
        from mmfrozen.utils import atomic_write

        classes = self.base_classes + self.novel_classes
        for arm in sorted({ARM_BASE[a] for a in self.arms}):
            with open(osp.join(self.base_dir(arm), 'last_checkpoint')) as handle:
                checkpoint_file = handle.read().strip()
            checkpoint = None
            for group in range(self.groups):
                path = self.surgery_file(arm, group)
                if osp.isfile(path) and not self.force:
                    continue
                if checkpoint is None:
                    checkpoint = torch.load(checkpoint_file, map_location='cpu',
                                            weights_only=True)
                out = surgery_checkpoint(checkpoint, classes, self.novel_classes, seed=group,
                                         source=checkpoint_file)
                with atomic_write(path) as tmp:
                    torch.save(out, tmp)

    # ---------------------------------------------------------------- stage 2
    def kshot_jobs(self) -> List[Job]:
        """The K-shot fine-tunings not done yet: group by group (a cut-short run has whole
        groups), within a group every K and arm."""
        from mmfrozen.datasets.few_shot_sampler import read_checked

        jobs = []
        root = self.detection_dir + '/'
        classes = self.base_classes + self.novel_classes
        epochs = self.few_shot.kshot_epochs
        for group in range(self.groups):
            for shots in self.few_shot.shots:
                kshot_file = self.kshot_file(shots, group)
                num_images = len(read_checked(kshot_file)['images'])
                times = repeat_times(num_images, self.few_shot.kshot_iters_per_epoch,
                                     self.few_shot.batch_size)
                for arm in self.arms:
                    run_dir = self.kshot_dir(arm, shots, group)
                    name = f'{shots}-shot {arm}, group {group}'
                    if self._skip(run_dir, name):
                        continue
                    options = detector_options(root, self.backbone_file, classes, epochs,
                                               seed=group)
                    del options['model.backbone.init_cfg.checkpoint']  # load_from has all
                    options.update({
                        'load_from': self.surgery_file(ARM_BASE[arm], group),
                        'train_dataloader.dataset.times': times,
                        'train_dataloader.dataset.dataset.ann_file': kshot_file,
                        'param_scheduler.1.milestones': [max(1, epochs - 1)],
                    })
                    for evaluator in ('val_evaluator', 'test_evaluator'):
                        options[f'{evaluator}.train_ann_file'] = None
                        options[f'{evaluator}.class_groups.novel'] = self.novel_classes
                        options[f'{evaluator}.class_groups.base'] = self.base_classes
                    jobs.append(self._train_job(name, KSHOT_CONFIGS[arm], run_dir, options))
        return jobs

    # ---------------------------------------------------------------- results
    def run_metrics(self, run_dir: str) -> Dict[str, float]:
        """Box :data:`METRICS` (x100) of one run, from its ``stratified_eval/summary.json``."""
        path = osp.join(run_dir, 'stratified_eval', 'summary.json')
        with open(path) as handle:
            box = json.load(handle)['bbox']
        values = {}
        for metric, keys in METRICS.items():
            value = box
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                raise ValueError(f'{path}: no box {metric} (field "bbox.{".".join(keys)}")')
            values[metric] = 100 * value
        return values

    def results(self) -> Dict[str, Any]:
        """Every finished K-shot run's metrics, by arm and K (lists over groups, in group
        order), and the base detectors' AP on the base classes.

        A run cut short (no ``done.json``) is left out, so a cell may hold fewer groups than
        asked; ``groups_done`` says which groups each cell holds.
        """
        kshot: Dict[str, Dict[str, Dict[str, List[float]]]] = {}
        groups_done: Dict[str, Dict[str, List[int]]] = {}
        for arm in self.arms:
            kshot[arm], groups_done[arm] = {}, {}
            for shots in self.few_shot.shots:
                cell = {metric: [] for metric in METRICS}
                done = [g for g in range(self.groups)
                        if is_done(self.kshot_dir(arm, shots, g))]
                for group in done:
                    for metric, value in self.run_metrics(
                            self.kshot_dir(arm, shots, group)).items():
                        cell[metric].append(value)
                kshot[arm][str(shots)], groups_done[arm][str(shots)] = cell, done
        base = {}
        for arm in sorted({ARM_BASE[a] for a in self.arms}):
            path = osp.join(self.base_dir(arm), 'stratified_eval', 'summary.json')
            with open(path) as handle:
                base[arm] = 100 * json.load(handle)['bbox']['AP']
        return dict(kshot=kshot, groups_done=groups_done, base_AP=base,
                    shots=list(self.few_shot.shots), groups=self.groups, arms=self.arms,
                    base_classes=self.base_classes, novel_classes=self.novel_classes,
                    arm_base=ARM_BASE)

    # ---------------------------------------------------------------- all
    def train(self) -> None:
        """Data, classifier, export, few-shot files, base trainings, surgery, K-shot runs."""
        os.makedirs(self.work_dir, exist_ok=True)
        self.classification_data()
        job = self.classifier_job()
        if job is None:
            self.detection_data()
        else:
            run_jobs([job], 1, while_waiting=self.detection_data)
        self.export()
        self.few_shot_data()
        step = time.time()
        jobs = self.base_jobs()
        if jobs:
            run_jobs(jobs, self.jobs)
            self.timing['base training'] = time.time() - step
        self.surgery()
        step = time.time()
        jobs = self.kshot_jobs()
        if jobs:
            run_jobs(jobs, self.jobs)
            self.timing['k-shot fine-tuning'] = time.time() - step

    def run_times(self) -> Dict[str, Any]:
        """Each finished training's own duration (its ``done.json``), in seconds: the base
        detectors by arm, the K-shot runs by arm and K (lists in group order)."""
        def elapsed(folder: str) -> Optional[float]:
            if not is_done(folder):
                return None
            with open(osp.join(folder, DONE_FILE)) as handle:
                return round(json.load(handle)['elapsed_s'], 1)

        base = {arm: elapsed(self.base_dir(arm))
                for arm in sorted({ARM_BASE[a] for a in self.arms})}
        kshot = {arm: {str(k): [t for t in (elapsed(self.kshot_dir(arm, k, g))
                                            for g in range(self.groups)) if t is not None]
                       for k in self.few_shot.shots} for arm in self.arms}
        return dict(base=base, kshot=kshot)

    def run(self, plot_file: Optional[str] = None, train: bool = True) -> str:
        """Every step not done yet, then ``few_shot/results.json``, ``table.md`` and the plot.

        Args:
            plot_file: the plot's path; default ``<work_dir>/few_shot/few_shot_nap.png``.
            train: False: no step runs; the results of the runs finished so far (a cut-short
                run's), as they are.

        Returns:
            str: the table (markdown).
        """
        from .few_shot_plot import plot_few_shot

        start = time.time()
        if train:
            self.train()
        results = self.results()
        results['run_times_s'] = self.run_times()
        os.makedirs(self.out_dir, exist_ok=True)
        table = few_shot_table(results)
        with open(osp.join(self.out_dir, 'table.md'), 'w') as handle:
            handle.write(table)
        self.plot_file = plot_few_shot(
            results, plot_file or osp.join(self.out_dir, 'few_shot_nap.png'))
        self.timing['total'] = time.time() - start
        results.update(scale=asdict(self.scale), few_shot=asdict(self.few_shot), jobs=self.jobs,
                       threads=self.threads, cpus=os.cpu_count(), report_only=not train,
                       timing_s={k: round(v, 1) for k, v in self.timing.items()})
        with open(osp.join(self.out_dir, 'results.json'), 'w') as handle:
            json.dump(results, handle, indent=1)
        return table


def few_shot_table(results: Dict[str, Any]) -> str:
    """The K-shot results as a markdown table: per K and arm, nAP, nAP50, bAP and AP.

    Args:
        results: as :meth:`MiniFewShot.results` gives them.

    Returns:
        str: the table, and a line on what the numbers are.
    """
    headers = ['K', 'arm', 'starts from', 'groups', 'nAP', 'nAP50', 'bAP', 'AP (all classes)']
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    for shots in results['shots']:
        for arm in results['arms']:
            values = results['kshot'][arm][str(shots)]
            lines.append('| ' + ' | '.join(
                [str(shots), arm, f'{results["arm_base"][arm]} base',
                 str(len(values['nAP']))]
                + [_mean_std(values[m]) if values[m] else '-' for m in METRICS]) + ' |')
    base = ', '.join(f'{arm} {value:.1f}' for arm, value in sorted(results['base_AP'].items()))
    lines += ['', 'Box AP x100 on the few-shot mini-LVIS val set, mean ± std over the K-shot '
              'groups (sampler and surgery seeds 0, 1, ...) that finished; nAP: the '
              f'{len(results["novel_classes"])} novel classes, bAP: the '
              f'{len(results["base_classes"])} base ones. Base detectors before the K-shot '
              f'stage, AP on the base classes: {base}.']
    return '\n'.join(lines) + '\n'
