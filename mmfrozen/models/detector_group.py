"""One frozen trunk, several detectors, one pass over the data: the ``DetectorGroup`` model.

A group config names K detector configs (their own files, unchanged) that share a frozen
backbone, its checkpoint, the data preprocessor and the training data::

    model = dict(type='DetectorGroup', detectors=[
        dict(name='faster', config='configs/faster_rcnn/<frozen config>.py'),
        dict(name='retina', config='configs/retinanet/<frozen config>.py')])

Each detector is built whole from its own config (its own ``loss``/``predict`` code runs
unchanged); its ``backbone`` attribute is then a :class:`SharedTrunkView`, which holds no
weights and returns the features the group's one backbone computed for the batch. The group
computes the backbone once per batch (without autograd: it is frozen) and runs each detector's
neck and heads on the features, each with its own optimizer wrapper (an ``OptimWrapperDict``
keyed by detector name, built from each detector's own ``optim_wrapper`` by
:class:`~mmfrozen.engine.optimizers.detector_group_constructor.DetectorGroupOptimWrapperConstructor`).

Same as alone: each detector draws its random numbers (the RPN and R-CNN samplers, its weight
initialisation) from its own stream, which starts where its run alone would start (the state
the group was built in) and is swapped in around each of its calls; the group's calls leave the
process's generators as they found them. :attr:`DetectorGroup.outside_draws` counts the calls
before which something outside the model drew from the generators (a random augmentation with
``num_workers=0``, MMEngine's stock loop drawing the data loader's seed): a run alone would
have seen those draws in its stream, so from then on a detector's draws may differ from its run
alone (the group logs it once).

State dict: ``backbone.*`` (the shared trunk, once) and ``detectors.<name>.*`` (each detector
without its backbone); :meth:`DetectorGroup.detector_state_dict` gives one detector's state
dict as its own config loads it.
"""
import contextlib
import copy
import logging
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from mmdet.registry import MODELS
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapperDict
from torch import nn

from mmfrozen.engine.hooks.rng_state_hook import capture_rng_state, restore_rng_state
from .freeze import unfrozen_parts

#: Config fields every detector of a group must share, and what each one means.
SHARED_FIELDS = (
    ('model.backbone', 'backbone type, arguments and checkpoint (init_cfg)'),
    ('model.data_preprocessor', 'data preprocessor'),
    ('load_from', 'checkpoint loaded before training'),
    ('train_dataloader.dataset.pipeline', 'training pipeline'),
    ('train_dataloader.batch_size', 'batch size'),
    ('train_dataloader.sampler', 'sampler (data order)'),
)
_MISSING = object()


class DetectorGroupError(ValueError):
    """A group config that cannot be trained as one run (its message names detector and field)."""


def config_field(cfg: Config, dotted: str) -> Any:
    """``cfg``'s value at a dotted key, as plain Python (``_MISSING`` when absent)."""
    value: Any = cfg
    for key in dotted.split('.'):
        if not isinstance(value, (dict, ConfigDict, Config)) or key not in value:
            return _MISSING
        value = value[key]
    if isinstance(value, (ConfigDict, Config)):
        return value.to_dict()
    return copy.deepcopy(value)


def load_detector_config(entry: dict, cfg_options: Optional[dict] = None) -> Config:
    """Read one detector's config file with the group's and its own overrides.

    Args:
        entry: ``dict(name=..., config=<path, or a loaded Config>, cfg_options=<optional>)``.
        cfg_options: overrides for every detector (as ``--cfg-options``; dotted keys allowed).

    Returns:
        Config: the detector's config (a copy when it was given loaded).
    """
    path = entry['config']
    if isinstance(path, Config):
        cfg = copy.deepcopy(path)
    elif not isinstance(path, str) or not osp.isfile(path):
        raise DetectorGroupError(
            f"detectors[name={entry.get('name')!r}].config: no file {path!r} (an absolute path, "
            "or relative to the working directory; '{{fileDirname}}/x.py' in a group config "
            'names a file beside it)')
    else:
        cfg = Config.fromfile(path)
    for options in (cfg_options, entry.get('cfg_options')):
        if options:
            cfg.merge_from_dict(dict(options))
    return cfg


class SharedTrunkView(nn.Module):
    """What a grouped detector has as ``backbone``: the group's trunk, its features cached.

    It holds no weights (the trunk is not registered as its sub-module), so a detector's state
    dict has no ``backbone.*`` keys. Called with the batch the group computed features for, it
    returns those features; with any other input it runs the trunk.
    """

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.__dict__['trunk'] = trunk
        self.__dict__['cached'] = None

    def forward(self, inputs: torch.Tensor) -> Any:
        cached = self.__dict__['cached']
        if cached is not None and cached[0] is inputs:
            return cached[1]
        return self.__dict__['trunk'](inputs)

    @contextlib.contextmanager
    def features(self, inputs: torch.Tensor, feats: Any) -> Iterator[None]:
        """Within the block, ``self(inputs)`` returns ``feats``."""
        self.__dict__['cached'] = (inputs, feats)
        try:
            yield
        finally:
            self.__dict__['cached'] = None

    def extra_repr(self) -> str:
        return f"shared trunk: {type(self.__dict__['trunk']).__name__} (the group's backbone)"


@MODELS.register_module()
class DetectorGroup(BaseModel):
    """K detectors on one frozen backbone, trained in one run.

    Args:
        detectors: one ``dict(name=..., config=<file>, cfg_options=<dict, optional>)`` per
            detector (``config`` may also be a loaded ``Config``); names are distinct
            identifiers without dots (they prefix log keys, metrics and the per-detector work
            dirs).
        cfg_options: overrides applied to every detector's config before the checks (e.g. the
            backbone's checkpoint path), nested or dotted keys.
        init_cfg: unused (each detector initialises as its config says); for MMEngine.

    Attributes:
        detectors (nn.ModuleDict): name -> detector, its ``backbone`` a :class:`SharedTrunkView`.
        backbone (nn.Module): the shared frozen trunk.
        detector_cfgs (dict[str, Config]): name -> the detector's config.
        outside_draws (int): group calls before which something else drew random numbers.
        dropped (list[str]): detectors no longer trained (their loss was not finite, with
            ``DetectorGroupNonFiniteLossHook(action='drop')``); still evaluated.
    """

    def __init__(self, detectors: Sequence[dict], cfg_options: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        entries = [dict(entry) for entry in detectors]
        names = self._check_names(entries)
        cfgs = {name: load_detector_config(entry, cfg_options)
                for name, entry in zip(names, entries)}
        check_shared_fields(cfgs)
        first = cfgs[names[0]]
        preprocessor = MODELS.build(copy.deepcopy(first.model.data_preprocessor))
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.detector_cfgs: Dict[str, Config] = cfgs
        self.outside_draws = 0
        self.dropped: List[str] = []
        start = capture_rng_state()
        self._streams: Dict[str, Dict[str, Any]] = {}
        built: Dict[str, nn.Module] = OrderedDict()
        for name in names:
            restore_rng_state(start)  # each detector is built from the state it has alone
            built[name] = MODELS.build(copy.deepcopy(cfgs[name].model))
            self._streams[name] = capture_rng_state()
        restore_rng_state(start)
        self._last_exit = start
        for name, detector in built.items():
            problems = unfrozen_parts(detector, ['backbone'], field='model.backbone')
            if problems:
                raise DetectorGroupError(
                    f'detector {name!r} ({cfgs[name].filename}): model.backbone trains, and a '
                    f'group shares only a frozen backbone: {problems}')
        self.backbone = built[names[0]].backbone
        # Each detector's own backbone until init_weights: its weight initialisation replays
        # the draws of its run alone. Not registered: not in the state dict.
        self.__dict__['_own_backbones'] = {name: built[name].backbone for name in names[1:]}
        for detector in built.values():
            detector.backbone = SharedTrunkView(self.backbone)
        self.detectors = nn.ModuleDict(built)

    @staticmethod
    def _check_names(entries: List[dict]) -> List[str]:
        if not entries:
            raise DetectorGroupError('model.detectors is empty: name at least one detector')
        names = []
        for i, entry in enumerate(entries):
            unknown = sorted(set(entry) - {'name', 'config', 'cfg_options'})
            if unknown or 'name' not in entry or 'config' not in entry:
                raise DetectorGroupError(
                    f'model.detectors[{i}] must be dict(name=..., config=..., cfg_options=...)'
                    f', got keys {sorted(entry)}')
            name = entry['name']
            if not isinstance(name, str) or not name.isidentifier():
                raise DetectorGroupError(
                    f'model.detectors[{i}].name must be an identifier (it prefixes log keys '
                    f'and names a folder), got {name!r}')
            if name in names:
                raise DetectorGroupError(f'model.detectors[{i}].name {name!r} is used twice')
            names.append(name)
        return names

    # ---------------------------------------------------------------------------------------
    # random streams
    # ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _outside_state(self, check: bool = True) -> Iterator[None]:
        """Leave the process's generators as found; note if others drew since our last call.

        Args:
            check: compare with the state at the last checked call (training steps and the
                initialisation; validation draws between them only what it restores after).
        """
        outer = capture_rng_state()
        if check and not _same_rng_state(outer, self._last_exit):
            self.outside_draws += 1
            if self.outside_draws == 1:
                print_log('DetectorGroup: random numbers were drawn outside the detectors since '
                          'their last call (a random augmentation with num_workers=0, or the '
                          "stock loop's data-loader seed): a detector's run alone would have "
                          'drawn them from its own stream, so its draws may differ from it from '
                          'here on (docs/shared_trunk.md).', logger='current',
                          level=logging.WARNING)
        try:
            yield
        finally:
            restore_rng_state(outer)
            if check:
                self._last_exit = outer

    @contextlib.contextmanager
    def _stream(self, name: str, keep: bool = True) -> Iterator[None]:
        """Run the block on detector ``name``'s own random stream (``keep``: what it draws
        advances the stream; else it draws from a copy)."""
        restore_rng_state(self._streams[name])
        try:
            yield
        finally:
            if keep:
                self._streams[name] = capture_rng_state()

    def drop(self, name: str) -> None:
        """Train detector ``name`` no more (it keeps its weights and is still evaluated).

        Raises:
            DetectorGroupError: it was the last detector in training.
        """
        if name not in self.dropped:
            self.dropped.append(name)
        if len(self.dropped) == len(self.detectors):
            raise DetectorGroupError(f'every detector of the group is dropped ({self.dropped})')

    def rng_streams(self) -> Dict[str, Any]:
        """Each detector's random stream, the process's state at the group's last call and the
        dropped detectors, to write into a checkpoint."""
        return copy.deepcopy(dict(streams=self._streams, last_exit=self._last_exit,
                                  dropped=self.dropped))

    def load_rng_streams(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`rng_streams` returned (resume).

        Raises:
            DetectorGroupError: the state has no stream for one of the detectors.
        """
        missing = sorted(set(self._streams) - set(state['streams']))
        if missing:
            raise DetectorGroupError(f'the checkpoint has no random stream for detector(s) '
                                     f'{missing}: it was written by another group')
        self._streams = {name: state['streams'][name] for name in self._streams}
        self._last_exit = state['last_exit']
        self.dropped = list(state.get('dropped', []))

    # ---------------------------------------------------------------------------------------
    # weights
    # ---------------------------------------------------------------------------------------
    def init_weights(self) -> None:
        """Initialise each detector as its run alone does, on its own stream and backbone.

        Raises:
            DetectorGroupError: after initialisation a detector's backbone differs from the
                shared one (not the same checkpoint, or a randomly initialised backbone).
        """
        own = self.__dict__['_own_backbones']
        with self._outside_state():
            for name, detector in self.detectors.items():
                backbone = own.get(name, self.backbone)
                with self._stream(name), _attached(detector, backbone):
                    detector.init_weights()
        shared = self.backbone.state_dict()
        for name, backbone in own.items():
            for key, value in backbone.state_dict().items():
                if not torch.equal(value, shared[key]):
                    first = next(iter(self.detectors))
                    raise DetectorGroupError(
                        f'detector {name!r}: after initialisation its backbone.{key} differs '
                        f"from detector {first!r}'s: a group needs one backbone checkpoint "
                        "(model.backbone.init_cfg=dict(type='Pretrained', ...) or load_from)")
        own.clear()

    def _apply(self, fn, *args, **kwargs):
        # .to(device) before init_weights moves the detectors' own backbones too
        for backbone in self.__dict__.get('_own_backbones', {}).values():
            backbone._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def detector_state_dict(self, name: str,
                            state_dict: Optional[Dict[str, torch.Tensor]] = None
                            ) -> Dict[str, torch.Tensor]:
        """Detector ``name``'s state dict as its own config's model has it.

        Args:
            name: the detector's name.
            state_dict: the group's state dict (a checkpoint's); default: this model's.

        Returns:
            OrderedDict: ``backbone.*`` and the detector's own keys.
        """
        return split_state_dict(self.state_dict() if state_dict is None else state_dict,
                                name)

    # ---------------------------------------------------------------------------------------
    # steps
    # ---------------------------------------------------------------------------------------
    def _per_detector(self, data: dict, keep_streams: bool = True
                      ) -> Iterator[Tuple[str, nn.Module, dict]]:
        """For each detector: its name, itself and its own copy of the batch, features cached.

        Runs within the detector's own random stream; the backbone runs once, before. Training
        (``keep_streams``) leaves out the detectors in :attr:`dropped`.
        """
        inputs, samples = data['inputs'], data['data_samples']
        with torch.no_grad():
            feats = self.backbone(inputs)
        names = [name for name in self.detectors
                 if not (keep_streams and name in self.dropped)]
        for i, name in enumerate(names):
            detector = self.detectors[name]
            # predict writes into its data samples, and a loss may too: each gets its own copy
            own = samples if i == len(names) - 1 else copy.deepcopy(samples)
            with self._stream(name, keep_streams), detector.backbone.features(inputs, feats):
                yield name, detector, dict(inputs=inputs, data_samples=own)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        """One iteration: the batch and trunk once, each detector's step with its own wrapper.

        Args:
            data: the data loader's batch.
            optim_wrapper: ``OptimWrapperDict`` keyed by detector name.

        Returns:
            dict: each detector's log variables as ``<name>/<key>`` (``faster/loss_cls``).
        """
        log_vars: Dict[str, torch.Tensor] = OrderedDict()
        with self._outside_state():
            data = self.data_preprocessor(data, True)
            for name, detector, batch in self._per_detector(data):
                wrapper = optim_wrapper[name]
                with wrapper.optim_context(detector):
                    losses = detector._run_forward(batch, mode='loss')
                parsed, own_vars = detector.parse_losses(losses)
                wrapper.update_params(parsed)
                log_vars.update((f'{name}/{key}', value) for key, value in own_vars.items())
        return log_vars

    def val_step(self, data: Union[dict, tuple, list]) -> List[Dict[str, Any]]:
        """Each detector's predictions on the batch.

        Detectors draw from copies of their streams here: a run alone validates RNG-neutrally
        (:class:`~mmfrozen.engine.loops.ExactResumeEpochBasedTrainLoop`).

        Returns:
            list[dict[str, DetDataSample]]: per image, detector name -> its prediction, as its
            own ``val_step`` makes it (:class:`DetectorGroupEvaluator` evaluates each).
        """
        with self._outside_state(check=False):
            data = self.data_preprocessor(data, False)
            per_detector = {
                name: detector._run_forward(batch, mode='predict')
                for name, detector, batch in self._per_detector(data, keep_streams=False)}
        size = len(next(iter(per_detector.values())))
        return [{name: preds[i] for name, preds in per_detector.items()} for i in range(size)]

    def test_step(self, data: Union[dict, tuple, list]) -> Dict[str, list]:
        """As :meth:`val_step`."""
        return self.val_step(data)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor') -> Dict[str, Any]:
        """Each detector's ``forward`` in ``mode`` on the shared features.

        Returns:
            dict: for ``mode='loss'`` the losses as ``<name>/<key>``; otherwise detector name ->
            its output.
        """
        out: Dict[str, Any] = OrderedDict()
        with self._outside_state():
            data = dict(inputs=inputs, data_samples=data_samples)
            for name, detector, batch in self._per_detector(data, keep_streams=mode == 'loss'):
                result = detector(batch['inputs'], batch['data_samples'], mode=mode)
                if mode == 'loss':
                    out.update((f'{name}/{key}', value) for key, value in result.items())
                else:
                    out[name] = result
        return out


def split_state_dict(state_dict: Dict[str, torch.Tensor], name: str) -> Dict[str, torch.Tensor]:
    """One detector's state dict from a group's (``backbone.*`` + ``detectors.<name>.*``).

    Args:
        state_dict: the group's state dict.
        name: the detector's name.

    Returns:
        OrderedDict: the keys its own config's model has.
    """
    prefix = f'detectors.{name}.'
    own = OrderedDict((key, value) for key, value in state_dict.items()
                      if key.startswith('backbone.'))
    own.update((key[len(prefix):], value) for key, value in state_dict.items()
               if key.startswith(prefix))
    if len(own) == sum(key.startswith('backbone.') for key in state_dict):
        raise KeyError(f'the group state dict has no detector {name!r} (no keys {prefix}*)')
    return own


def check_shared_fields(cfgs: Dict[str, Config]) -> None:
    """Refuse detectors that do not share :data:`SHARED_FIELDS`, naming detector and field.

    Args:
        cfgs: detector name -> its config.

    Raises:
        DetectorGroupError: a field differs from the first detector's.
    """
    names = list(cfgs)
    first = cfgs[names[0]]
    for field, what in SHARED_FIELDS:
        expected = config_field(first, field)
        for name in names[1:]:
            value = config_field(cfgs[name], field)
            if value != expected:
                raise DetectorGroupError(
                    f'detector {name!r} ({cfgs[name].filename}): {field} ({what}) differs from '
                    f"detector {names[0]!r}'s ({first.filename}), and a group shares it: "
                    f'{_show(value)} vs {_show(expected)}')


def _show(value: Any, limit: int = 300) -> str:
    text = 'absent' if value is _MISSING else repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def _same_rng_state(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    if not torch.equal(a['torch'], b['torch']) or a['numpy'] != b['numpy'] \
            or a['python'] != b['python']:
        return False
    if 'cuda' in a or 'cuda' in b:
        return 'cuda' in a and 'cuda' in b and all(
            torch.equal(x, y) for x, y in zip(a['cuda'], b['cuda']))
    return True


@contextlib.contextmanager
def _attached(detector: nn.Module, backbone: nn.Module) -> Iterator[None]:
    """``detector.backbone`` is ``backbone`` within the block (its view again after)."""
    view = detector.backbone
    detector.backbone = backbone
    try:
        yield
    finally:
        detector.backbone = view


# what a group config uses besides the model: registered with it
from mmfrozen.engine.optimizers import detector_group_constructor  # noqa: E402,F401
from mmfrozen.evaluation import detector_group_evaluator  # noqa: E402,F401
