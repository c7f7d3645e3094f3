"""How far the detector's seed alone moves the mini reproduction's numbers.

:data:`SEED_STD` is the one place this number lives. It was measured with
``python projects/mini_world/tools/mini_reproduction.py --seeds 3 --extra-configs
projects/mini_world/configs/faster-rcnn_r18-finetune_wide-fpn_mini-lvis.py`` at the default scale
(the run, its table and timing: ``benchmarks/mini_reproduction_seeds.md``): for each metric, the
largest standard deviation over seeds 0, 1, 2 among the four detectors, in AP points (x100).
Measure it again, and update it here, when the mini world, its configs or its schedule change.
"""
from typing import Dict

#: Seed-to-seed standard deviation of each metric, AP points (x100): the largest over 3 seeds
#: among the four detectors (see the module's docstring).
SEED_STD: Dict[str, float] = {'AP': 2.1, 'APr': 2.1, 'APc': 2.5, 'APf': 2.1}
#: Where the measurement and its table are.
SEED_STD_SOURCE = 'benchmarks/mini_reproduction_seeds.md'


def single_seed_note(seeds: int) -> str:
    """The warning a mini reproduction prints under its table when it ran one seed.

    Args:
        seeds: detector runs per config.

    Returns:
        str: the note (one paragraph, newline-terminated), or ``''`` for several seeds, whose
        table shows its own spread.
    """
    if seeds > 1:
        return ''
    bars = ', '.join(f'{metric} {2 * std:.1f}' for metric, std in SEED_STD.items())
    return ('One seed: differences smaller than about twice the seed-to-seed std measured with '
            f'--seeds 3 (twice the std, in AP points: {bars}) are not evidence; run --seeds 3 '
            f'to see the spread ({SEED_STD_SOURCE}).\n')
