"""Hooks registered in MMDetection's HOOKS registry."""
from .frozen_backbone_check_hook import FrozenBackboneCheckHook, FrozenBackboneError  # noqa: F401
from .cost_report_hook import CostReportHook  # noqa: F401
from .rng_state_hook import RNGStateHook  # noqa: F401
from .worker_rng_state_hook import WorkerRNGStateHook  # noqa: F401
from .atomic_checkpoint_hook import AtomicCheckpointHook, CheckpointWriteError  # noqa: F401
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook  # noqa: F401
from .class_balanced_loss_hook import ClassBalancedLossHook  # noqa: F401
from .group_checkpoint_hook import DetectorGroupHook  # noqa: F401
from .group_nonfinite_loss_hook import DetectorGroupNonFiniteLossHook  # noqa: F401
