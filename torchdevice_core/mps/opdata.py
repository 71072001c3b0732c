"""MPS operator coverage per torch release: what the simulation predicts beyond ``native_functions.yaml``.

Three sources make up what a Mac can run, and only the first ships in every wheel in a usable form:

- ``native_functions.yaml`` (``torchgen/packaged/...``, read at run time by ``limits.missing_mps_kernels``):
  ops whose dispatch table has CPU/CUDA kernels but no MPS one.
- ``aten/src/ATen/mps/MPSFallback.mm`` (not in the wheel): ops registered for the MPS key with an explicit CPU
  fallback, which run (with a warning) whatever ``PYTORCH_ENABLE_MPS_FALLBACK`` says.  ``linalg_svd`` is
  composite in the yaml: registering it catches the call before it decomposes into ``_linalg_svd``, so a
  yaml-only reading wrongly predicts an SVD failure.  The ops a registered composite decomposes into are
  recorded by tracing it with the installed torch (``decompositions``).
- ``torch/testing/_internal/common_mps.py`` (in the wheel): per-OpInfo dtype lists of
  ``UNIMPLEMENTED_XFAILLIST``, locals of a function that only runs on a Mac, so they are read with ``ast``.
  Only the unambiguous entries are kept: an OpInfo name that is itself an aten op with an explicit (not
  composite) MPS kernel in the yaml, and a dtype list (``None`` means "no kernel at all", which the yaml already says).

The result is kept as ``data/mps_ops_<major.minor>.json`` with its provenance; ``python -m
torchdevice_core.mps.opdata --torch-source PATH`` regenerates it from a torch source tree (the installed
torch, which should be the same release, traces the composite fallbacks).
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..records import Record, field

DATA_DIR = Path(__file__).parent / "data"
_FALLBACK_IMPL = r'm\.impl\(\s*"([\w.]+)"\s*,\s*torch::CppFunction::makeFromBoxedFunction<&mps_fallback>'
_OPINFO_PREFIXES = (("nn.functional.", ""), ("special.", "special_"), ("linalg.", "linalg_"), ("fft.", "fft_"))


class MpsOpData(Record):
    """The coverage data of one torch release (empty when none is known for the installed torch)."""

    release: str | None = None
    always_fallback: frozenset[str] = frozenset()
    """aten ops (``name`` / ``name.overload``) MPS runs through its CPU fallback whatever the variable says."""
    reached_through: dict[str, str] = field(default_factory=dict)
    """op seen after decomposition -> the registered fallback op it came from (``_linalg_svd`` -> ``linalg_svd``)."""
    dtype_gaps: dict[str, frozenset[str]] = field(default_factory=dict)
    """aten op base name -> dtype names (``int32``) its MPS kernel rejects."""
    provenance: dict[str, Any] = field(default_factory=dict)

    def fallback_for(self, op: str) -> str | None:
        """The registered fallback op that ``op`` (``name`` or ``name.overload``) runs as, if any."""
        if op in self.always_fallback:
            return op
        return self.reached_through.get(op)


def release_of(version: str) -> str:
    """``"2.13.0+cpu"`` -> ``"2.13"``."""
    parts = version.split("+")[0].split(".")
    return ".".join(parts[:2])


def data_file(release: str) -> Path:
    return DATA_DIR / f"mps_ops_{release}.json"


@functools.lru_cache(maxsize=4)
def load(version: str | None = None) -> MpsOpData:
    """The data for ``version`` (default: the installed torch's release); empty if that release has none."""
    if version is None:
        import torch

        version = torch.__version__
    path = data_file(release_of(version))
    if not path.exists():
        return MpsOpData()
    raw = json.loads(path.read_text())
    return MpsOpData(
        release=raw["release"],
        always_fallback=frozenset(raw["always_fallback"]),
        reached_through=dict(raw["reached_through"]),
        dtype_gaps={op: frozenset(dtypes) for op, dtypes in raw["dtype_gaps"].items()},
        provenance=raw["provenance"],
    )


# ------------------------------------------------------------------------------------------ parsing
def parse_fallback_registrations(source: str) -> list[str]:
    """The ops ``MPSFallback.mm`` registers for the MPS key with the CPU fallback (``m.impl("op", ...)``)."""
    return re.findall(_FALLBACK_IMPL, source)


def parse_unimplemented_dtypes(source: str) -> dict[str, list[str] | None]:
    """``UNIMPLEMENTED_XFAILLIST`` of ``common_mps.py``: OpInfo name -> dtype names, None for every dtype.

    It is a local of ``mps_ops_modifier`` (a function that only runs where MPS is available): the file is
    parsed, never imported and called.
    """
    return {name: dtypes for name, (dtypes, _) in parse_unimplemented_entries(source).items()}


def parse_unimplemented_entries(source: str) -> dict[str, tuple[list[str] | None, str]]:
    """Like ``parse_unimplemented_dtypes``, with the comment written above or beside each entry."""
    comments = _comments(source)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "UNIMPLEMENTED_XFAILLIST" for t in targets):
                value = node.value
                if isinstance(value, ast.Dict):
                    out: dict[str, tuple[list[str] | None, str]] = {}
                    previous_end = value.lineno
                    for k, v in zip(value.keys, value.values, strict=True):
                        if k is None:
                            continue
                        end = v.end_lineno or v.lineno
                        note = " ".join(comments[line] for line in range(previous_end + 1, end + 1) if line in comments)
                        out[_literal_key(k)] = (_dtype_list(v), note)
                        previous_end = end
                    return out
    raise ValueError("UNIMPLEMENTED_XFAILLIST not found in common_mps.py")


def _comments(source: str) -> dict[int, str]:
    """line number -> the comment text on it."""
    import io
    import tokenize

    return {tok.start[0]: tok.string.lstrip("# ") for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT}


def _literal_key(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise ValueError(f"unexpected key in UNIMPLEMENTED_XFAILLIST: {ast.dump(node)}")


def _dtype_list(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        names = []
        for elt in node.elts:
            if isinstance(elt, ast.Attribute) and isinstance(elt.value, ast.Name) and elt.value.id == "torch":
                names.append(elt.attr)
            else:
                raise ValueError(f"unexpected dtype in UNIMPLEMENTED_XFAILLIST: {ast.dump(elt)}")
        return sorted(set(names))
    raise ValueError(f"unexpected value in UNIMPLEMENTED_XFAILLIST: {ast.dump(node)}")


def aten_name(opinfo_name: str) -> str:
    """OpInfo naming -> aten naming (``nn.functional.avg_pool2d`` -> ``avg_pool2d``, ``linalg.eig`` ->
    ``linalg_eig``)."""
    for prefix, replacement in _OPINFO_PREFIXES:
        if opinfo_name.startswith(prefix):
            return replacement + opinfo_name[len(prefix):]
    return opinfo_name


def unambiguous_dtype_gaps(entries: dict[str, tuple[list[str] | None, str]],
                           ops: dict[str, tuple[set[str], str | None]]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The entries that name one aten op with an MPS kernel and a dtype list (see the module docstring), and
    why each other entry was left out."""
    from .limits import COMPOSITE_KEYS

    # (an op that is also composite, like ``linear``, is caught by its MPS registration before it decomposes:
    # the simulation sees only what it decomposes into, so such entries cannot be applied there)
    def keys_of(op: str) -> set[str] | None:  # the default overload's dispatch keys (structured: its delegate's)
        if op not in ops:
            return None
        keys, delegate = ops[op]
        return keys | ops.get(delegate, (set(), None))[0] if delegate else keys

    out: dict[str, list[str]] = {}
    left_out: dict[str, str] = {}
    for name, (dtypes, note) in sorted(entries.items()):
        op = aten_name(name)
        keys = keys_of(op)
        if dtypes is None:
            left_out[name] = "every dtype: a missing kernel, which the yaml says"
        elif keys is None:
            left_out[name] = "not an aten op name (an OpInfo variant)"
        elif "MPS" not in keys or any(k in keys for k in COMPOSITE_KEYS):
            left_out[name] = "no explicit MPS kernel (composite): the simulation sees it decomposed"
        elif "output" in note.lower():
            left_out[name] = f"an output difference, not a missing kernel ({note})"
        else:
            out[op] = dtypes
    return out, left_out


# ------------------------------------------------------------------------------------------ building
def _samples() -> dict[str, Callable[[], Any]]:
    """Small calls of the composite ops MPSFallback.mm registers, to see what they decompose into."""
    import torch

    aten = torch.ops.aten
    a, volume = torch.randn(3, 3), torch.randn(1, 1, 2, 2, 2)  # (made outside the traced calls)
    u, s, vh = torch.empty(0), torch.empty(0), torch.empty(0)
    return {
        "linalg_svd": lambda: aten.linalg_svd(a),
        "linalg_svd.U": lambda: aten.linalg_svd.U(a, U=u, S=s, Vh=vh),
        "upsample_nearest3d.vec": lambda: aten.upsample_nearest3d.vec(volume, [4, 4, 4], None),
    }


def trace_decomposition(op: str) -> list[str]:
    """The aten ops (``name`` / ``name.overload``) a composite op dispatches to, in the installed torch."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from .simulation import op_name

    samples = _samples()
    if op not in samples:
        raise KeyError(f"{op} is composite in the yaml but has no sample call to trace it: add one to _samples()")
    seen: list[str] = []

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            name = op_name(func)
            if not name.startswith("empty"):
                seen.append(name)
            return func(*args, **(kwargs or {}))

    with Recorder():
        samples[op]()
    return seen


def build(torch_source: Path, yaml_text: str | None = None) -> dict[str, Any]:
    """The data of the torch release in ``torch_source`` (a checkout of pytorch/pytorch)."""
    import torch

    from .limits import COMPOSITE_KEYS, parse_native_functions

    yaml_text = yaml_text or (torch_source / "aten/src/ATen/native/native_functions.yaml").read_text()
    ops = parse_native_functions(yaml_text)
    fallback_path = torch_source / "aten/src/ATen/mps/MPSFallback.mm"
    registered = parse_fallback_registrations(fallback_path.read_text())
    always: list[str] = []
    dropped: dict[str, str] = {}
    reached: dict[str, str] = {}
    for op in registered:
        keys, _ = ops.get(op, (set(), None))
        if "MPS" in keys:
            # one dispatch key holds one kernel: the yaml's MPS kernel and this registration cannot both be in
            # one build, so the source tree's MPSFallback.mm is older than its yaml for this op
            dropped[op] = "the yaml registers an MPS kernel for it"
            continue
        always.append(op)
        if not keys or any(k in keys for k in COMPOSITE_KEYS):
            for inner in trace_decomposition(op):
                if inner != op:
                    reached.setdefault(inner, op)
    common = torch_source / "torch/testing/_internal/common_mps.py"
    gaps, left_out = unambiguous_dtype_gaps(parse_unimplemented_entries(common.read_text()), ops)
    version = (torch_source / "version.txt").read_text().strip() if (torch_source / "version.txt").exists() else ""
    return {
        "release": release_of(version or torch.__version__),
        "provenance": {
            "version_txt": version,
            "traced_with": torch.__version__,
            "files": ["aten/src/ATen/native/native_functions.yaml", "aten/src/ATen/mps/MPSFallback.mm",
                      "torch/testing/_internal/common_mps.py"],
            "dropped_fallbacks": dropped,
            "dtype_entries_left_out": left_out,
        },
        "always_fallback": sorted(always),
        "reached_through": dict(sorted(reached.items())),
        "dtype_gaps": gaps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--torch-source", type=Path, required=True, help="a pytorch/pytorch checkout")
    parser.add_argument("--commit", default=None, help="the checkout's commit or tag, recorded as provenance")
    parser.add_argument("--out", type=Path, default=None, help="default: data/mps_ops_<release>.json")
    args = parser.parse_args(argv)
    data = build(args.torch_source)
    if args.commit:
        data["provenance"]["commit"] = args.commit
    out = args.out or data_file(data["release"])
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {out}: {len(data['always_fallback'])} always-fallback ops, {len(data['dtype_gaps'])} dtype gaps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
