"""Hooks registered in MMDetection's HOOKS registry."""
from .frozen_backbone_check_hook import FrozenBackboneCheckHook, FrozenBackboneError  # noqa: F401
from .cost_report_hook import CostReportHook  # noqa: F401
