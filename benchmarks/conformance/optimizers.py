"""``optim_db``: every OptimizerInfo configuration, a few steps natively and on a ``.cuda()`` model.

Configurations are the CPU ones of ``optim_inputs_func``, each with ``foreach`` off and on (and ``fused``
where the optimizer has a CPU fused kernel), as torch's own tests expand them.  The model (a small MLP, or a
sparse ``Embedding`` for optimizers that need sparse gradients) is built with the same seed on both sides;
the emulated one is moved with ``.cuda()`` before the optimizer is made (and, for the base configuration, a
second run builds the optimizer first, which must keep working as on CUDA; a third leaves ``foreach`` unset,
which on CUDA means the foreach implementation for all but Adafactor: it is compared with the native run of
the implementation CUDA would pick).
After three steps the parameters, their ``.grad`` and the optimizer state must be identical and report CUDA,
except a 0-dim ``step`` counter, which torch keeps on the host for non-capturable, non-fused optimizers (on
CUDA too) and on the device for some (ASGD): either is accepted. Then ``state_dict()`` is loaded into a fresh
optimizer on a fresh model and one more step must match the native one.
"""

from __future__ import annotations

import copy
import functools
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch

import torchdevice_core as td

from .compare import Mismatch, Outcome, Summary, compare_outputs, compare_tensor, run_both, short

STEPS = 3


def optim_db() -> list[Any]:
    from torch.testing._internal.common_optimizers import optim_db as db

    return list(db)


def name_of(info: Any) -> str:
    return str(info.optim_cls.__name__)


def select(infos: Iterable[Any], names: Iterable[str] | None) -> list[Any]:
    if names is None:
        return list(infos)
    wanted = set(names)
    chosen = [i for i in infos if name_of(i) in wanted]
    missing = wanted - {name_of(i) for i in chosen}
    if missing:
        raise SystemExit(f"not in optim_db: {', '.join(sorted(missing))}")
    return chosen


def configs(info: Any) -> list[tuple[str, dict[str, Any]]]:
    """(description, kwargs) per configuration, with the implementation flags spelled out."""
    impls = [x for x in info.supported_impls if x == "foreach" or (x == "fused" and "cpu" in info.supports_fused_on)]
    out = []
    for oi in info.optim_inputs_func("cpu"):
        base = copy.deepcopy(oi.kwargs)
        for flag in impls:
            base[flag] = False
        desc = oi.desc or "default"
        out.append((desc, base))
        for flag in impls:
            out.append((f"{desc}, {flag}", dict(copy.deepcopy(base), **{flag: True})))
    return out


def _model(info: Any, seed: int) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    m: torch.nn.Module
    if info.only_supports_sparse_grads:
        m = torch.nn.Embedding(10, 4, sparse=True)
        x = torch.tensor([1, 3, 5, 3])
    else:
        m = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
        x = torch.randn(3, 5)
    return m, x


def _train(info: Any, m: torch.nn.Module, x: torch.Tensor, opt: torch.optim.Optimizer, steps: int) -> None:
    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = m(x).pow(2).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        if info.step_requires_closure:
            opt.step(closure)  # type: ignore[arg-type]
        else:
            closure()
            opt.step()


def _snapshot(m: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    params = [p for p in m.parameters()]
    return {
        "params": params,
        "grads": [p.grad for p in params],
        "state": [opt.state.get(p, {}) for p in params],
    }


def _session(info: Any, kwargs: dict[str, Any], emulated: bool, before: bool) -> dict[str, Any]:
    """Train, then reload into a fresh model/optimizer and take one more step; what both left behind."""
    m, x = _model(info, 0)
    if emulated and not before:
        m.cuda()
    opt = info.optim_cls(m.parameters(), **copy.deepcopy(kwargs))
    if emulated and before:
        m.cuda()
    if emulated:
        x = x.cuda()
    _train(info, m, x, opt, STEPS)
    first = _snapshot(m, opt)
    m2, _ = _model(info, 1)
    if emulated:
        m2.cuda()
    m2.load_state_dict(m.state_dict())
    opt2 = info.optim_cls(m2.parameters(), **copy.deepcopy(kwargs))
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    _train(info, m2, x, opt2, 1)
    return {"first": first, "reloaded": _snapshot(m2, opt2)}


def _compare(native: dict[str, Any], got: dict[str, Any], kwargs: dict[str, Any]) -> None:
    for phase in ("first", "reloaded"):
        n, e = native[phase], got[phase]
        for k, (np_, ep) in enumerate(zip(n["params"], e["params"], strict=True)):
            compare_tensor(np_, ep, f"{phase} param[{k}]")
            if not isinstance(ep, torch.nn.Parameter):
                raise Mismatch("device report", f"{phase} param[{k}] is {type(ep).__name__}, not a Parameter")
        for k, (ng, eg) in enumerate(zip(n["grads"], e["grads"], strict=True)):
            if (ng is None) != (eg is None):
                raise Mismatch("grad value", f"{phase} grad[{k}]: only one side has one")
            if ng is not None:
                compare_tensor(ng, eg, f"{phase} grad[{k}]", device_cause="grad device report",
                               value_cause="grad value")
        for k, (ns, es) in enumerate(zip(n["state"], e["state"], strict=True)):
            if sorted(ns) != sorted(es):
                raise Mismatch("state_dict", f"{phase} state[{k}] keys {sorted(es)} emulated, {sorted(ns)} natively")
            for key, nv in ns.items():
                _compare_state_value(nv, es[key], f"{phase} state[{k}][{key!r}]")


def _compare_state_value(native: Any, got: Any, where: str) -> None:
    """Optimizer state: tensors (and lists of them) as outputs; a 0-dim tensor may live on the host or the
    device (``step``, ``mu_product``, LBFGS's ``t``: torch decides per optimizer and flag, on CUDA too)."""
    try:
        if isinstance(native, torch.Tensor) and native.dim() == 0 and not td.is_emulated(got):
            compare_tensor(native, got, where, expect_cuda=False)
        else:
            compare_outputs(native, got, where)
    except Mismatch as mm:
        cause = "state_dict" if mm.cause in ("value", "value (within tolerance)", "output structure") else mm.cause
        raise Mismatch(cause, mm.detail) from None


def run_info(info: Any, summary: Summary, *, limit: int | None = None, target: str = "cpu") -> None:
    chosen = configs(info)
    if limit is not None:
        chosen = chosen[:limit]
    index = 0
    for desc, kwargs in chosen:
        # (name suffix, native kwargs, emulated kwargs, optimizer built before .cuda())
        cases = [("", kwargs, kwargs, False)]
        if "," not in desc and not _eager_state(info, kwargs):
            cases.append((" (optimizer built before .cuda())", kwargs, kwargs, True))
        if "," not in desc and kwargs.get("foreach") is False:
            # no foreach= at all: on CUDA torch picks the foreach implementation, and so must it here
            default = {k: v for k, v in kwargs.items() if k != "foreach"}
            picked = _defaults_to_foreach(info)
            cases.append((f" (foreach unset: CUDA's default, foreach={picked})", dict(kwargs, foreach=picked), default,
                          False))
        for suffix, native_kwargs, emulated_kwargs, before in cases:
            outcome = Outcome("optim_db", f"{name_of(info)} [{desc}]{suffix}", "float32", index)
            index += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                native: Any
                try:
                    native = _session(info, native_kwargs, False, False)
                except Exception as exc:
                    native = exc
                handle = td.activate(target)
                try:
                    emulated = functools.partial(_session, info, emulated_kwargs, True, before)
                    n_out, e_out = run_both(_raiser(native), emulated)
                    if not isinstance(n_out, BaseException):
                        _compare(n_out, e_out, native_kwargs)
                except Mismatch as mm:
                    outcome.cause, outcome.detail = mm.cause, mm.detail
                except Exception as exc:
                    outcome.cause, outcome.detail = "exception only under emulation", short(exc)
                finally:
                    handle.deactivate()
            summary.add(outcome)


def _defaults_to_foreach(info: Any) -> bool:
    """Does ``foreach=None`` mean the foreach implementation on CUDA?  For optimizers that ask torch's
    ``_default_to_fused_or_foreach`` (all but Adafactor, whose None means the for-loop); read from its module."""
    import inspect
    import sys

    try:
        return "_default_to_fused_or_foreach" in inspect.getsource(sys.modules[info.optim_cls.__module__])
    except (OSError, TypeError, KeyError):
        return True


def _eager_state(info: Any, kwargs: dict[str, Any]) -> bool:
    """Does the optimizer make its state when it is built (Adagrad)?  Then building it before ``.cuda()``
    leaves that state on the host, and CUDA raises at the first step too: not a case to compare."""
    try:
        m, _ = _model(info, 0)
        return bool(info.optim_cls(m.parameters(), **copy.deepcopy(kwargs)).state)
    except Exception:
        return False


def _raiser(value: Any) -> Callable[[], Any]:
    def get() -> Any:
        if isinstance(value, BaseException):
            raise value
        return value

    return get


def run(names: Iterable[str] | None = None, *, limit: int | None = None, summary: Summary | None = None) -> Summary:
    summary = summary or Summary()
    start = time.perf_counter()
    for info in select(optim_db(), names):
        run_info(info, summary, limit=limit)
    summary.seconds["optim_db"] = summary.seconds.get("optim_db", 0.0) + time.perf_counter() - start
    return summary
