"""Which ops accept a real CPU tensor beside a device tensor: the rules, each with the torch source it comes from.

An emulated tensor lives on the target, so torch itself would accept any CPU tensor next to it; the device check
in ``checks.check_devices`` raises torch's "Expected all tensors to be on the same device" where the source
device would.  A check stricter than the device is a false failure, a laxer one a false pass; both come from
reading the rules wrong, so the rules are written down here (and tested case by case in
``tests/core/test_mixing.py``) with the file and function of PyTorch's source that implements each.

Checked against PyTorch's C++ at the torch release the package is tested with (2.13's ``native_functions.yaml``
routes ``where`` on MPS to the generic ``where_self_out``, so CUDA and MPS follow the same rules there).
"""

from __future__ import annotations

from .records import Record


class MixingRule(Record):
    what: str
    torch_source: str
    ops: frozenset[str] = frozenset()
    """``__name__`` of the torch functions / Tensor methods the rule lets through (empty: a shape rule)."""


CPU_SCALAR = MixingRule(
    "a 0-dim CPU tensor is accepted as an input beside device tensors",
    "aten/src/ATen/TensorIterator.cpp, TensorIteratorBase::compute_types (allow_cpu_scalars, dim() == 0, "
    "is_cpu(), not an output); aten/src/ATen/native/TensorCompare.cpp, where_self_out moves 0-dim condition, "
    "self and other to the device itself",
)
NOT_A_SCALAR = MixingRule(
    "any other CPU tensor (1 element of shape [1, 1, 1] included) beside device tensors raises",
    "aten/src/ATen/TensorIterator.cpp, TensorIteratorBase::compute_types: 'Expected all tensors to be on the same "
    "device, but found at least two devices'; TensorCompare.cpp where_self_out leaves a non-0-dim condition to it",
)
AUTOGRAD = MixingRule(
        "autograd's entry points take outputs, inputs and gradients of any device (a graph may cross devices; "
        "C++ autograd functions such as gradcheck's UndefinedGrad hand back plain tensors)",
        "torch/csrc/autograd/engine.cpp, validate_outputs (each gradient is checked against its own input's "
        "device, 'invalid gradient at index'); torch/autograd/__init__.py backward / grad",
        frozenset({"grad", "backward"}),
    )
RULES: tuple[MixingRule, ...] = (
    MixingRule(
        "indices on the CPU index a device tensor (advanced indexing, index_put_)",
        "aten/src/ATen/native/TensorAdvancedIndexing.cpp, index / index_put_ (indices 'should be either on cpu or "
        "on the same device as the indexed tensor'); torch/csrc/autograd/python_variable_indexing.cpp",
        frozenset({"__getitem__", "__setitem__", "index_put_", "index_put", "_index_put_impl_"}),
    ),
    MixingRule(
        "copies and moves between devices",
        "aten/src/ATen/native/Copy.cpp, copy_ (copy_impl: cross-device copies); "
        "aten/src/ATen/native/TensorConversions.cpp",
        frozenset({"copy_", "to", "set_", "new_tensor"}),
    ),
    MixingRule(
        "sequence lengths live on the CPU by design",
        "aten/src/ATen/native/PackedSequence.cpp, _pack_padded_sequence ('lengths' must be a 1D CPU int64 tensor); "
        "aten/src/ATen/native/LossCTC.cpp, ctc_loss (input_lengths / target_lengths are read on the CPU)",
        frozenset({"_pack_padded_sequence", "ctc_loss", "_ctc_loss"}),
    ),
    MixingRule(
        "the other tensor only lends its shape",
        "aten/src/ATen/native/TensorShape.cpp, view_as / expand_as / reshape_as (composite: other.sizes()); "
        "broadcast_to takes a size",
        frozenset({"view_as", "expand_as", "reshape_as", "broadcast_to", "is_same_size", "is_set_to",
                   "_has_compatible_shallow_copy_type"}),
    ),
    MixingRule(
        "Python-level protocol methods and comparisons that move or compare on their own",
        "torch/_tensor.py (__repr__, __format__, __reduce_ex__, __deepcopy__); torch/testing/_comparison.py "
        "(assert_close reports a device mismatch itself); equal / allclose / isclose are kept lenient",
        frozenset({"__repr__", "__format__", "__reduce_ex__", "__deepcopy__", "__set__", "__get__", "equal",
                   "allclose", "isclose", "assert_close"}),
    ),
    AUTOGRAD,
    MixingRule(
        "tensor_split's tensor of indices or sections lives on the CPU by design",
        "aten/src/ATen/native/TensorShape.cpp, tensor_split (tensor_indices_or_sections 'to be on cpu'; it is "
        "read with item() / data_ptr on the host)",
        frozenset({"tensor_split"}),
    ),
    MixingRule(
        "unravel_index validates its shape argument itself (a tensor shape is a TypeError, not a device error)",
        "torch/functional.py, unravel_index ('expected 'shape' to be int or sequence of ints') before "
        "aten's _unravel_index",
        frozenset({"unravel_index"}),
    ),
)
VALUES_ON_THE_DEVICE = MixingRule(
    "index_put_'s values must be on the device: only its indices may be on the CPU (a 0-dim CPU value is a scalar)",
    "aten/src/ATen/native/TensorAdvancedIndexing.cpp, _index_put_impl_ (accumulate on CUDA: 'expected device ... "
    "for value tensor') and make_index_put_iterator (TensorIterator's device check otherwise)",
    frozenset({"index_put_", "index_put", "_index_put_impl_"}),
)
OWN_DEVICE_CHECK = MixingRule(
    "take_along_dim checks the devices itself, with its own message",
    "aten/src/ATen/native/TensorAdvancedIndexing.cpp, take_along_dim (checkDevice: 'Expected tensor to have ... "
    "Device, but got tensor with ... Device (while checking arguments for torch.take_along_dim():)')",
    frozenset({"take_along_dim"}),
)
MPS_CPU_FALLBACK = MixingRule(
    "under MPS limits, an op that runs through MPS's CPU fallback takes CPU tensors beside MPS ones",
    "aten/src/ATen/native/CPUFallback.cpp, cpu_fallback (every tensor argument is copied to the CPU, results "
    "back to the device), called by aten/src/ATen/mps/MPSFallback.mm mps_fallback",
)

MIXED_DEVICE_OK: frozenset[str] = frozenset().union(*(rule.ops for rule in RULES))
