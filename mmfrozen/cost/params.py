"""Parameter counts of a detector, total and trainable, split into backbone, neck and heads."""
from typing import Dict, Iterable, Tuple

from torch import nn

#: Top-level children of a detector reported on their own; every other child is a head.
NAMED_PARTS = ('backbone', 'neck')
PARTS = NAMED_PARTS + ('heads', )


def unwrap_model(model: nn.Module) -> nn.Module:
    """The detector inside a DDP / MMDistributedDataParallel wrapper, or the model itself."""
    return getattr(model, 'module', model)


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
        'neck': {...}, 'heads': {...}}``; a part the model lacks counts zero. "heads" is every
        top-level child other than backbone and neck (RPN, RoI, bbox, mask heads, ...).
    """
    model = unwrap_model(model)
    by_part: Dict[str, list] = {part: [] for part in PARTS}
    for name, param in model.named_parameters():  # each shared parameter once
        by_part[part_of(name.split('.', 1)[0])].append((name, param))
    result: Dict[str, object] = _count(p for part in PARTS for p in by_part[part])
    for part in PARTS:
        result[part] = _count(by_part[part])
    return result
