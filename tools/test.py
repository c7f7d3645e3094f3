"""Test (and evaluate) a detector: MMDetection's tools/test.py, with mmfrozen imported first.

Same arguments and behaviour as MMDetection 3.3's own (`python tools/test.py -h`).
"""
import os.path as osp
import sys

# Runs from a clone without installing: the repository root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmfrozen.mmdet_tools import run_mmdet_tool  # noqa: E402

if __name__ == '__main__':
    run_mmdet_tool('test.py')
