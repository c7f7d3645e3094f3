"""Mixins on module instances by class swap: a module keeps its class's name and behaviour, plus
what a mixin adds, and still pickles, deep-copies and goes through ``torch.save`` whole.

:func:`add_mixin` swaps a module's class for a subclass of it with the mixin in front, made once
per original class and cached (:mod:`torch.nn.utils.parametrize` swaps classes the same way).
The subclass carries the original's ``__name__`` and ``__module__``, so messages, ``print`` and
torch.fx's leaf rule read as before (its qualified name says what it adds:
``ResNet[FrozenMixin]``); ``isinstance`` holds, ``type(module) is`` the original does not
(:func:`original_class` gives it). No method lives in an instance's ``__dict__``:
:class:`ModuleMixin`'s ``__reduce_ex__`` reduces a module as its original class does and rebuilds
it through :func:`_rebuild`, which adds the mixins back. Nothing global changes.
"""
import contextlib
import copy
from typing import Any, Callable, Dict, Iterator, Tuple

from torch import nn

#: Prefix of the instance attributes that mixins keep (the frozen root's marker, the fast
#: trunk): a rebuilt module gets them back even where its class's own reduction drops them.
MIXIN_ATTR_PREFIX = '_mmfrozen_'
_SWAPPED_CLASSES: Dict[Tuple[type, Tuple[type, ...]], type] = {}


class ModuleMixin:
    """Base of the behaviours that :func:`add_mixin` gives a module by swapping its class.

    Pickling (``torch.save`` too) and deep-copying reduce the module as its original class
    would, and rebuild it through the module-level :func:`_rebuild`, which puts the mixins
    back; so neither needs to find the generated class by name.
    """

    def __reduce_ex__(self, protocol: int) -> tuple:
        cls = type(self)
        if '_mmfrozen_origin' not in vars(cls):
            return super().__reduce_ex__(protocol)  # a subclass of a swapped class: its own way
        with _as_original(self):
            func, args, *rest = self.__reduce_ex__(protocol)
        return (_rebuild, (cls._mmfrozen_mixins, func, args, _mixin_attrs(self)), *rest)


@contextlib.contextmanager
def _as_original(module: nn.Module) -> Iterator[None]:
    """``module`` as an instance of its original class for a moment, for that class's own
    reduction or deep copy: they may look at ``type(module)`` (torch.fx's GraphModule
    recompiles its forward into it)."""
    swapped = type(module)
    module.__class__ = swapped._mmfrozen_origin
    try:
        yield
    finally:
        module.__class__ = swapped


def _mixin_attrs(module: nn.Module) -> Dict[str, Any]:
    return {key: value for key, value in vars(module).items()
            if key.startswith(MIXIN_ATTR_PREFIX)}


def _rebuild(mixins: Tuple[type, ...], func: Callable, args: tuple,
             attrs: Dict[str, Any]) -> nn.Module:
    """Unpickle (or deep-copy) a module of a swapped class: build it as its original class
    reduced it (``func(*args)``), then give it the mixins and their attributes back."""
    return _with_mixins(func(*args), mixins, attrs)


def _with_mixins(module: nn.Module, mixins: Tuple[type, ...],
                 attrs: Dict[str, Any]) -> nn.Module:
    for mixin in mixins:
        add_mixin(module, mixin)
    module.__dict__.update(attrs)
    return module


def _deepcopy_as_original(self: nn.Module, memo: dict) -> nn.Module:
    """``__deepcopy__`` of a swapped class whose original class has its own: that one copies,
    the copy gets the mixins back."""
    cls = type(self)
    with _as_original(self):
        copied = cls._mmfrozen_origin.__deepcopy__(self, memo)
    return _with_mixins(copied, cls._mmfrozen_mixins, copy.deepcopy(_mixin_attrs(self), memo))


def swapped_class(origin: type, mixins: Tuple[type, ...]) -> type:
    """The subclass of ``origin`` with ``mixins`` in front, made once and cached.

    Args:
        origin: the module's original class, e.g. ``nn.Conv2d``.
        mixins: subclasses of :class:`ModuleMixin`, first in the method resolution order first.

    Returns:
        type: a subclass of ``origin`` with its ``__name__`` and ``__module__``; its
        ``__qualname__`` names the mixins too, e.g. ``Conv2d[FrozenMixin]``.
    """
    key = (origin, mixins)
    cls = _SWAPPED_CLASSES.get(key)
    if cls is None:
        added = ', '.join(mixin.__name__ for mixin in mixins)
        namespace = dict(__module__=origin.__module__,
                         __qualname__=f'{origin.__qualname__}[{added}]',
                         __doc__=origin.__doc__, _mmfrozen_origin=origin,
                         _mmfrozen_mixins=mixins)
        if hasattr(origin, '__deepcopy__'):
            namespace['__deepcopy__'] = _deepcopy_as_original
        cls = type(origin.__name__, (*mixins, origin), namespace)
        cls = _SWAPPED_CLASSES.setdefault(key, cls)
    return cls


def add_mixin(module: nn.Module, mixin: type) -> nn.Module:
    """Put ``mixin`` in front of ``module``'s class, in place (nothing if it has it already).

    Args:
        module: any module.
        mixin: a subclass of :class:`ModuleMixin` (methods only: it has no ``__init__``).

    Returns:
        nn.Module: the same module, now an instance of :func:`swapped_class`.
    """
    if isinstance(module, mixin):
        return module
    cls = type(module)
    if '_mmfrozen_origin' in cls.__dict__:
        origin, mixins = cls._mmfrozen_origin, cls._mmfrozen_mixins
    else:
        origin, mixins = cls, ()
    try:
        module.__class__ = swapped_class(origin, mixins + (mixin, ))
    except TypeError as err:
        raise TypeError(f'mmfrozen cannot give {type(module).__name__} the behaviour of '
                        f'{mixin.__name__} (class swap refused: {err})') from err
    return module


def original_class(module: nn.Module) -> type:
    """``type(module)`` before :func:`add_mixin` swapped it (the type itself otherwise)."""
    cls = type(module)
    return cls.__dict__.get('_mmfrozen_origin', cls)


def remove_mixins(module: nn.Module) -> nn.Module:
    """Give ``module`` and every sub-module its original class back, in place.

    For copies that must run as the original code (the fast trunk's traced copy); the mixins'
    instance attributes (:data:`MIXIN_ATTR_PREFIX`) go too.

    Returns:
        nn.Module: the same module.
    """
    for sub in module.modules():
        sub.__class__ = original_class(sub)
        for key in list(_mixin_attrs(sub)):
            del sub.__dict__[key]
    return module
