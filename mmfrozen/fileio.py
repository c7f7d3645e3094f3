"""Read results files without letting them run code.

A pickle runs whatever its ``__reduce__`` asks for, so ``pickle.load`` on a results file from
elsewhere is running that file's code. :func:`load_results` reads what ``tools/test.py --out``
writes (mmdet's ``DumpDetResults``: lists and dicts of tensors, NumPy arrays, numbers, strings
and bytes) and refuses anything else, naming the file and what it asked for. JSON results are
read as JSON.
"""
import collections
import functools
import io
import json
import os.path as osp
import pickle
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from mmengine import fileio

PICKLE_SUFFIXES = ('.pkl', '.pickle')
JSON_SUFFIXES = ('.json', )


class UnsafeResultsError(pickle.UnpicklingError):
    """A results file that asks to build something other than data."""


def _storage_from_bytes(data: bytes, source: str) -> Any:
    # torch pickles a storage as torch.storage._load_from_bytes(torch.save bytes), which calls
    # torch.load(weights_only=False): the bytes could hold code again. Tensors only here.
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeResultsError(
            f'Refused to read results file {source!r}: a tensor storage in it holds more than '
            f'tensor data.\n{err}') from err


def _latin1_bytes(text: str, encoding: str = 'latin1') -> bytes:
    # Pickle protocol 2 (mmengine's dump uses it) writes bytes as _codecs.encode(text, 'latin1').
    if encoding not in ('latin1', 'latin-1') or not isinstance(text, str):
        raise UnsafeResultsError(f'_codecs.encode with {encoding!r}: results pickles only use '
                                 'latin1')
    return text.encode('latin1')


def _numpy_globals() -> Dict[Tuple[str, str], Any]:
    np_core = getattr(np, '_core', None) or np.core
    allowed: Dict[Tuple[str, str], Any] = {}
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed[(module, '_reconstruct')] = np_core.multiarray._reconstruct
        allowed[(module, 'scalar')] = np_core.multiarray.scalar
    allowed[('numpy', 'ndarray')] = np.ndarray
    allowed[('numpy', 'dtype')] = np.dtype
    return allowed


def _allowed_global(module: str, name: str) -> Optional[Any]:
    """The object a results pickle may name as ``module.name``, or None."""
    fixed: Dict[Tuple[str, str], Any] = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('_codecs', 'encode'): _latin1_bytes,
        ('builtins', 'set'): set,
        ('builtins', 'frozenset'): frozenset,
        ('builtins', 'complex'): complex,
        ('builtins', 'bytearray'): bytearray,
        ('torch._utils', '_rebuild_tensor'): torch._utils._rebuild_tensor,
        ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
        ('torch', 'Size'): torch.Size,
    }
    fixed.update(_numpy_globals())
    if (module, name) in fixed:
        return fixed[(module, name)]
    if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if module == 'numpy.dtypes':  # NumPy>=1.25 pickles a dtype by its class
        import numpy.dtypes as np_dtypes
        obj = getattr(np_dtypes, name, None)
        if isinstance(obj, type) and issubclass(obj, np.dtype):
            return obj
    return None


class ResultsUnpickler(pickle.Unpickler):
    """An unpickler that builds only tensors, NumPy arrays and plain containers.

    Args:
        file: the open binary file.
        source: the file's name, for messages.
    """

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ('torch.storage', '_load_from_bytes'):
            return functools.partial(_storage_from_bytes, source=self.source)
        obj = _allowed_global(module, name)
        if obj is None:
            raise UnsafeResultsError(
                f'Refused to read results file {self.source!r}: it asks for {module}.{name}, '
                'which a tools/test.py --out file never holds. A pickle can run code, so only '
                'tensors, NumPy arrays and plain containers are read. If you trust the file, '
                'convert it to JSON yourself.')
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeResultsError(f'Refused to read results file {self.source!r}: it holds a '
                                 f'persistent reference ({pid!r}), which results never hold.')


def load_results(path: str, backend_args: Optional[dict] = None) -> Any:
    """Read a results file (``.pkl`` from ``tools/test.py --out``, or ``.json``) safely.

    Args:
        path: the file (any mmengine file backend).
        backend_args: mmengine file backend arguments.

    Returns:
        The file's content.

    Raises:
        UnsafeResultsError: the pickle asks for anything but data.
        ValueError: the file is empty, not JSON, or of another format.
    """
    suffix = osp.splitext(path)[1].lower()
    if suffix not in PICKLE_SUFFIXES + JSON_SUFFIXES:
        raise ValueError(f'Results file {path!r}: read only as .pkl (tools/test.py --out) or '
                         f'.json, not {suffix or "a file without suffix"} (YAML and other '
                         'formats can construct arbitrary Python objects).')
    data = fileio.get(path, backend_args=backend_args)
    if not data:
        raise ValueError(f'Results file {path!r} is empty (0 bytes).')
    if suffix in JSON_SUFFIXES:
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f'Results file {path!r} is not valid JSON: {err}') from err
    try:
        return ResultsUnpickler(io.BytesIO(data), path).load()
    except UnsafeResultsError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise ValueError(f'Results file {path!r} is not a complete pickle '
                         f'({type(err).__name__}: {err}); is it truncated?') from err
