"""Collect every rank's results on rank 0, holding one copy of them there.

MMEngine's ``collect_results`` (CPU mode) has every rank, rank 0 included, pickle its part to
a shared folder, and rank 0 load all parts back: rank 0 then holds its own part twice (the
metric's ``results`` and the loaded copy), and more with ``collect_device='gpu'`` (gathered
byte tensors, then the objects). Here rank 0 keeps its own part as it is and loads only the
others' parts, so it holds exactly one copy of all detections. The order, and the padding
dropped, are MMEngine's: the parts interleaved (rank 0's first item, rank 1's first, ...), cut
to ``size`` (the distributed sampler pads the last ranks with repeats of the first samples).
"""
import os
import os.path as osp
import pickle
import shutil
import tempfile
from itertools import chain, zip_longest
from typing import Any, List, Optional

from mmengine.dist import barrier, broadcast_object_list, get_dist_info


def collect_to_rank0(part: List[Any],
                     size: int,
                     tmpdir: Optional[str] = None) -> Optional[List[Any]]:
    """All ranks' results in MMEngine's order on rank 0 (None on the other ranks).

    Args:
        part: this rank's results.
        size: the data set's length (padding beyond it is dropped).
        tmpdir: a folder all ranks can read and write; default: a new folder under
            ``.dist_test`` (as MMEngine), removed afterwards.

    Returns:
        list or None: on rank 0 the results, whose rank-0 items are the objects of ``part``
        themselves.
    """
    rank, world_size = get_dist_info()
    if world_size == 1:
        return part[:size]
    own_dir = tmpdir is None
    if own_dir:
        folder = [tempfile.mkdtemp(dir=_dist_test_dir()) if rank == 0 else None]
        broadcast_object_list(folder, src=0)
        tmpdir = folder[0]
    else:
        os.makedirs(tmpdir, exist_ok=True)
    if rank != 0:
        with open(osp.join(tmpdir, f'part_{rank}.pkl'), 'wb') as f:
            pickle.dump(part, f, protocol=pickle.HIGHEST_PROTOCOL)
    barrier()
    if rank != 0:
        return None
    parts = [part]
    for i in range(1, world_size):
        path = osp.join(tmpdir, f'part_{i}.pkl')
        if not osp.exists(path):
            raise FileNotFoundError(f'{tmpdir} is not a folder shared by all ranks: rank {i} '
                                    'wrote its results there, rank 0 cannot see them.')
        with open(path, 'rb') as f:
            parts.append(pickle.load(f))
        os.remove(path)
    ordered = [item for item in chain.from_iterable(zip_longest(*parts)) if item is not None]
    if own_dir:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return ordered[:size]


def _dist_test_dir() -> str:
    os.makedirs('.dist_test', exist_ok=True)
    return '.dist_test'
