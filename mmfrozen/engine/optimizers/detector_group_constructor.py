"""Each detector of a ``DetectorGroup`` gets the optimizer wrapper its own config describes."""
import copy
from typing import Optional

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from torch import nn

from mmfrozen.utils import unwrap_model


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DetectorGroupOptimWrapperConstructor:
    """Build an ``OptimWrapperDict``: detector name -> its config's ``optim_wrapper``.

    A group config says
    ``optim_wrapper = dict(constructor='DetectorGroupOptimWrapperConstructor')``;
    each detector's wrapper (optimizer, gradient clipping, its own constructor and
    ``paramwise_cfg``) is built from its own config over its own parameters (the shared frozen
    backbone is not among them: it has no gradients). MMEngine builds one scheduler list per key
    of the dict (``DetectorGroupHook`` takes them from each detector's ``param_scheduler``).

    Args:
        optim_wrapper_cfg: the group config's ``optim_wrapper`` without ``constructor``; must be
            empty (each detector's comes from its own config).
        paramwise_cfg: must be None, for the same reason.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if optim_wrapper_cfg or paramwise_cfg:
            fields = sorted(set(optim_wrapper_cfg) | ({'paramwise_cfg'} if paramwise_cfg
                                                      else set()))
            raise ValueError(
                f'optim_wrapper.{fields[0]}: a group takes each detector\'s optim_wrapper from '
                "its own config; the group's is only dict(constructor="
                "'DetectorGroupOptimWrapperConstructor')")

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = unwrap_model(model)
        if not hasattr(model, 'detector_cfgs'):
            raise TypeError('DetectorGroupOptimWrapperConstructor builds the wrappers of a '
                            f'DetectorGroup, not of {type(model).__name__}')
        wrappers = {}
        for name, detector in model.detectors.items():
            cfg = model.detector_cfgs[name].get('optim_wrapper')
            if cfg is None:
                raise ValueError(f'detector {name!r} ({model.detector_cfgs[name].filename}): '
                                 'no optim_wrapper in its config')
            wrappers[name] = build_optim_wrapper(detector, copy.deepcopy(cfg))
        return OptimWrapperDict(**wrappers)
