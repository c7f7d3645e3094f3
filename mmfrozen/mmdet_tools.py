"""Run MMDetection's own command-line tools after ``import mmfrozen``.

``tools/train.py`` and ``tools/test.py`` are drop-ins for MMDetection's: rather than copying
them, they run the very scripts that the installed mmdet ships (``mmdet/.mim/tools``), so their
arguments and behaviour are MMDetection's by construction.
"""
import gc
import os.path as osp
import runpy
import sys
from typing import List, Optional


def mmdet_tool_path(name: str) -> str:
    """Path of one of the tools the installed mmdet ships, e.g. ``'train.py'``.

    Args:
        name: the tool's file name under ``mmdet/.mim/tools``.

    Returns:
        str: its absolute path.

    Raises:
        FileNotFoundError: the installed mmdet has no such tool.
    """
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'mmdet {mmdet.__version__} at {osp.dirname(mmdet.__file__)} does not ship {name} '
            '(mmdet/.mim/tools); reinstall mmdet from PyPI or with `pip install -e` from its '
            'repository.')
    return path


def run_main_script(path: str, argv: List[str]) -> None:
    """Run a script as ``__main__``, then shut its process group down while Python is alive.

    MMDetection's scripts end without ``destroy_process_group()``, and even with it the gloo
    backend lives on: the runner's reference cycles keep the DDP model, hence the group and its
    threads, until the interpreter tears down. A process can then abort at exit ("terminate
    called without an active exception", SIGABRT; pytorch/pytorch#179291) and fail a run that
    had finished; CI saw this once in a few 2-process runs. So the group is destroyed and the
    cycles collected, which joins gloo's threads here. Only after the script returns: on an
    error the process is ending anyway, and a group whose peers are still in a collective
    must not be waited for.

    Args:
        path: the script.
        argv: its arguments, without the script's own name.
    """
    sys.argv = [path] + list(argv)
    runpy.run_path(path, run_name='__main__')
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()


def run_mmdet_tool(name: str, argv: Optional[List[str]] = None) -> None:
    """Run an MMDetection tool as ``__main__`` with mmfrozen imported first.

    Args:
        name: the tool's file name under ``mmdet/.mim/tools``.
        argv: its arguments; defaults to this process's.
    """
    import mmfrozen  # noqa: F401  registers modules and applies mmfrozen.compat

    run_main_script(mmdet_tool_path(name), sys.argv[1:] if argv is None else argv)
