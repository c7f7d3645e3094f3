"""What a model holds in training: parameters (counted per part and in bytes), gradients,
optimizer state, and the activations saved for backward.

Activations are what autograd keeps from the forward pass for the backward pass, recorded
with ``torch.autograd.graph.saved_tensors_hooks`` and measured at the moment backward starts:
tensors that share a storage count once, and storages of the model's own parameters and
buffers are left out (they are counted as parameters). A frozen layer whose input needs no
gradient saves nothing.
"""
import weakref
from typing import Dict, Iterable, List, Optional, Set, Tuple

import torch
from torch import nn

from ..utils import unwrap_model

MB = 2**20


def _storage_key(tensor: torch.Tensor) -> Optional[Tuple[str, int]]:
    """(device, address) of the storage behind ``tensor``; None for tensors without one."""
    try:
        storage = tensor.untyped_storage()
        return str(tensor.device), storage.data_ptr()
    except (RuntimeError, NotImplementedError):
        return None


class SavedActivationTracker:
    """Record the tensors autograd saves for backward while the context is active.

    Args:
        exclude: tensors whose storages are not activations, typically
            ``list(model.parameters()) + list(model.buffers())``.

    Example:
        >>> with SavedActivationTracker(model.parameters()) as saved:
        ...     loss = model(x).sum()
        ...     saved_bytes = saved.live_bytes()
        ...     loss.backward()
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        self._excluded: Set[Tuple[str, int]] = {
            key
            for key in map(_storage_key, exclude) if key is not None
        }
        self._refs: List[weakref.ref] = []
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        self._refs.append(weakref.ref(tensor))
        return tensor

    @staticmethod
    def _unpack(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def __enter__(self) -> 'SavedActivationTracker':
        self._refs.clear()
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._hooks.__exit__(*exc_info)

    def live_bytes(self) -> int:
        """Bytes of the distinct storages that saved tensors still hold now.

        Call it when backward is about to start: a graph that was dropped during the forward
        pass (e.g. of a branch that does not reach the loss) no longer holds its tensors.
        """
        storages: Dict[Tuple[str, int], int] = {}
        for ref in self._refs:
            tensor = ref()
            if tensor is None:
                continue
            key = _storage_key(tensor)
            if key is None or key in self._excluded or key[1] == 0:
                continue
            storages[key] = tensor.untyped_storage().nbytes()
        return sum(storages.values())


def _tensors_bytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _optimizer_state_tensors(optimizer: torch.optim.Optimizer) -> Iterable[torch.Tensor]:
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                yield value


def model_state_bytes(model: nn.Module,
                      optimizer: Optional[torch.optim.Optimizer] = None) -> Dict[str, int]:
    """Bytes of parameters, their gradients and the optimizer's state.

    Gradient bytes are those of the trainable parameters (a gradient has its parameter's size
    and dtype), so they do not depend on whether ``zero_grad`` has freed them. The optimizer's
    state exists only after its first step (e.g. SGD momentum, Adam's two moments).

    Args:
        model: the model.
        optimizer: its optimizer (``optim_wrapper.optimizer``), or None.

    Returns:
        dict: ``{'params': int, 'grads': int, 'optimizer_state': int}``, in bytes.
    """
    params = list(model.parameters())
    return dict(
        params=_tensors_bytes(params),
        grads=_tensors_bytes(p for p in params if p.requires_grad),
        optimizer_state=_tensors_bytes(_optimizer_state_tensors(optimizer))
        if optimizer is not None else 0)


#: Top-level children of a detector reported on their own; every other child is a head.
NAMED_PARTS = ('backbone', 'neck')
PARTS = NAMED_PARTS + ('heads', )
#: The child that holds a module's adapters (:data:`mmfrozen.models.adapters.ADAPTERS_ATTR`),
#: counted again on their own: the trained part of a frozen backbone with adapters.
ADAPTERS = 'adapters'


def part_of(child_name: str) -> str:
    """The part (``'backbone'``, ``'neck'`` or ``'heads'``) a detector's child belongs to."""
    return child_name if child_name in NAMED_PARTS else 'heads'


def _count(params: Iterable[Tuple[str, nn.Parameter]]) -> Dict[str, int]:
    total = trainable = 0
    for _, param in params:
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return dict(total=total, trainable=trainable)


def count_parameters(model: nn.Module) -> Dict[str, object]:
    """Count a model's parameters, as trained: those with ``requires_grad`` are trainable.

    Whatever set ``requires_grad=False`` counts (mmfrozen's ``freeze``, ResNet's
    ``frozen_stages``, ...). A parameter shared by several modules counts once.

    Args:
        model: the detector (a DDP wrapper is unwrapped).

    Returns:
        dict: ``{'total': int, 'trainable': int, 'backbone': {'total', 'trainable'},
        'neck': {...}, 'heads': {...}, 'adapters': {...}}``; a part the model lacks counts
        zero. "heads" is every top-level child other than backbone and neck (RPN, RoI, bbox,
        mask heads, ...); "adapters" the parameters under an ``adapters`` child anywhere
        (:mod:`mmfrozen.models.adapters`), also counted in their part.
    """
    model = unwrap_model(model)
    by_part: Dict[str, list] = {part: [] for part in PARTS}
    adapters = []
    for name, param in model.named_parameters():  # each shared parameter once
        by_part[part_of(name.split('.', 1)[0])].append((name, param))
        if ADAPTERS in name.split('.')[:-1]:
            adapters.append((name, param))
    result: Dict[str, object] = _count(p for part in PARTS for p in by_part[part])
    for part in PARTS:
        result[part] = _count(by_part[part])
    result[ADAPTERS] = _count(adapters)
    return result
