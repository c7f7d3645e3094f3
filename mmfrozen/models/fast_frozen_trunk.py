"""A fast frozen trunk: the forward of a frozen module run as the inference it is.

A frozen trunk computes no gradient, has fixed weights and keeps BatchNorm in eval mode, so its
forward can run as inference: without autograd, with every BatchNorm folded into the
convolution before it (exact in eval mode), in channels-last memory format, optionally compiled
by ``torch.compile`` with inductor's ``freezing`` (weights as constants) and under bf16 autocast
(the trunk alone; its outputs go on in float32). bf16 applies on a GPU and on a CPU with native
bf16 arithmetic (AMX or AVX512-BF16, :func:`native_bf16`); elsewhere it would be emulated and
slower, so the trunk stays in float32 and the log says so once. bf16 is not exact: about 1e-2
relative error in the trunk's features. Switched on in the model config,
by the ``fast`` option of the ``FrozenModule`` builder::

    backbone=dict(type='FrozenModule', module=dict(type='ResNet', ...), fast=True)
    backbone=dict(type='FrozenModule', module=..., fast=dict(compile=True, bf16=True))

A frozen config of mmdet's ResNet family (``frozen_stages=4, norm_eval=True``) switches with
one line, in a config that inherits it::

    _base_ = './faster-rcnn_r50-frozen_fpn_1x_coco.py'
    model = dict(backbone=dict(_delete_=True, type='FrozenModule',
                               module={{_base_.model.backbone}}, fast=True))

The module stays what it was: same parameters and buffers, same ``state_dict`` (checkpoints
keep the unfolded weights), so the freeze check, resume and a plain frozen run accept a fast
run's checkpoint and the other way round. Only its ``forward`` is replaced, by a mixin in front
of its class (:class:`FastForwardMixin`, through :func:`mmfrozen.models.class_swap.add_mixin`:
same class name, ``isinstance`` holds), so a fast model pickles, deep-copies and goes through
``torch.save``/``torch.load`` whole; a copy builds its own folded copy. The folded copy lives
outside the module registry (not in ``state_dict``, not moved by ``.to()``): it is built at the
first forward, on the device and dtype of the module's weights at that time, and built again
when they change (``load_state_dict``, in-place edits, ``.to()``/``.cuda()``, a dtype change).
"""
import contextlib
import copy
import logging
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .class_swap import MIXIN_ATTR_PREFIX, ModuleMixin, add_mixin, remove_mixins

#: The ``fast`` options and their defaults (``fast=True`` means these).
FAST_DEFAULTS = dict(fold_bn=True, channels_last=True, compile=False, bf16=False)
#: Attribute of a fast module that holds its :class:`FastTrunk` (a plain attribute: not a
#: sub-module, so not in ``state_dict`` and not moved by ``.to()``; a mixin's attribute, so
#: copies keep it).
FAST_ATTR = f'{MIXIN_ATTR_PREFIX}fast_trunk'


def fast_options(fast: Union[bool, dict, None], source: str = 'FrozenModule') -> Optional[dict]:
    """The complete ``fast`` options of a config, or None when the fast trunk is off.

    Args:
        fast: ``True`` (the defaults, :data:`FAST_DEFAULTS`), ``False``/``None`` (off), or a
            dict of some of :data:`FAST_DEFAULTS`' keys.
        source: what the options come from, for error messages.

    Returns:
        dict | None: every option of :data:`FAST_DEFAULTS`, or None.

    Raises:
        KeyError: an unknown option.
        TypeError: ``fast`` is neither a bool nor a dict, or an option is not a bool.
    """
    if fast is None or fast is False:
        return None
    if fast is True:
        return dict(FAST_DEFAULTS)
    if not isinstance(fast, dict):
        raise TypeError(f'{source}: fast must be True, False or a dict of '
                        f'{", ".join(FAST_DEFAULTS)}, got {fast!r}')
    unknown = sorted(set(fast) - set(FAST_DEFAULTS))
    if unknown:
        raise KeyError(f'{source}: fast.{unknown[0]} is not a known option '
                       f'(known: {", ".join(FAST_DEFAULTS)})')
    options = dict(FAST_DEFAULTS, **fast)
    for key, value in options.items():
        if not isinstance(value, bool):
            raise TypeError(f'{source}: fast.{key} must be True or False, got {value!r}')
    return options


class _LeafConvBNTracer(fx.Tracer):
    """torch.fx's tracer, keeping every convolution and BatchNorm (subclasses included, such
    as mmcv's ``Conv2d`` wrapper or ``SyncBatchNorm``) as one call, so that pairs can be found."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return (isinstance(module, (nn.modules.conv._ConvNd, _BatchNorm))
                or super().is_leaf_module(module, qualified_name))


def _set_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    parent, _, name = target.rpartition('.')
    setattr(root.get_submodule(parent) if parent else root, name, module)


def fold_batch_norms(module: nn.Module) -> Tuple[fx.GraphModule, int]:
    """A copy of ``module`` in which every BatchNorm that follows a convolution is folded in.

    The copy is traced by torch.fx; a BatchNorm (eval mode, running statistics) whose input is
    the output of a convolution used by nothing else, called once, becomes part of that
    convolution's weights and bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``). ``module``
    itself is not changed.

    Args:
        module: a module in eval mode, e.g. a frozen ResNet.

    Returns:
        tuple: the folded copy (a ``GraphModule``) and how many BatchNorms were folded.

    Raises:
        torch.fx.proxy.TraceError: the module's forward cannot be traced (control flow on
            tensor values).
    """
    plain = _plain_copy(module)
    graph = _LeafConvBNTracer().trace(plain)
    folded = fx.GraphModule(plain, graph, class_name=f'Folded{type(module).__name__}')
    modules = dict(folded.named_modules())
    calls: Dict[str, int] = {}
    for node in folded.graph.nodes:
        if node.op == 'call_module':
            calls[node.target] = calls.get(node.target, 0) + 1
    count = 0
    for node in list(folded.graph.nodes):
        if node.op != 'call_module' or not isinstance(modules[node.target], _BatchNorm):
            continue
        conv_node = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        if not (isinstance(conv_node, fx.Node) and conv_node.op == 'call_module'
                and isinstance(modules[conv_node.target], nn.modules.conv._ConvNd)):
            continue
        conv, norm = modules[conv_node.target], modules[node.target]
        if (len(conv_node.users) > 1 or calls[conv_node.target] > 1 or conv.training
                or norm.training or norm.running_mean is None or conv.transposed
                or norm.num_features != conv.out_channels):
            continue
        _set_submodule(folded, conv_node.target, fuse_conv_bn_eval(conv, norm))
        node.replace_all_uses_with(conv_node)
        folded.graph.erase_node(node)
        count += 1
    folded.delete_all_unused_submodules()
    folded.graph.lint()
    folded.recompile()
    return folded, count


def _plain_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` with the original classes (their own forward, not the fast
    one; torch.fx traces them as it would the unfrozen module)."""
    return remove_mixins(copy.deepcopy(module))


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (list, tuple)):
        mapped = [_map_tensors(v, fn) for v in value]
        return type(value)(mapped) if not hasattr(value, '_fields') else type(value)(*mapped)
    if isinstance(value, dict):
        return type(value)((k, _map_tensors(v, fn)) for k, v in value.items())
    return value


def _weights_key(module: nn.Module) -> tuple:
    """What identifies the module's current weights: storage, in-place version, device, dtype
    of every parameter and buffer. It changes with ``load_state_dict`` (an in-place copy),
    ``init_weights``, ``.to()`` and any other in-place edit."""
    return tuple((t.data_ptr(), t._version, t.device, t.dtype)
                 for t in (*module.parameters(), *module.buffers()))


class FastTrunk:
    """The fast forward of one frozen module, and its lazily built folded copy.

    Held by the module as a plain attribute (:data:`FAST_ATTR`), never as a sub-module.

    Args:
        options: complete ``fast`` options (:func:`fast_options`).
    """

    def __init__(self, options: dict) -> None:
        self.options = dict(options)
        self.folded_norms = 0
        self.builds = 0
        self._trunk: Optional[Callable] = None
        self._key: Optional[tuple] = None
        self._warned = set()

    def __deepcopy__(self, memo: dict) -> 'FastTrunk':
        return FastTrunk(self.options)  # a copy builds its own trunk from its own weights

    def __getstate__(self) -> dict:
        return dict(options=self.options)

    def __setstate__(self, state: dict) -> None:
        self.__init__(state['options'])

    @property
    def copy_bytes(self) -> int:
        """Bytes of the folded copy's parameters and buffers (0 before it is built)."""
        if self._trunk is None:
            return 0
        return sum(t.numel() * t.element_size()
                   for t in (*self._trunk.parameters(), *self._trunk.buffers()))

    def invalidate(self, *args, **kwargs) -> None:
        """Drop the folded copy; the next forward builds it again from the module's weights."""
        self._trunk, self._key = None, None

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            print_log(message, logger='current', level=logging.WARNING)

    def _build(self, module: nn.Module) -> Callable:
        options = self.options
        name = type(module).__name__
        trunk: nn.Module
        self.folded_norms = 0
        if options['fold_bn']:
            try:
                trunk, self.folded_norms = fold_batch_norms(module)
            except Exception as err:  # noqa: BLE001  any module may fail to trace
                self._warn_once(
                    'trace', f'FrozenModule fast: cannot trace {name} with torch.fx ({err}); its '
                    'BatchNorms stay unfolded (fast.fold_bn has no effect)')
                trunk = _plain_copy(module)
        else:
            trunk = _plain_copy(module)
        trunk.eval()
        for param in trunk.parameters():
            param.requires_grad_(False)
        if options['channels_last']:
            trunk = trunk.to(memory_format=torch.channels_last)
        if options['compile']:
            trunk = torch.compile(trunk, options={'freezing': True})
        self.builds += 1
        print_log(f'FrozenModule fast: built the inference trunk of {name} '
                  f'({self.folded_norms} BatchNorm(s) folded, options {options})',
                  logger='current')
        return trunk

    def forward(self, module: nn.Module, *args, **kwargs) -> Any:
        """Run ``module``'s forward as inference, or as usual where it must record gradients.

        Args:
            module: the frozen module this trunk belongs to.
            *args: its forward's arguments (e.g. the image batch).
            **kwargs: its forward's keyword arguments.

        Returns:
            The module's outputs, float tensors in the default (contiguous) memory format.
        """
        if torch.is_grad_enabled() and any(
                t.requires_grad for t in (*module.parameters(), *args) if torch.is_tensor(t)):
            self._warn_once('grad', f'FrozenModule fast: {type(module).__name__} has trainable '
                            'parameters or an input that requires grad; running its plain '
                            'forward')
            return super(FastForwardMixin, module).forward(*args, **kwargs)
        key = _weights_key(module)
        if self._trunk is None or key != self._key:
            self._trunk = None
            self._trunk = self._build(module)
            self._key = key
        if self.options['channels_last']:
            args = _map_tensors(
                args, lambda t: t.contiguous(memory_format=torch.channels_last)
                if t.dim() == 4 else t)
        device = _weights_device(module).type
        bf16 = self.options['bf16'] and native_bf16(device)
        if self.options['bf16'] and not bf16:
            self._warn_once('bf16', 'FrozenModule fast: bf16 autocast applies on a GPU or a CPU '
                            'with AMX or AVX512-BF16; the trunk runs in full precision here')
        autocast = (torch.autocast(device, dtype=torch.bfloat16)
                    if bf16 else contextlib.nullcontext())
        with torch.no_grad(), autocast:
            outputs = self._trunk(*args, **kwargs)
        if bf16:
            outputs = _map_tensors(
                outputs, lambda t: t.float() if t.dtype == torch.bfloat16 else t)
        return _map_tensors(outputs, lambda t: t.contiguous())


def native_bf16(device_type: str) -> bool:
    """Whether bf16 arithmetic is native on ``device_type`` (``'cuda'`` or ``'cpu'``).

    On a CPU, oneDNN runs bf16 convolutions and matrix products on AMX tiles or AVX512-BF16
    instructions; without either it emulates them, slower than float32.
    """
    if device_type == 'cuda':
        return True
    if device_type != 'cpu':
        return False
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def _weights_device(module: nn.Module) -> torch.device:
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device('cpu')


class FastForwardMixin(ModuleMixin):
    """What a fast module's class adds: the forward of its :class:`FastTrunk`, a folded copy
    dropped at every ``load_state_dict``, and ``fast(...)`` in its repr."""

    def forward(self, *args, **kwargs) -> Any:
        """Delegate to the module's :class:`FastTrunk`."""
        return getattr(self, FAST_ATTR).forward(self, *args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        # A load may copy equal values in place; the version check sees it too, but a load is
        # when the weights are expected to change, so drop the copy there explicitly.
        getattr(self, FAST_ATTR).invalidate()
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        options = getattr(self, FAST_ATTR).options
        fast = f'fast({", ".join(key for key, on in options.items() if on)})'
        own = super().extra_repr()
        return f'{fast}, {own}' if own else fast


def make_fast(module: nn.Module, fast: Union[bool, dict] = True,
              source: str = 'FrozenModule') -> nn.Module:
    """Give a frozen module the fast forward, in place.

    Args:
        module: a module frozen by :func:`mmfrozen.models.freeze.freeze_module`.
        fast: ``True`` or a dict of options (:data:`FAST_DEFAULTS`).
        source: what asks for it, for error messages.

    Returns:
        nn.Module: the same module, its ``forward`` that of :class:`FastForwardMixin`.
    """
    options = fast_options(fast, source)
    if options is None:
        return module
    trainable = [name for name, param in module.named_parameters() if param.requires_grad]
    if trainable:
        raise ValueError(f'{source}: fast needs a wholly frozen module, but {trainable[0]} is '
                         'trainable (drop `trainable`, or `fast`)')
    setattr(module, FAST_ATTR, FastTrunk(options))
    return add_mixin(module, FastForwardMixin)


def fast_trunk_of(module: nn.Module) -> Optional[FastTrunk]:
    """The :class:`FastTrunk` of a module made fast by :func:`make_fast`, else None."""
    return getattr(module, FAST_ATTR, None)
