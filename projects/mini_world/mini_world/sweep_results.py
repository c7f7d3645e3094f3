"""What one point of a sweep measured (the classifier sweep's, the schedule sweep's): each
detector arm's metrics over seeds."""
import statistics
from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class ArmResult:
    """One detector config at one sweep point: each metric's values over the seeds (x100)."""

    config: str
    arm: str
    values: Dict[str, List[float]] = field(default_factory=dict)

    def mean(self, metric: str) -> float:
        return statistics.fmean(self.values[metric])

    def std(self, metric: str) -> Optional[float]:
        values = self.values[metric]
        return statistics.stdev(values) if len(values) > 1 else None


@dataclass
class PointResult:
    """One sweep point: the classifier's epochs and top-1, and both detector arms."""

    epochs: int
    top1: float
    finetune: ArmResult
    frozen: ArmResult

    def gap(self, metric: str) -> List[float]:
        """Fine-tuned minus frozen, seed by seed (both arms ran the same seeds)."""
        return [a - b for a, b in zip(self.finetune.values[metric], self.frozen.values[metric])]


@dataclass
class ScheduleResult:
    """One pair at one schedule length: both arms' metrics over the seeds (x100)."""

    pair: str
    factor: int
    epochs: int
    finetune: ArmResult
    frozen: ArmResult

    def gap(self, metric: str) -> List[float]:
        """Frozen minus fine-tuned, seed by seed (both arms ran the same seeds)."""
        return [b - a for a, b in zip(self.finetune.values[metric], self.frozen.values[metric])]
