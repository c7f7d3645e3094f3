"""Command-line options shared by the mini world's tools (``tools/mini_reproduction.py``,
``tools/mini_classifier_sweep.py``), and the thread set-up they share."""
import argparse
import os


def add_run_arguments(parser: argparse.ArgumentParser, seeds: int, seeds_help: str) -> None:
    """Add ``--seeds``, ``--scale``, ``--threads``, ``--jobs`` and ``--force`` to ``parser``.

    Args:
        parser: the tool's parser.
        seeds: the default of ``--seeds``.
        seeds_help: what ``--seeds`` means for this tool.
    """
    parser.add_argument('--seeds', type=int, default=seeds, help=seeds_help)
    parser.add_argument('--scale', choices=['default', 'tiny'], default='default',
                        help='default: the real run; tiny: seconds, for tests')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per training process')
    parser.add_argument('--jobs', type=int, default=None,
                        help='training processes at once (default: CPU cores // threads)')
    parser.add_argument('--force', action='store_true', help='redo finished steps')


def set_up_run(args: argparse.Namespace, tool: str) -> int:
    """Check the shared options and give this process and its trainings their torch threads.

    Args:
        args: the parsed options of :func:`add_run_arguments`.
        tool: the tool's name, for the error message.

    Returns:
        int: how many training processes run at once.
    """
    if args.seeds < 1 or args.threads < 1 or (args.jobs is not None and args.jobs < 1):
        raise SystemExit(f'{tool}: --seeds, --threads and --jobs must be >= 1')
    # the training processes inherit it; this process's own pool is set below
    os.environ.setdefault('OMP_NUM_THREADS', str(args.threads))
    import torch
    torch.set_num_threads(args.threads)
    return args.jobs or max(1, (os.cpu_count() or 1) // args.threads)
