"""The torch internals the patches rely on, checked before anything is patched.

Patching torch means reaching into names torch does not promise to keep (``torch.utils._device``, the
optimizers' ``_foreach_supported_types``, dynamo's rule tables...). A release that lacks one must not fail
with an ``AttributeError`` from deep inside a patch, nor half-apply the patches and run silently wrong:
activation stops first with :class:`UnsupportedTorchError`, naming the torch release, each missing name
and what it is needed for. The torch releases the test suite passed on are in the README ("Torch versions").
"""

from __future__ import annotations

import importlib
import sys

from .errors import UnsupportedTorchError
from .records import Record

SUPPORTED = ">=2.13"
"""The torch range pyproject.toml declares: the releases `scripts/torch_versions.py` saw pass."""


class Internal(Record):
    """One name inside torch: ``module`` (imported) and a dotted attribute path in it."""

    module: str
    name: str
    why: str
    only_if_imported: bool = False
    """Checked only when ``module`` is already imported (dynamo: importing it costs a second; the code that
    uses it looks only when something else imported it)."""

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


REQUIRED: tuple[Internal, ...] = (
    Internal("torch.utils._device", "_device_constructors", "the factory functions that take device="),
    Internal("torch.utils._device", "DeviceContext", "set_default_device / with torch.device(...)"),
    Internal("torch._C", "_jit_get_all_schemas", "the public functions whose schema takes a device"),
    Internal("torch._C", "_disabled_torch_function_impl", "the emulated tensor class"),
    Internal("torch._C", "DisableTorchFunctionSubclass", "the emulated tensor class"),
    Internal("torch._C", "_len_torch_function_stack", "factories under an active TorchFunctionMode"),
    Internal("torch._C", "TensorBase", "the tensor methods patched on torch.Tensor"),
    Internal("torch", "_GLOBAL_DEVICE_CONTEXT", "restoring the default device after each test"),
    Internal("torch", "get_device_module", "torch.random.fork_rng(devices=...) on emulated devices"),
    Internal("torch.optim.optimizer", "_foreach_supported_types",
             "optimizers keep their foreach (CUDA) path on emulated tensors"),
    Internal("torch.utils._foreach_utils", "_foreach_supported_types",
             "clip_grad_norm_ and foreach helpers accept emulated tensors"),
    Internal("torch.amp.grad_scaler", "GradScaler._lazy_init_scale_growth_tracker", "GradScaler('cuda')"),
    Internal("torch.amp.autocast_mode", "autocast", "torch.autocast('cuda')"),
    Internal("torch.serialization", "default_restore_location", "torch.load of cuda storages"),
    Internal("torch.serialization", "location_tag", "torch.save of emulated tensors"),
    Internal("torch.utils._python_dispatch", "TorchDispatchMode", "the simulated MPS limits"),
    Internal("torch.utils._pytree", "tree_map", "outputs of torch.compile come back emulated"),
    Internal("torch._dynamo.eval_frame", "skip_code", "torch.compile of emulated tensors", only_if_imported=True),
    Internal("torch._dynamo.trace_rules", "get_torch_obj_rule_map",
             "dropping dynamo's cached rules for patched functions on deactivation", only_if_imported=True),
)


def missing(required: tuple[Internal, ...] = REQUIRED) -> list[Internal]:
    """The entries of ``required`` that the installed torch lacks."""
    out: list[Internal] = []
    for need in required:
        if need.only_if_imported and need.module not in sys.modules:
            continue
        try:
            obj: object = importlib.import_module(need.module)
        except ImportError:
            out.append(need)
            continue
        for part in need.name.split("."):
            if not hasattr(obj, part):
                out.append(need)
                break
            obj = getattr(obj, part)
    return out


def check(required: tuple[Internal, ...] = REQUIRED) -> None:
    """Raise :class:`UnsupportedTorchError` if the installed torch lacks any of ``required``."""
    gaps = missing(required)
    if not gaps:
        return
    import torch

    needs = "; ".join(f"{g.qualname} (for {g.why})" for g in gaps)
    raise UnsupportedTorchError(
        f"torch {torch.__version__} lacks internals pytest-torchdevice patches: {needs}. "
        f"Supported: torch{SUPPORTED}; install one of those releases"
    )
