"""Evaluate each detector of a ``DetectorGroup`` by its own metrics, its keys prefixed by name."""
import copy
from typing import Any, Dict, List, Optional, Sequence, Union

from mmdet.registry import EVALUATOR
from mmengine.evaluator import Evaluator


@EVALUATOR.register_module()
class DetectorGroupEvaluator(Evaluator):
    """One :class:`~mmengine.evaluator.Evaluator` per detector of a group, built on first use.

    The group's ``val_step`` returns, per image, ``{name: prediction}``; each detector's go to
    its own evaluator, and its metrics come back as ``<name>/<key>`` (``faster/coco/bbox_mAP``).

    Args:
        metrics: the metric config(s) every detector is evaluated with (as ``val_evaluator``
            of a single run).
        per_detector: detector name -> its own metric config(s), instead of ``metrics``.
        **fields: fields merged into every metric's config (``--cfg-options
            val_evaluator.ann_file=...`` sets the annotation file of all of them, as it does for
            a single run's metric).
    """

    def __init__(self, metrics: Union[dict, Sequence[dict]] = (),
                 per_detector: Optional[Dict[str, Union[dict, Sequence[dict]]]] = None,
                 **fields: Any) -> None:
        super().__init__([])
        self._metric_cfgs = metrics
        self._per_detector = dict(per_detector or {})
        self._fields = fields
        self.evaluators: Dict[str, Evaluator] = {}

    def _metrics_of(self, name: str) -> List[dict]:
        cfgs = self._per_detector.get(name, self._metric_cfgs)
        cfgs = [cfgs] if isinstance(cfgs, dict) else list(cfgs)
        if not cfgs:
            raise ValueError(f'val_evaluator (DetectorGroupEvaluator): no metrics for detector '
                             f'{name!r}: set metrics=... or per_detector.{name}=...')
        out = []
        for cfg in cfgs:
            cfg = copy.deepcopy(dict(cfg))
            cfg.update(copy.deepcopy(self._fields))
            out.append(cfg)
        return out

    def evaluator(self, name: str) -> Evaluator:
        """Detector ``name``'s evaluator (built now if new)."""
        if name not in self.evaluators:
            evaluator = Evaluator(self._metrics_of(name))
            if self._dataset_meta is not None:
                evaluator.dataset_meta = self._dataset_meta
            self.evaluators[name] = evaluator
        return self.evaluators[name]

    @Evaluator.dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        """Set the data set's meta information on every detector's evaluator."""
        self._dataset_meta = dataset_meta
        for evaluator in self.evaluators.values():
            evaluator.dataset_meta = dataset_meta

    def process(self, data_samples: Sequence[Dict[str, Any]], data_batch: Optional[Any] = None
                ) -> None:
        """Hand each detector's predictions to its evaluator.

        Args:
            data_samples: per image, detector name -> its prediction (a group's ``val_step``).
            data_batch: the batch.
        """
        if not all(isinstance(sample, dict) for sample in data_samples):
            raise TypeError('DetectorGroupEvaluator evaluates a DetectorGroup, whose val_step '
                            'returns, per image, {name: prediction}; got '
                            f'{type(data_samples[0]).__name__}')
        names = list(data_samples[0]) if len(data_samples) else []
        for name in names:
            self.evaluator(name).process([sample[name] for sample in data_samples], data_batch)

    def evaluate(self, size: int) -> dict:
        """Each detector's metrics, keys prefixed by its name."""
        results = {}
        for name, evaluator in self.evaluators.items():
            results.update((f'{name}/{key}', value)
                           for key, value in evaluator.evaluate(size).items())
        return results
