"""Running tools and training processes from tests: subprocesses, torchrun, their outputs."""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import torch


def tool_env(pythonpath: Optional[str] = None, threads: int = 1, **extra: str) -> Dict[str, str]:
    """Environment for a tool subprocess: ``threads`` torch threads, ``pythonpath`` importable.

    Args:
        pythonpath: a folder put first on ``PYTHONPATH`` (a repository whose tools import its
            own packages), or None.
        threads: OpenMP and MKL threads of the subprocess.
        **extra: more variables.

    Returns:
        dict: a copy of this process's environment with those set.
    """
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join(p for p in (pythonpath, env.get('PYTHONPATH')) if p)
    env.update(extra)
    return env


def run_python(args: Sequence[str], *, cwd: str, env: Optional[Dict[str, str]] = None,
               check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``python <args>`` in ``cwd`` with this interpreter and return the finished process.

    Args:
        args: the script (or ``-m module``) and its arguments.
        cwd: the folder to run in.
        env: the environment (default: :func:`tool_env`).
        check: raise when the process exits non-zero, with the tail of its output.
        timeout: seconds before the process is killed.

    Returns:
        subprocess.CompletedProcess: with ``stdout`` and ``stderr`` as text.
    """
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env or tool_env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} exited {proc.returncode}:\n'
                             f'{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}')
    return proc


def free_port() -> int:
    """A TCP port nobody listens on, for a torchrun rendezvous."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def torchrun_args(script: str, nproc: int = 2) -> List[str]:
    """``python`` arguments that run ``script`` under torchrun with ``nproc`` local processes.

    Args:
        script: the script to run on every rank.
        nproc: processes on this machine.

    Returns:
        list[str]: ``['-m', 'torch.distributed.run', ...]``, for :func:`run_python`.
    """
    return ['-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', '--master_addr=127.0.0.1',
            f'--master_port={free_port()}', script]


def find_metrics_json(work_dir: str) -> dict:
    """The metrics mmengine's test loop logged: ``<work_dir>/<timestamp>/<timestamp>.json``."""
    found = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    assert found, f'no metrics json under {work_dir}'
    with open(found[-1]) as f:
        return json.load(f)


def state_dict(checkpoint: str) -> Dict[str, torch.Tensor]:
    """The model weights of a checkpoint."""
    return torch.load(checkpoint, map_location='cpu', weights_only=True)['state_dict']


def differing_tensors(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> List[str]:
    """Names of the tensors that are not bit-identical (the key sets must be equal)."""
    assert a.keys() == b.keys()
    return [name for name in a if not torch.equal(a[name], b[name])]


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint that ``<work_dir>/last_checkpoint`` points at."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def write_config(path: str, base: str, lines: Sequence[str],
                 imports: Sequence[str] = ('mmfrozen', 'mmfrozen.testing.faults')) -> str:
    """A config file that inherits ``base``, imports ``imports`` and adds ``lines``.

    Args:
        path: where to write it.
        base: the ``_base_`` config's path.
        lines: config lines, e.g. ``["train_cfg = dict(max_epochs=1)"]``.
        imports: its ``custom_imports`` (by default mmfrozen and the fault hooks).

    Returns:
        str: ``path``.
    """
    with open(path, 'w') as f:
        f.write(f'_base_ = {base!r}\n')
        f.write(f'custom_imports = dict(imports={list(imports)!r}, allow_failed_imports=False)\n')
        f.write('\n'.join(lines) + '\n')
    return path


def load_json(path: str):
    """The JSON content of ``path``."""
    with open(path) as f:
        return json.load(f)


def dump_json(data, path: str) -> str:
    """Write ``data`` to ``path`` as JSON; returns ``path``."""
    with open(path, 'w') as f:
        json.dump(data, f)
    return path
