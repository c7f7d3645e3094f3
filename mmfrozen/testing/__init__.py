"""Helpers for mmfrozen's tests and for tests of code built on it (as ``mmdet.testing``).

Not imported by ``import mmfrozen``. Modules:

* :mod:`~mmfrozen.testing.tiny_coco`: a small COCO-format data set drawn deterministically;
* :mod:`~mmfrozen.testing.stratified`: hand-made LVIS/COCO ground truth, predictions and the
  reference evaluators (lvis-api, pycocotools) for the stratified metrics;
* :mod:`~mmfrozen.testing.runs`: tool subprocesses, torchrun, checkpoints and logs of runs;
* :mod:`~mmfrozen.testing.faults`: hooks that inject faults (SIGKILL, NaN, a half-written
  checkpoint, a failing metric) into a training run, imported by its config;
* :mod:`~mmfrozen.testing.few_shot`: a small Pascal VOC devkit of any VOC classes, converted by
  MMDetection's own converter, and detections on it (few-shot detection's novel / base AP);
* :mod:`~mmfrozen.testing.eval_strategies`: hypothesis strategies drawing COCO/LVIS ground truth
  and detections, valid or broken, for property-based tests of the metrics (needs
  ``hypothesis``, imported only by it);
* :mod:`~mmfrozen.testing.vit_checkpoints`: ViT classifier checkpoints written from a seeded timm
  model in each family's release layout (timm, DINOv2, MAE, OpenAI CLIP).
* :mod:`~mmfrozen.testing.detector_group`: tiny group configs (a Faster R-CNN and a RetinaNet
  on one frozen trunk) and the options and backbone file that point them at tiny data.

:data:`TINY_FASTER_RCNN` is a Faster R-CNN small enough to train in seconds on a CPU.
"""
import os.path as osp

from .runs import (differing_tensors, dump_json, find_metrics_json, free_port, last_checkpoint,
                   load_json, run_python, state_dict, tool_env, torchrun_args, write_config)
from .tiny_coco import coco_cfg_dict, coco_cfg_options, write_tiny_coco

#: A Faster R-CNN (ResNet-18 of width 16, 128x128 images) that trains in seconds on a CPU; point
#: it at :func:`write_tiny_coco`'s data with :func:`coco_cfg_options`.
TINY_FASTER_RCNN = osp.join(osp.dirname(osp.abspath(__file__)), 'configs',
                            'faster-rcnn_r18-tiny_fpn_coco.py')

__all__ = [
    'TINY_FASTER_RCNN', 'coco_cfg_dict', 'coco_cfg_options', 'differing_tensors', 'dump_json',
    'find_metrics_json', 'free_port', 'last_checkpoint', 'load_json', 'run_python', 'state_dict',
    'tool_env', 'torchrun_args', 'write_config', 'write_tiny_coco'
]
