"""Target kernel gaps: an op on redirected tensors that fails only because the target lacks a kernel for the
dtype (torch's ``"<kernel>" not implemented for '<dtype>'`` family, raised by its dtype dispatch macros, and
the CPU kernels' own ``<op> on CPU does not support complex inputs``: ``nansum``/``nanmean``, which CUDA runs).

On a GPU the same op runs; on the CPU target it raises, and the failure says nothing about the code under
test.  Only errors raised while an op ran on emulated tensors are converted (in ``EmulatedTensor``'s
``__torch_function__``): the same error on tensors the test itself put on the CPU stays what it is.
"""

from __future__ import annotations

import re

from .active_state import ACTIVE
from .errors import TargetGapError

# torch's AT_DISPATCH error: "\"<name>\" not implemented for '<ScalarType>'"
# (patterns as strings: ``re`` compiles each once, when first used, not at import)
_NOT_IMPLEMENTED_FOR = r'"(?P<op>[\w:.]+)" not implemented for \'(?P<dtype>\w+)\''
# a CPU kernel's own refusal of a dtype family the CUDA kernel takes ("nansum on CPU does not support complex
# inputs"): the message names the family, not the dtype
_CPU_DOES_NOT_SUPPORT = r"(?P<op>\w+) on CPU does not support (?P<dtype>complex) inputs"


def target_gap(exc: BaseException) -> TargetGapError | None:
    """The ``TargetGapError`` for ``exc`` when it is a dtype-kernel gap of the active target, else None."""
    if isinstance(exc, TargetGapError):
        return None  # already converted by an inner op: let it through as it is
    text = str(exc)
    match = re.search(_NOT_IMPLEMENTED_FOR, text) or re.search(_CPU_DOES_NOT_SUPPORT, text)
    active = ACTIVE[0]
    if match is None or active is None or active.native:
        return None
    op, dtype = match.group("op"), match.group("dtype")
    active.record.hit("target_gap", f"{op} ({dtype})")
    return TargetGapError(op, dtype, str(active.target.device), str(exc))
