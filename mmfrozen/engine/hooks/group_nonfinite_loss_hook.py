"""NonFiniteLossHook for a ``DetectorGroup``: guards each detector's optimizer wrapper and names
the detector whose loss, gradients or weights stop being finite."""
from typing import Any, Callable, Dict, List, Optional

from mmdet.registry import HOOKS
from mmengine.optim import OptimWrapperDict

from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook, _describe, _is_finite


@HOOKS.register_module()
class DetectorGroupNonFiniteLossHook(NonFiniteLossHook):
    """:class:`NonFiniteLossHook` over the ``OptimWrapperDict`` of a group (same arguments).

    Each detector's step is guarded alone: a detector whose loss or gradients are not finite
    has its step not applied, and then the run stops naming it (``action='stop'``), goes on
    with the step skipped (``action='skip'``; ``max_skipped`` steps in a row of any detector
    stop the run), or goes on without that detector (``action='drop'``: it keeps its last
    good weights, its checkpoints and evaluation go on; the run stops when none is left). The
    other detectors' steps of that iteration are applied.
    """

    def __init__(self, action: str = 'stop', max_skipped: int = 100) -> None:
        drop = action == 'drop'
        super().__init__(action='skip' if drop else action, max_skipped=max_skipped)
        self.drop = drop
        self._bad: List[str] = []
        self._bad_weights: List[str] = []

    def before_train(self, runner) -> None:
        """Guard every detector's wrapper (these instances only, nothing global)."""
        wrappers = runner.optim_wrapper
        if not isinstance(wrappers, OptimWrapperDict):
            raise TypeError(f'DetectorGroupNonFiniteLossHook guards the OptimWrapperDict of a '
                            f'DetectorGroup; this run has {type(wrappers).__name__}: use '
                            'NonFiniteLossHook')
        for name, wrapper in wrappers.items():
            if getattr(wrapper, '_mmfrozen_nonfinite_guard', None) is self:
                continue
            wrapper._mmfrozen_nonfinite_guard = self
            wrapper.step = self._guard_step(wrapper, wrapper.step)
            wrapper.update_params = self._named(name, self._guard_update_params(
                wrapper.update_params))

    def _named(self, name: str, guarded: Callable) -> Callable:

        def named(loss, *args: Any, **kwargs: Any) -> None:
            self._weights_finite = True
            guarded(loss, *args, **kwargs)
            if self._step_skipped:
                self._bad.append(name)
            if not self._weights_finite:
                self._bad_weights.append(name)

        return named

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[Dict[str, Any]] = None) -> None:
        """Stop the run naming the detector(s), or count their skipped steps."""
        where = f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
        bad, bad_weights = self._bad, self._bad_weights
        self._bad, self._bad_weights = [], []
        if bad_weights:
            raise NonFiniteLossError(
                f'Training stopped at {where}: the optimizer step of detector(s) '
                f'{", ".join(bad_weights)} made weights NaN or infinite (learning rate too '
                'high?). No checkpoint of them was written.')
        if not bad:
            self.consecutive = 0
            return
        self.skipped += 1
        self.consecutive += 1
        runner.message_hub.update_scalar('train/nonfinite_skipped_steps', self.skipped)
        parts = []
        for name in bad:
            terms = {k: v for k, v in (outputs or {}).items()
                     if k.startswith(f'{name}/loss') and not _is_finite(v)}
            parts.append(f'detector {name!r}: ' + (
                ', '.join(f'{k}={_describe(v)}' for k, v in terms.items()) if terms
                else 'its loss terms are finite; its gradients are not'))
        what = '; '.join(parts)
        if self.drop:
            model = runner.model.module if hasattr(runner.model, 'module') else runner.model
            for name in bad:
                model.drop(name)
            runner.logger.warning(
                f'Dropped detector(s) {", ".join(bad)} at {where}: {what}. Their step was not '
                'applied; they keep their last weights, and the others train on '
                f'(dropped so far: {", ".join(model.dropped)}).')
            self.consecutive = 0
            return
        if self.action == 'stop':
            raise NonFiniteLossError(
                f'Non-finite loss at {where}: {what}. Its step was not applied; no checkpoint '
                'is written for this iteration and last_checkpoint points at the last good '
                "one. Lower that detector's learning rate or add gradient clipping to its "
                "config, or use DetectorGroupNonFiniteLossHook(action='skip').")
        runner.logger.warning(f'Skipped the optimizer step at {where}: {what} '
                              f'({self.skipped} skipped so far).')
        if self.consecutive > self.max_skipped:
            raise NonFiniteLossError(
                f'Training stopped at {where}: {self.consecutive} iterations in a row had a '
                f'non-finite loss or gradients (max_skipped={self.max_skipped}).')
