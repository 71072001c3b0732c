"""What MPS cannot do, read from the installed torch, and the float64 policy.

Operators without an MPS kernel come from ``torchgen/packaged/ATen/native/native_functions.yaml`` (shipped
in every torch wheel, the CPU one included): an op whose ``dispatch:`` names CPU or CUDA kernels but no
``MPS`` key and no composite kernel has no MPS implementation in this release; structured ops inherit the
answer of their ``structured_delegate``.  Nothing here is a hand-written list.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import torch

from ..grammar import FLOAT64_POLICIES as FLOAT64_POLICIES  # re-exported: session.py checks its options
from ..grammar import MPS_FALLBACK_ENV as FALLBACK_ENV
from ..grammar import MPS_UNSUPPORTED_DTYPES

UNSUPPORTED_DTYPES = {getattr(torch, name): getattr(torch, to) for name, to in MPS_UNSUPPORTED_DTYPES.items()}
# dispatch keys of kernels written in other ops (they run wherever those run)
COMPOSITE_KEYS = ("CompositeExplicitAutograd", "CompositeImplicitAutograd", "CompositeExplicitAutogradNonFunctional")
_FUNC = r"^- func: ([\w.]+)\("  # (compiled by ``re`` when first used)


def native_functions_yaml() -> Path | None:
    try:
        import torchgen  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = Path(torchgen.__file__).parent / "packaged" / "ATen" / "native" / "native_functions.yaml"
    return path if path.exists() else None


def parse_native_functions(text: str) -> dict[str, tuple[set[str], str | None]]:
    """op name (``heaviside.out``) -> (dispatch keys, structured_delegate)."""
    ops: dict[str, tuple[set[str], str | None]] = {}
    name: str | None = None
    keys: set[str] = set()
    delegate: str | None = None
    in_dispatch = False
    for line in [*text.splitlines(), "- func: _end_()"]:
        match = re.match(_FUNC, line)
        if match:
            if name is not None:
                ops[name] = (keys, delegate)
            name, keys, delegate, in_dispatch = match.group(1), set(), None, False
            continue
        stripped = line.strip()
        if line.startswith("  dispatch:"):
            in_dispatch = True
        elif in_dispatch and line.startswith("    ") and ":" in stripped:
            keys.update(k.strip() for k in stripped.split(":", 1)[0].split(","))
        elif line.startswith("  ") and not line.startswith("    "):
            in_dispatch = False
            if stripped.startswith("structured_delegate:"):
                delegate = stripped.split(":", 1)[1].strip()
    return ops


@functools.lru_cache(maxsize=1)
def missing_mps_kernels() -> frozenset[str]:
    """``aten`` op names (``name`` or ``name.overload``) without an MPS kernel in the installed torch."""
    path = native_functions_yaml()
    if path is None:
        return frozenset()
    ops = parse_native_functions(path.read_text())

    def missing(op: str, depth: int = 0) -> bool:
        keys, delegate = ops.get(op, (set(), None))
        if not keys and delegate and depth < 4:
            return missing(delegate, depth + 1)
        if not keys or "MPS" in keys or any(k in keys for k in COMPOSITE_KEYS):
            return False
        return bool(keys & {"CPU", "CUDA"})

    return frozenset(op for op in ops if missing(op))


@functools.lru_cache(maxsize=2)
def _fallback_names(enabled: bool) -> frozenset[str]:
    from . import opdata

    data = opdata.load()
    ops = set(data.always_fallback) | set(data.reached_through)
    if enabled:
        ops |= missing_mps_kernels()
    return frozenset(op.partition(".")[0] for op in ops)


def fallback_names() -> frozenset[str]:
    """Base names of the ops MPS runs through its CPU fallback now: the explicit fallbacks of the release, and
    the ops without an MPS kernel when ``PYTORCH_ENABLE_MPS_FALLBACK=1``."""
    return _fallback_names(fallback_enabled())


def fallback_enabled() -> bool:
    """What MPS would do for an op without a kernel: fall back to the CPU ("1") or raise (unset / "0")."""
    return os.environ.get(FALLBACK_ENV, "0") == "1"


def float64_error(dtype: torch.dtype) -> TypeError:
    if dtype == torch.float64:
        return TypeError(
            "Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64. "
            "Please use float32 instead."
        )
    return TypeError(f"Trying to convert {dtype} to the MPS backend but it does not have support for that dtype.")


def not_implemented(op: str) -> NotImplementedError:
    return NotImplementedError(
        f"The operator '{op}' is not currently implemented for the MPS device. As a temporary fix, you can set "
        f"the environment variable `{FALLBACK_ENV}=1` to use the CPU as a fallback for this op. "
        f"[torchdevice: predicted from torch {torch.__version__}'s native_functions.yaml]"
    )


def fallback_warning(op: str) -> str:
    return (
        f"The operator '{op}' is not currently supported on the MPS backend and will fall back to run on the "
        "CPU. This may have performance implications."
    )
