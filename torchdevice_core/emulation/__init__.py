"""The emulated ``torch.cuda`` namespace: each module builds the patches for one facility."""

from __future__ import annotations

from ..patching import Patch
from ..session import Redirection
from . import device, legacy, memory, nvtx, random, streams, unemulatable


def patches(session: Redirection) -> list[Patch]:
    out: list[Patch] = []
    for module in (device, streams, memory, random, legacy, nvtx, unemulatable):
        out.extend(module.patches(session))
    return out
