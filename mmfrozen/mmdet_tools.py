"""Run MMDetection's own command-line tools after ``import mmfrozen``.

``tools/train.py`` and ``tools/test.py`` are drop-ins for MMDetection's: rather than copying
them, they run the very scripts that the installed mmdet ships (``mmdet/.mim/tools``), so their
arguments and behaviour are MMDetection's by construction.
"""
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


def run_mmdet_tool(name: str, argv: Optional[List[str]] = None) -> None:
    """Run an MMDetection tool as ``__main__`` with mmfrozen imported first.

    Args:
        name: the tool's file name under ``mmdet/.mim/tools``.
        argv: its arguments; defaults to this process's.
    """
    import mmfrozen  # noqa: F401  registers modules and applies mmfrozen.compat

    path = mmdet_tool_path(name)
    sys.argv = [path] + (sys.argv[1:] if argv is None else list(argv))
    runpy.run_path(path, run_name='__main__')
