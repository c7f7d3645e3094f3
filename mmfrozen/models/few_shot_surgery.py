"""Weight surgery between the two stages of few-shot detection: a base detector's checkpoint
made into one that predicts the base and the novel classes.

After base training the detector's last layers have one row (or block of rows) per base class;
the K-shot stage's detector has one per class of the split, base and novel, in the data set's
order. :func:`few_shot_surgery` builds those layers, as TFA's ``ckpt_surgery.py --method
randinit`` (and mmfewshot's ``initialize_bbox_head.py --method random_init``) do, mapping the
classes by name:

* every tensor that does not depend on the classes is copied unchanged;
* in each class-dependent layer (:data:`CLASS_LAYERS`), the rows of every base class are copied
  unchanged, to the position of that class among the new classes; a softmax classifier's
  background row (MMDetection puts it last) is copied to the new last row;
* the rows of the novel classes are initialised as TFA does: weights drawn from a normal
  distribution of mean 0 and standard deviation ``std`` (0.01, for classifier and box
  regressor alike), biases 0; sigmoid classifiers, which have no background row (RetinaNet's
  ``retina_cls``, an ``fc_cls`` with ``use_sigmoid``), get the bias of MMDetection's
  prior-probability initialisation instead, ``-log((1 - 0.01) / 0.01)``, so that a novel class
  starts as unlikely as MMDetection starts every class. The draws come from
  ``torch.Generator().manual_seed(seed)``, layer by layer in key order: the same seed gives the
  same checkpoint.

The class-dependent layers are found by name and shape: ``fc_cls`` and ``fc_reg`` of the box
heads (Faster / Mask R-CNN, every stage of Cascade R-CNN; a class-agnostic ``fc_reg`` with 4 rows
is left as it is), ``conv_logits`` of the mask heads (a class-agnostic one is left), and
RetinaNet's ``retina_cls`` (rows anchor-major: anchor ``a``, class ``c`` at ``a * C + c``).
"""
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

#: Layers whose rows depend on the classes, by the last part of their module name.
CLASS_LAYERS = ('fc_cls', 'fc_reg', 'conv_logits', 'retina_cls')
#: TFA's standard deviation for the novel rows' weights.
DEFAULT_STD = 0.01
#: MMDetection's prior probability for sigmoid classifiers (``bias_prob=0.01``).
PRIOR_PROB = 0.01


class SurgeryError(ValueError):
    """A checkpoint or a class list the surgery cannot use; the message names which."""


@dataclass
class ClassLayer:
    """One class-dependent layer of a checkpoint.

    Attributes:
        name: its module name (``roi_head.bbox_head.fc_cls``).
        kind: the last part of the name (one of :data:`CLASS_LAYERS`).
        rows_per_class: rows of one class (4 for a box regressor, else 1).
        groups: how many times the class rows repeat (RetinaNet's anchors per position).
        background: whether a background row follows the class rows (softmax classifiers).
        sigmoid: whether it is a classifier without a background row.
    """
    name: str
    kind: str
    rows_per_class: int = 1
    groups: int = 1
    background: bool = False
    sigmoid: bool = False

    def rows(self, num_classes: int) -> int:
        """Its number of rows for ``num_classes`` classes."""
        return self.groups * num_classes * self.rows_per_class + int(self.background)

    def row_map(self, old_index: Dict[int, int], num_old: int, num_new: int) -> List[int]:
        """For each new row, the old row it copies, or -1 for a row to initialise.

        Args:
            old_index: new class position -> old class position, for the classes both have.
            num_old: old number of classes.
            num_new: new number of classes.
        """
        out = []
        for group in range(self.groups):
            for new_class in range(num_new):
                old_class = old_index.get(new_class)
                for r in range(self.rows_per_class):
                    out.append(-1 if old_class is None else
                               (group * num_old + old_class) * self.rows_per_class + r)
        if self.background:
            out.append(self.groups * num_old * self.rows_per_class)
        return out


def find_class_layers(state_dict: Dict[str, torch.Tensor], num_classes: int,
                      source: str = 'the checkpoint') -> List[ClassLayer]:
    """The class-dependent layers of a state dict made for ``num_classes`` classes.

    Args:
        state_dict: the model's tensors.
        num_classes: how many classes the model predicts.
        source: the checkpoint, for messages.

    Returns:
        list: the layers, by module name; class-agnostic ones left out.

    Raises:
        SurgeryError: a layer's rows fit no layout of ``num_classes`` classes, or there is no
            class-dependent layer at all.
    """
    layers = []
    for key in sorted(state_dict):
        module, _, param = key.rpartition('.')
        kind = module.rpartition('.')[2]
        if param != 'weight' or kind not in CLASS_LAYERS:
            continue
        rows = state_dict[key].shape[0]
        layer = _layout(module, kind, rows, num_classes)
        if layer is None:
            raise SurgeryError(
                f'{source}: {key} has {rows} rows, which fits no layout of a {kind} layer for '
                f'{num_classes} classes. Are the base classes (--base-classes, or the '
                "checkpoint's meta.dataset_meta.classes) those the model was trained on?")
        if layer.kind != 'agnostic':
            layers.append(layer)
    if not layers:
        raise SurgeryError(f'{source}: no class-dependent layer (any of {", ".join(CLASS_LAYERS)}'
                           ') to extend; is it a detector checkpoint of MMDetection?')
    return layers


def _layout(module: str, kind: str, rows: int, num_classes: int) -> Optional[ClassLayer]:
    """How a layer's rows hold ``num_classes`` classes (kind ``'agnostic'`` if they do not
    depend on them), or None."""
    if kind == 'fc_cls':
        if rows == num_classes + 1:
            return ClassLayer(module, kind, background=True)
        if rows == num_classes:
            return ClassLayer(module, kind, sigmoid=True)
    elif kind == 'fc_reg':
        if rows == 4 * num_classes:
            return ClassLayer(module, kind, rows_per_class=4)
        if rows == 4:
            return ClassLayer(module, 'agnostic')
    elif kind == 'conv_logits':
        if rows == num_classes:
            return ClassLayer(module, kind)
        if rows == 1:
            return ClassLayer(module, 'agnostic')
    elif kind == 'retina_cls' and rows % num_classes == 0:
        return ClassLayer(module, kind, groups=rows // num_classes, sigmoid=True)
    return None


def few_shot_surgery(state_dict: Dict[str, torch.Tensor], base_classes: Sequence[str],
                     classes: Sequence[str], std: float = DEFAULT_STD, seed: int = 0,
                     source: str = 'the checkpoint'
                     ) -> Tuple['OrderedDict[str, torch.Tensor]', List[ClassLayer]]:
    """A state dict for ``classes`` from one trained on ``base_classes`` (module doc).

    Args:
        state_dict: the base detector's tensors.
        base_classes: the classes it predicts, in its order.
        classes: the classes of the new detector, in its order; every base class among them.
        std: standard deviation of the novel rows' weights.
        seed: seed of their draws.
        source: the checkpoint, for messages.

    Returns:
        tuple: the new state dict (keys in the old order) and the layers changed.

    Raises:
        SurgeryError: a base class is not among ``classes``, a class appears twice, or the
            layers do not fit the base classes.
    """
    for what, names in (('base classes', base_classes), ('classes', classes)):
        repeated = sorted({n for n in names if list(names).count(n) > 1})
        if repeated:
            raise SurgeryError(f'{source}: the {what} name {repeated} more than once.')
    missing = [name for name in base_classes if name not in classes]
    if missing:
        raise SurgeryError(f'{source}: base classes {missing} are not among the new classes '
                           f'{list(classes)}; the new detector must predict every base class '
                           '(same names, e.g. "traffic light", not "traffic_light").')
    old_index = {classes.index(name): k for k, name in enumerate(base_classes)}
    layers = find_class_layers(state_dict, len(base_classes), source)
    generator = torch.Generator().manual_seed(int(seed))
    out = OrderedDict(state_dict)
    for layer in layers:  # in key order: the draws depend only on the seed
        rows = layer.row_map(old_index, len(base_classes), len(classes))
        for param in ('weight', 'bias'):
            key = f'{layer.name}.{param}'
            if key not in state_dict:
                continue
            old = state_dict[key]
            new = _novel_rows(layer, param, (len(rows), *old.shape[1:]), old.dtype, std,
                              generator)
            copied = [i for i, r in enumerate(rows) if r >= 0]
            new[copied] = old[[rows[i] for i in copied]]
            out[key] = new
    return out, layers


def _novel_rows(layer: ClassLayer, param: str, shape: Tuple[int, ...], dtype: torch.dtype,
                std: float, generator: torch.Generator) -> torch.Tensor:
    """A tensor of ``shape`` holding the novel rows' initial values everywhere."""
    if param == 'weight':
        return torch.normal(0.0, float(std), size=shape, generator=generator).to(dtype)
    if layer.sigmoid:
        return torch.full(shape, -math.log((1 - PRIOR_PROB) / PRIOR_PROB), dtype=dtype)
    return torch.zeros(shape, dtype=dtype)


def surgery_checkpoint(checkpoint: Dict, classes: Sequence[str], novel: Sequence[str],
                       base_classes: Optional[Sequence[str]] = None, std: float = DEFAULT_STD,
                       seed: int = 0, source: str = 'the checkpoint') -> Dict:
    """A checkpoint for the K-shot stage from a base-training checkpoint of MMEngine.

    Args:
        checkpoint: the loaded base checkpoint (``state_dict`` and ``meta``).
        classes: the K-shot stage's classes, in the data set's order.
        novel: which of them are novel (for the record; each must be among ``classes`` and not
            among the base classes).
        base_classes: the base detector's classes, in its order; None: the checkpoint's
            ``meta.dataset_meta.classes`` (MMEngine saves the training set's there).
        std: standard deviation of the novel rows' weights.
        seed: seed of their draws.
        source: the checkpoint's path, for messages and the record.

    Returns:
        dict: ``state_dict`` and ``meta`` only (no optimizer or scheduler state: the K-shot
        stage starts afresh through ``load_from``); ``meta.dataset_meta.classes`` is
        ``classes`` and ``meta.few_shot_surgery`` records what was done.

    Raises:
        SurgeryError: no base classes known, or the class lists do not fit.
    """
    meta = dict(checkpoint.get('meta') or {})
    if base_classes is None:
        base_classes = (meta.get('dataset_meta') or {}).get('classes')
        if not base_classes:
            raise SurgeryError(f'{source}: its meta has no dataset_meta.classes (MMEngine saves '
                               "the training set's classes there); give the base classes "
                               '(--base-classes) in the order the model was trained on.')
    base_classes = list(base_classes)
    wrong = [n for n in novel if n not in classes or n in base_classes]
    if wrong:
        raise SurgeryError(f'{source}: novel classes {wrong} are not new classes that the base '
                           'detector lacks.')
    new_classes = [c for c in classes if c not in base_classes]
    if sorted(new_classes) != sorted(novel):
        raise SurgeryError(f'{source}: the classes the base detector lacks, {new_classes}, are '
                           f'not the novel classes {list(novel)}.')
    state_dict, layers = few_shot_surgery(checkpoint['state_dict'], base_classes, classes, std,
                                          seed, source)
    # only the classes: the base set's other metainfo (a palette per class) no longer fits
    meta['dataset_meta'] = dict(classes=tuple(classes))
    meta['few_shot_surgery'] = dict(
        source=source, base_classes=base_classes, classes=list(classes), novel=list(novel),
        init=f'normal(0, {std}) weights; biases 0, sigmoid classifiers {-math.log(99):.4f}',
        seed=int(seed), layers=[layer.name for layer in layers])
    return dict(state_dict=state_dict, meta=meta)
