"""The configs that travel in mmfrozen's wheel, and the ``mmfrozen-config`` command.

As MMDetection ships its configs in ``mmdet/.mim/configs``, mmfrozen ships its own in
``mmfrozen/.mim/configs``: a user without a clone of the repository lists them, finds one's
path, or writes a standalone copy to edit::

    mmfrozen-config list frozen_fpn_1x_coco          # names that contain the pattern
    mmfrozen-config path faster-rcnn_r50-frozen_fpn_1x_coco
    mmfrozen-config copy faster-rcnn_r50-frozen_fpn_1x_coco my_configs/

(``python -m mmfrozen.shipped_configs ...`` is the same.) A copy is the config resolved with all
its bases, so it stands alone wherever it is written; the path can be given to any tool as it is
(``python <mmdet>/.mim/tools/train.py $(mmfrozen-config path NAME)``).
"""
import argparse
import difflib
import fnmatch
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

#: Folders of the shipped configs that hold no config of their own (bases, fragments).
BASE_DIR = '_base_'


def configs_dir() -> str:
    """The folder of the shipped configs (``mmfrozen/.mim/configs``).

    Raises:
        FileNotFoundError: this installation of mmfrozen has no configs (an incomplete build).
    """
    path = osp.join(osp.dirname(osp.abspath(__file__)), '.mim', 'configs')
    if not osp.isdir(path):
        raise FileNotFoundError(
            f'mmfrozen at {osp.dirname(osp.abspath(__file__))} ships no configs ({path} is '
            'missing); reinstall it from a wheel or a clone of its repository')
    return path


def list_configs(pattern: Optional[str] = None, include_bases: bool = False) -> List[str]:
    """The shipped configs, as paths relative to :func:`configs_dir`, sorted.

    Args:
        pattern: keep the configs whose relative path contains it, or matches it as a glob
            (``'*frozen*coco.py'``); None keeps every one.
        include_bases: also list the files under ``_base_/`` (bases and fragments).

    Returns:
        list[str]: e.g. ``['faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py', ...]``.
    """
    root = configs_dir()
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        rel_dir = osp.relpath(folder, root)
        if not include_bases and rel_dir.split(os.sep)[0] == BASE_DIR:
            continue
        for name in sorted(files):
            if name.endswith('.py'):
                found.append(osp.normpath(osp.join(rel_dir, name)).replace(os.sep, '/'))
    if pattern:
        found = [name for name in found
                 if pattern in name or fnmatch.fnmatch(name, pattern)
                 or fnmatch.fnmatch(osp.basename(name), pattern)]
    return sorted(found)


def config_path(name: str) -> str:
    """The absolute path of one shipped config.

    Args:
        name: its path relative to :func:`configs_dir`
            (``'faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py'``), or its file name with or
            without ``.py`` when that is unique.

    Returns:
        str: the config's path.

    Raises:
        FileNotFoundError: no such config; the message names the closest ones.
    """
    root = configs_dir()
    direct = osp.join(root, name)
    if osp.isfile(direct):
        return direct
    stem = osp.basename(name)
    stem = stem if stem.endswith('.py') else f'{stem}.py'
    every = list_configs(include_bases=True)
    matches = [rel for rel in every if osp.basename(rel) == stem]
    if len(matches) == 1:
        return osp.join(root, matches[0])
    if len(matches) > 1:
        raise FileNotFoundError(f'{name!r} names {len(matches)} shipped configs '
                                f'({", ".join(matches)}); give its folder too')
    close = difflib.get_close_matches(stem, [osp.basename(rel) for rel in every], n=3)
    hint = f'; closest: {", ".join(close)}' if close else ''
    raise FileNotFoundError(f'no shipped config {name!r} in {root}{hint} '
                            '(mmfrozen-config list shows them all)')


def copy_config(name: str, dest: str) -> str:
    """Write a shipped config, resolved with all its bases, as a standalone file.

    Args:
        name: as in :func:`config_path`.
        dest: a folder (created if missing; the file keeps its name) or a ``.py`` file path.

    Returns:
        str: the written file's absolute path.
    """
    from mmengine.config import Config

    source = config_path(name)
    target = osp.abspath(dest if dest.endswith('.py') else osp.join(dest, osp.basename(source)))
    os.makedirs(osp.dirname(target), exist_ok=True)
    Config.fromfile(source).dump(target)
    return target


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``mmfrozen-config list|path|copy``: the shipped configs from the command line."""
    parser = argparse.ArgumentParser(
        prog='mmfrozen-config', description="mmfrozen's shipped configs: list them, print one's "
        'path, or write a standalone copy of one')
    commands = parser.add_subparsers(dest='command', required=True)
    listing = commands.add_parser('list', help='list the configs (optionally matching PATTERN)')
    listing.add_argument('pattern', nargs='?', help='a part of the name, or a glob')
    listing.add_argument('--bases', action='store_true', help='also list _base_/ files')
    path = commands.add_parser('path', help="print a config's path")
    path.add_argument('name', help='the file name (with or without .py) or its relative path')
    copy = commands.add_parser('copy', help='write a config resolved with its bases')
    copy.add_argument('name', help='the file name (with or without .py) or its relative path')
    copy.add_argument('dest', nargs='?', default='.', help='a folder or a .py path (default: .)')
    args = parser.parse_args(argv)
    try:
        if args.command == 'list':
            names = list_configs(args.pattern, include_bases=args.bases)
            if not names:
                print(f'no shipped config matches {args.pattern!r}', file=sys.stderr)
                return 1
            print('\n'.join(names))
        elif args.command == 'path':
            print(config_path(args.name))
        else:
            print(copy_config(args.name, args.dest))
    except FileNotFoundError as err:
        print(f'mmfrozen-config: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
