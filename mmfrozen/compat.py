"""Fixes that let the pinned OpenMMLab stack run on current releases.

Every fix in mmfrozen for a third-party bug or incompatibility lives here, is applied once by
``import mmfrozen`` (:func:`apply_all`), and has a test that fails without it (``docs/fixes.md``
names them). Each :class:`Fix` in :data:`FIXES` states the versions that need it, and is applied
only where both hold:

1. the installed versions are inside its range (:meth:`Fix.in_range`: every requirement of
   :attr:`Fix.versions` holds for the version ``importlib.metadata`` reports; a package that is
   not installed is outside, unless the requirement says ``or absent``);
2. its feature check (:attr:`Fix.needed`) finds the problem in the installed code.

Each one applied is logged once at debug level on the ``mmfrozen`` logger. A release outside a
range needs the fix checked again (and the range widened) or dropped. The names below are those
``MMFROZEN_NO_COMPAT`` takes (:func:`apply_all`).

==========================  ========================  ============================================
fix                         versions that need it     why
==========================  ========================  ============================================
allow_mmengine_checkpoints  torch>=2.6,               torch>=2.6 loads with ``weights_only=True``
                            mmengine<=0.10.7          and mmengine calls ``torch.load`` without
                                                      ``weights_only``: it refuses its own
                                                      checkpoints (resume breaks). We allow
                                                      exactly the classes an MMEngine checkpoint
                                                      holds, and nothing that runs code.
patch_lvis_numpy            lvis<=0.5.3,              lvis 0.5.3 (PyPI) calls ``np.float``,
                            numpy>=1.24               removed in NumPy 1.24; only ``lvis.eval``
                                                      gets it back.
patch_cpu_launcher          mmengine<=0.10.7          mmengine's ``pytorch`` launcher calls
                                                      ``torch.cuda.set_device`` even for gloo,
                                                      which fails on a CPU build of torch.
patch_cpu_ddp               mmengine<=0.10.7          mmengine's runner wraps the model with
                                                      ``device_ids=[LOCAL_RANK]``, which DDP
                                                      refuses for a model on the CPU.
patch_package_lookup        mmengine<=0.10.7,         ``mmdet::`` bases: mmengine finds packages
                            setuptools>=81 or absent  through ``pkg_resources``, which
                                                      setuptools>=81 no longer ships (nor does an
                                                      environment without setuptools).
define_torchvision_ops      torchvision>=0.19,<0.29   a torchvision built for another torch
                                                      (PyPI's 0.28 for torch 2.13 is linked to
                                                      the CUDA build) cannot load its C++ ops
                                                      here, and 0.19-0.28 register fake kernels
                                                      for ``torchvision::nms``/``qnms``
                                                      regardless, which torch refuses for
                                                      undefined operators: ``import torchvision``
                                                      (and so ``import timm``) fails. We define
                                                      the two operators, without kernels, so that
                                                      its Python part imports; calling them still
                                                      fails, naming them.
==========================  ========================  ============================================
"""
import functools
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import os.path as osp
import pickle
import sys
import types
from typing import Any, Callable, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
from packaging.requirements import Requirement

_APPLIED: List[str] = []


def _once(func: Callable[[], None]) -> Callable[[], None]:
    """Make a fix idempotent and remember that it ran."""

    @functools.wraps(func)
    def wrapper() -> None:
        if func.__name__ not in _APPLIED:
            func()
            _APPLIED.append(func.__name__)

    return wrapper


# --------------------------------------------------------------------------------------------
# torch.load(weights_only=True) and MMEngine checkpoints
# --------------------------------------------------------------------------------------------
def mmengine_checkpoint_globals() -> List[Any]:
    """The non-tensor classes and functions that an MMEngine checkpoint pickles.

    A checkpoint saved by mmengine's runner holds, besides tensors and plain containers, the
    message hub's :class:`~mmengine.logging.HistoryBuffer` objects, the NumPy arrays and
    scalars inside them and inside ``meta``, and each buffer's statistics methods, pickled as
    ``getattr(HistoryBuffer, 'mean')``. ``builtins.getattr`` itself is not allowed: the name
    maps to :func:`history_buffer_statistic`, which resolves those methods and nothing else.

    Returns:
        list: objects (or ``(object, name)`` pairs) for
        :func:`torch.serialization.add_safe_globals`.
    """
    from mmengine.logging import HistoryBuffer

    np_core = getattr(np, '_core', None) or np.core
    allowed: List[Any] = [
        HistoryBuffer,
        (history_buffer_statistic, 'builtins.getattr'),
        np.ndarray,
        np.dtype,
        np_core.multiarray._reconstruct,
        np_core.multiarray.scalar,
    ]
    # NumPy pickles a dtype by its class (numpy.dtypes.Float64DType, ...) since 1.25.
    for scalar_type in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                        np.uint32, np.uint64, np.float16, np.float32, np.float64, np.str_):
        allowed.append(type(np.dtype(scalar_type)))
    return allowed


_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_statistic(owner: Any, name: str) -> Callable:
    """``getattr`` as MMEngine checkpoints use it: a statistics method of HistoryBuffer only.

    Args:
        owner: must be :class:`mmengine.logging.HistoryBuffer`.
        name: a statistics method registered on it (``mean``, ``max``, ...).

    Returns:
        Callable: the unbound method.

    Raises:
        pickle.UnpicklingError: for anything else, which a checkpoint has no reason to hold.
    """
    from mmengine.logging import HistoryBuffer
    known = set(_DEFAULT_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and isinstance(name, str) and name in known:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); only HistoryBuffer statistics '
        f'methods ({", ".join(sorted(known))}) are allowed')


def _refuse_clearly(load: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap mmengine's local checkpoint loader so a refused file names itself and the reason."""

    @functools.wraps(load)
    def load_from_local(filename: str, map_location: Any = None) -> Any:
        try:
            return load(filename, map_location)
        except pickle.UnpicklingError as err:
            raise pickle.UnpicklingError(
                f'Refused to load checkpoint {filename!r}: it holds objects that are not '
                'tensors, containers or the MMEngine classes mmfrozen allows '
                '(see mmfrozen.compat.mmengine_checkpoint_globals). A checkpoint is untrusted '
                'input; load it with torch.load(weights_only=False) yourself only if you trust '
                f'its source.\n{err}') from err
        except (RuntimeError, EOFError, ValueError) as err:
            # torch names no file when a checkpoint is truncated or not a checkpoint at all
            raise type(err)(f'Could not read checkpoint {filename!r} (truncated, or not a '
                            f'checkpoint?): {err}') from err

    load_from_local.__wrapped_by_mmfrozen__ = True  # type: ignore[attr-defined]
    return load_from_local


@_once
def allow_mmengine_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` read MMEngine checkpoints, and only those."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch<2.4 has no weights_only allow-list, nor needs one
        return
    add_safe_globals(mmengine_checkpoint_globals())

    from mmengine.runner.checkpoint import CheckpointLoader
    local = CheckpointLoader._schemes['']
    if not getattr(local, '__wrapped_by_mmfrozen__', False):
        CheckpointLoader._schemes[''] = _refuse_clearly(local)


# --------------------------------------------------------------------------------------------
# lvis 0.5.3 and NumPy 2
# --------------------------------------------------------------------------------------------
class _NumpyForLvis(types.ModuleType):
    """NumPy as lvis 0.5.3 expects it: with the ``np.float`` alias of ``float``."""

    def __init__(self) -> None:
        super().__init__('numpy')

    def __getattr__(self, name: str) -> Any:
        if name == 'float':
            return float
        return getattr(np, name)


@_once
def patch_lvis_numpy() -> None:
    """Give ``lvis.eval`` (only) the ``np.float`` alias that NumPy>=1.24 removed."""
    if hasattr(np, 'float') and np.float is float:  # type: ignore[attr-defined]
        return
    try:
        import lvis.eval as lvis_eval
    except ImportError:
        return
    if getattr(lvis_eval.np, 'float', None) is not float:
        lvis_eval.np = _NumpyForLvis()


# --------------------------------------------------------------------------------------------
# mmengine's `pytorch` launcher and DDP on a CPU build of torch
# --------------------------------------------------------------------------------------------
def _has_accelerator() -> bool:
    from mmengine.device import (is_cuda_available, is_mlu_available, is_musa_available,
                                 is_npu_available)
    return (is_cuda_available() or is_mlu_available() or is_npu_available()
            or is_musa_available())


@_once
def patch_cpu_launcher() -> None:
    """Let ``--launcher pytorch`` start gloo process groups where there is no GPU."""
    import torch.distributed as torch_dist
    from mmengine.dist import utils as dist_utils

    original = dist_utils._init_dist_pytorch

    @functools.wraps(original)
    def _init_dist_pytorch(backend: str, init_backend: str = 'torch', **kwargs: Any) -> None:
        if _has_accelerator() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            raise RuntimeError(
                'The nccl backend needs CUDA, and this torch has none. For CPU processes use '
                'gloo: --cfg-options env_cfg.dist_cfg.backend=gloo')
        # No device to select: torch.cuda.set_device would fail on a CPU build.
        torch_dist.init_process_group(backend=backend, **kwargs)

    dist_utils._init_dist_pytorch = _init_dist_pytorch


@_once
def patch_cpu_ddp() -> None:
    """Drop ``device_ids`` when mmengine wraps a model that lives on the CPU in DDP."""
    from mmengine.model.wrappers import MMDistributedDataParallel

    original = MMDistributedDataParallel.__init__

    @functools.wraps(original)
    def __init__(self: Any, module: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        devices = {t.device.type for t in module.parameters()}
        devices |= {t.device.type for t in module.buffers()}
        if devices <= {'cpu'} and kwargs.get('device_ids') is not None:
            kwargs['device_ids'] = None  # DDP refuses device_ids for CPU modules
        original(self, module, *args, **kwargs)

    MMDistributedDataParallel.__init__ = __init__


# --------------------------------------------------------------------------------------------
# `mmdet::` config bases without pkg_resources
# --------------------------------------------------------------------------------------------
def is_installed(package: str) -> bool:
    """Whether ``package`` is installed, as mmengine's, through importlib.metadata."""
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def get_installed_path(package: str) -> str:
    """Where ``package``'s module lives, as mmengine's, through importlib.

    Args:
        package: a distribution or module name, e.g. ``'mmdet'``.

    Returns:
        str: the directory of the package's top-level module.
    """
    module = package
    try:
        dist = importlib.metadata.distribution(package)
        top_level = dist.read_text('top_level.txt')
        if top_level and top_level.split():
            module = top_level.split()[0]
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise importlib.metadata.PackageNotFoundError(package)
    if spec.origin is None:
        raise RuntimeError(f'{package} is a namespace package, which is invalid '
                           'for `get_install_path`')
    return osp.dirname(spec.origin)


@_once
def patch_package_lookup() -> None:
    """Resolve ``mmdet::`` bases with importlib instead of ``pkg_resources``."""
    import mmengine.config.config as config_module
    import mmengine.utils as utils_module
    import mmengine.utils.package_utils as package_utils
    for module in (package_utils, utils_module, config_module):
        module.is_installed = is_installed
        module.get_installed_path = get_installed_path
    try:
        import mmengine.hub.hub as hub_module
        hub_module.get_installed_path = get_installed_path
    except ImportError:
        pass


# --------------------------------------------------------------------------------------------
# torchvision's Python part where its C++ ops do not load (timm imports it)
# --------------------------------------------------------------------------------------------
#: The operators torchvision 0.28 registers fake kernels for without checking that its library
#: loaded (torchvision/_meta_registrations.py), with the schemas its C++ library defines.
TORCHVISION_UNGUARDED_OPS = (
    'nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
    'qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
)
_torchvision_library: List[Any] = []  # the Library must live as long as its definitions


@_once
def define_torchvision_ops() -> None:
    """Define torchvision's unguarded operators (no kernels), so that it imports without them."""
    library = torch.library.Library('torchvision', 'FRAGMENT')
    for schema in TORCHVISION_UNGUARDED_OPS:
        library.define(schema)
    _torchvision_library.append(library)


# --------------------------------------------------------------------------------------------
# feature checks: does the installed code have the problem
# --------------------------------------------------------------------------------------------
def _source_mentions(obj: Any, text: str) -> bool:
    try:
        return text in inspect.getsource(obj)
    except (OSError, TypeError):
        return False


def torch_loads_weights_only_and_mmengine_does_not_ask() -> bool:
    """torch>=2.6 defaults to ``weights_only=True``; mmengine 0.10.7 does not pass it."""
    if getattr(torch.serialization, 'add_safe_globals', None) is None:
        return False
    default = inspect.signature(torch.load).parameters['weights_only'].default
    if default is False:
        return False
    from mmengine.runner import checkpoint
    return not _source_mentions(checkpoint.load_from_local, 'weights_only')


def lvis_needs_np_float() -> bool:
    """lvis (0.5.3) calls ``np.float``, which NumPy>=1.24 no longer has."""
    if hasattr(np, 'float') and np.float is float:  # type: ignore[attr-defined]
        return False
    spec = importlib.util.find_spec('lvis')
    return spec is not None and spec.origin is not None and _source_mentions_file(
        osp.join(osp.dirname(spec.origin), 'eval.py'), 'np.float')


def _source_mentions_file(path: str, text: str) -> bool:
    try:
        with open(path) as f:
            return text in f.read()
    except OSError:
        return False


def launcher_sets_cuda_device_without_cuda() -> bool:
    """mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device``; this torch has no GPU."""
    from mmengine.dist import utils as dist_utils
    return (not _has_accelerator()
            and _source_mentions(dist_utils._init_dist_pytorch, 'set_device'))


def runner_passes_device_ids_without_cuda() -> bool:
    """mmengine's runner wraps DDP with ``device_ids``; this torch has no GPU to give it."""
    from mmengine.runner import Runner
    return (not _has_accelerator()
            and _source_mentions(Runner.wrap_model, 'device_ids'))


def mmengine_needs_missing_pkg_resources() -> bool:
    """mmengine finds packages through ``pkg_resources``, which setuptools>=81 dropped."""
    from mmengine.utils import package_utils
    if not _source_mentions(package_utils, 'pkg_resources'):
        return False
    if 'pkg_resources' in sys.modules:
        return sys.modules['pkg_resources'] is None
    return importlib.util.find_spec('pkg_resources') is None


def torchvision_ops_do_not_load() -> bool:
    """torchvision is installed, not imported yet, and its C++ library does not load here."""
    if _torchvision_library:
        return True  # the operators are ours: the library did not load
    if 'torchvision' in sys.modules:
        return False
    spec = importlib.util.find_spec('torchvision')
    if spec is None or not spec.submodule_search_locations:
        return False
    if any(hasattr(torch.ops.torchvision, op.split('(')[0]) for op in TORCHVISION_UNGUARDED_OPS):
        return False
    import glob
    libraries = [path for location in spec.submodule_search_locations
                 for path in glob.glob(osp.join(location, '_C.*'))]
    try:
        for path in libraries:
            torch.ops.load_library(path)  # what torchvision does first; kept if it works
    except (ImportError, OSError):
        return True
    return not libraries


# --------------------------------------------------------------------------------------------
# which versions need a fix
# --------------------------------------------------------------------------------------------
#: The end of a requirement in :attr:`Fix.versions` under which an absent package is in range.
OR_ABSENT = ' or absent'


def installed_version(package: str) -> Optional[str]:
    """The installed version of the distribution ``package``, as ``importlib.metadata`` has it.

    Args:
        package: a distribution name, e.g. ``'mmengine'``.

    Returns:
        str or None: its version, or None where it is not installed.
    """
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def requirement_holds(requirement: str) -> bool:
    """Whether the installed version of a package satisfies ``requirement``.

    Args:
        requirement: a distribution name and PEP 440 specifiers, ``'torch>=2.6'``, optionally
            ending in ``' or absent'``. Pre-releases and local builds (``2.13.0+cpu``) count as
            their version.

    Returns:
        bool: the installed version is inside the specifiers; for an absent package, whether
        the requirement ends in ``' or absent'``.
    """
    absent_ok = requirement.endswith(OR_ABSENT)
    parsed = Requirement(requirement[:-len(OR_ABSENT)] if absent_ok else requirement)
    version = installed_version(parsed.name)
    if version is None:
        return absent_ok
    return parsed.specifier.contains(version, prereleases=True)


class Fix(NamedTuple):
    """A fix, the versions that need it, the check that the installed code does, and why.

    Attributes:
        apply: applies the fix, once.
        versions: requirements that must all hold (:func:`requirement_holds`) for the fix to
            apply: the releases known to have the problem.
        needed: the feature check, true where the installed code has the problem.
        why: one line for the debug log.
    """
    apply: Callable[[], None]
    versions: Tuple[str, ...]
    needed: Callable[[], bool]
    why: str

    def in_range(self) -> bool:
        """Whether the installed versions are inside every requirement of :attr:`versions`."""
        return all(requirement_holds(requirement) for requirement in self.versions)


FIXES = (
    Fix(allow_mmengine_checkpoints, ('torch>=2.6', 'mmengine<=0.10.7'),
        torch_loads_weights_only_and_mmengine_does_not_ask,
        'torch.load defaults to weights_only=True and mmengine does not pass it'),
    Fix(patch_lvis_numpy, ('lvis<=0.5.3', 'numpy>=1.24'), lvis_needs_np_float,
        'lvis calls np.float, gone from this NumPy'),
    Fix(patch_cpu_launcher, ('mmengine<=0.10.7', ), launcher_sets_cuda_device_without_cuda,
        "mmengine's pytorch launcher calls torch.cuda.set_device and this torch has no GPU"),
    Fix(patch_cpu_ddp, ('mmengine<=0.10.7', ), runner_passes_device_ids_without_cuda,
        'mmengine wraps DDP with device_ids and this torch has no GPU'),
    Fix(patch_package_lookup, ('mmengine<=0.10.7', 'setuptools>=81' + OR_ABSENT),
        mmengine_needs_missing_pkg_resources,
        'mmengine looks packages up with pkg_resources, which is not installed'),
    Fix(define_torchvision_ops, ('torchvision>=0.19,<0.29', ), torchvision_ops_do_not_load,
        "torchvision's C++ ops do not load into this torch, and it registers fake kernels "
        'for two of them regardless'),
)

logger = logging.getLogger('mmfrozen')


def apply_all() -> List[str]:
    """Apply, once, every fix whose range the installed versions are in and whose check finds
    the problem (``import mmfrozen`` does this).

    Set ``MMFROZEN_NO_COMPAT=1`` to skip them all, or to a comma-separated list of fix names to
    skip those only, e.g. to check that one is still needed (where torchvision cannot load its
    ops, mmfrozen itself needs ``define_torchvision_ops`` to import).

    Returns:
        list: names of the fixes applied so far.
    """
    skip = os.environ.get('MMFROZEN_NO_COMPAT', '')
    if skip == '1':
        return list(_APPLIED)
    skipped = {name.strip() for name in skip.split(',') if name.strip()}
    for fix in FIXES:
        name = fix.apply.__name__
        if name in _APPLIED or name in skipped:
            continue
        if fix.in_range() and fix.needed():  # the range first: the checks read mmengine's code
            fix.apply()
            logger.debug('mmfrozen.compat applied %s: %s (%s)', name, fix.why,
                         ', '.join(fix.versions))
    return list(_APPLIED)
