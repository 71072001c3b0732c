"""Optimizers and grad clipping take the path they take on CUDA for emulated parameters.

``torch.optim`` defaults to its multi-tensor ``foreach`` kernels only for parameters whose exact type is in
``_foreach_supported_types`` (DTensor adds itself there the same way); otherwise it falls back to a
per-parameter loop.  Listing the emulated classes keeps the CUDA code path, and its speed.
"""

from __future__ import annotations

import torch.optim.optimizer as _optimizer
import torch.utils._foreach_utils as _foreach_utils

from ..patching import Patch
from ..session import Redirection


def patches(session: Redirection) -> list[Patch]:
    if not session.options.emulate_identity:
        return []
    classes = []
    for slot in range(len(session.slots)):
        cls = session.slot_class(slot, count=False)
        classes += [cls, cls._td_param_class]
    return [
        Patch(_optimizer, "_foreach_supported_types", [*_optimizer._foreach_supported_types, *classes],
              "foreach optimizers for emulated parameters"),
        Patch(_foreach_utils, "_foreach_supported_types", [*_foreach_utils._foreach_supported_types, *classes],
              "foreach grad clipping for emulated tensors"),
    ]
