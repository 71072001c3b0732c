"""``module_db``: every ModuleInfo input, natively on the CPU and as a ``.cuda()`` module on emulated tensors.

Per ModuleInfo (float32; train and eval where they differ) and module input: the module is built with the
same seed on both sides (so its initial weights are equal), moved with ``.cuda()`` on the emulated side,
run forward on the inputs moved with ``.cuda()``, and backward from seeded output gradients.  Compared:
outputs; ``.grad`` of every parameter and input; that parameters keep their identity across ``.cuda()``
and every parameter and buffer reports CUDA; ``state_dict()`` (values, devices) and its round trip through
``torch.save``/``torch.load``/``load_state_dict`` into a fresh ``.cuda()`` module; ``.cpu()`` (plain CPU
parameters, the native forward again) and ``.to("cuda")`` (emulated again, the same forward).
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Iterable
from typing import Any

import torch

import torchdevice_core as td

from .compare import (
    Emulator,
    Mismatch,
    Outcome,
    Summary,
    compare_outputs,
    compare_tensor,
    differentiable,
    reports_cuda,
    run_both,
    short,
)
from .samples import pristine, tensors_of

DTYPES = (torch.float32,)


def module_db() -> list[Any]:
    from torch.testing._internal.common_modules import module_db as db

    return list(db)


def select(infos: Iterable[Any], names: Iterable[str] | None) -> list[Any]:
    if names is None:
        return list(infos)
    wanted = set(names)
    chosen = [i for i in infos if i.name in wanted or i.module_cls.__name__ in wanted]
    missing = wanted - {i.name for i in chosen} - {i.module_cls.__name__ for i in chosen}
    if missing:
        raise SystemExit(f"not in module_db: {', '.join(sorted(missing))}")
    return chosen


def _state(m: torch.nn.Module) -> dict[str, Any]:
    return {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in m.state_dict().items()}


class _Native:
    def __init__(self, data: Any) -> None:
        self.data = data  # (ctor args, ctor kwargs, forward args, forward kwargs), pristine
        self.result: Any = None
        self.grads: list[torch.Tensor | None] | None = None
        self.grad_outputs: list[torch.Tensor] | None = None
        self.grad_error: BaseException | None = None
        self.state: dict[str, Any] = {}
        self.n_params = 0


def _build(info: Any, data: Any, dtype: torch.dtype, training: bool, seed: int) -> torch.nn.Module:
    cargs, ckwargs, _, _ = data
    torch.manual_seed(seed)
    m = info.module_cls(*cargs, **ckwargs)
    m.to(dtype)
    m.train(training)
    return m


def _forward(m: torch.nn.Module, data: Any, seed: int) -> Any:
    _, _, fargs, fkwargs = data
    torch.manual_seed(seed + 1)
    return m(*fargs, **fkwargs)


def _native_side(info: Any, inputs: list[Any], dtype: torch.dtype, training: bool) -> list[_Native]:
    done = []
    for i, mi in enumerate(inputs):
        data = (mi.constructor_input.args, mi.constructor_input.kwargs, mi.forward_input.args,
                mi.forward_input.kwargs)
        rec = _Native(pristine(data))
        try:
            m = _build(info, data, dtype, training, i)
            rec.result = _forward(m, data, i)
        except Exception as exc:
            rec.result = exc
            done.append(rec)
            continue
        rec.state = _state(m)
        try:
            outs = differentiable(rec.result)
            params = [p for p in m.parameters() if p.requires_grad]
            rec.n_params = len(params)
            leaves = params + [t for t in tensors_of(data[2:]) if t.requires_grad]
            if outs and leaves:
                torch.manual_seed(i + 1_000_003)
                rec.grad_outputs = [torch.randn_like(o) for o in outs]
                rec.grads = list(torch.autograd.grad(outs, leaves, rec.grad_outputs, allow_unused=True))
        except Exception as exc:
            rec.grad_error = exc
        done.append(rec)
    return done


def _check_module(m: torch.nn.Module, where: str, cuda: bool) -> None:
    for name, t in [*m.named_parameters(), *m.named_buffers()]:
        if cuda and not reports_cuda(t):
            raise Mismatch("module move", f"{where}: {name} is {type(t).__name__} on {t.device}")
        if not cuda and (td.is_emulated(t) or t.device.type != "cpu" or t.is_cuda):
            raise Mismatch("module move", f"{where}: {name} is {type(t).__name__} on {t.device}")
    for name, p in m.named_parameters():
        if not isinstance(p, torch.nn.Parameter):
            raise Mismatch("module move", f"{where}: {name} is no longer a Parameter")


def _compare_state(native: dict[str, Any], got: dict[str, Any], where: str) -> None:
    if list(native) != list(got):
        raise Mismatch("state_dict", f"{where}: keys {list(got)} emulated, {list(native)} natively")
    for k, v in native.items():
        if isinstance(v, torch.Tensor):
            try:
                compare_tensor(v, got[k], f"{where}[{k!r}]")
            except Mismatch as m:
                raise Mismatch("state_dict", m.detail) from None


def _emulated_one(info: Any, rec: _Native, dtype: torch.dtype, training: bool, seed: int) -> None:
    conv = Emulator()
    data = conv(rec.data)
    holder: dict[str, torch.nn.Module] = {}

    def emulated() -> Any:
        m = _build(info, data, dtype, training, seed)
        before = list(m.parameters())
        m.cuda()
        holder["m"] = m
        if any(a is not b for a, b in zip(before, m.parameters(), strict=False)):
            raise Mismatch("module move", ".cuda() replaced Parameter objects")
        return _forward(m, data, seed)

    def native() -> Any:
        if isinstance(rec.result, BaseException):
            raise rec.result
        return rec.result

    _, out = run_both(native, emulated)
    if isinstance(out, BaseException):
        return
    m = holder["m"]
    _check_module(m, "after .cuda() and forward", True)
    compare_outputs(rec.result, out)
    if rec.grads is not None or rec.grad_error is not None:
        params = [p for p in m.parameters() if p.requires_grad]
        leaves = params + [e for _, e in conv.leaves if not any(e is p for p in params)]
        try:
            outs = differentiable(out)
            if len(outs) != len(rec.grad_outputs or ()):
                raise Mismatch("requires_grad", f"{len(outs)} differentiable outputs emulated, "
                                                f"{len(rec.grad_outputs or ())} natively")
            if rec.grad_error is None:
                torch.autograd.backward(outs, [g.cuda() for g in rec.grad_outputs or ()], inputs=leaves)
        except Mismatch:
            raise
        except Exception as exc:
            if rec.grad_error is None or type(exc) is not type(rec.grad_error):
                raise Mismatch("grad exception", short(exc)) from None
        else:
            if rec.grad_error is not None:
                raise Mismatch("grad exception", f"only natively: {short(rec.grad_error)}")
            for k, (ng, leaf) in enumerate(zip(rec.grads or (), leaves, strict=True)):
                got = leaf.grad
                if ng is None or got is None:
                    one = ng if got is None else got
                    if one is not None and bool((one != 0).any()):
                        raise Mismatch("grad value", f"grad[{k}]: only one side has a gradient")
                    continue
                compare_tensor(ng, got, f"grad[{k}]", device_cause="grad device report", value_cause="grad value")
    _round_trips(info, m, rec, data, dtype, training, seed)


def _round_trips(info: Any, m: torch.nn.Module, rec: _Native, data: Any, dtype: torch.dtype, training: bool,
                 seed: int) -> None:
    sd = m.state_dict()
    _compare_state(rec.state, sd, "state_dict()")
    buffer = io.BytesIO()
    torch.save(sd, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    _compare_state(rec.state, loaded, "torch.load(torch.save(state_dict()))")
    fresh = _build(info, data, dtype, training, seed + 7919).cuda()
    try:
        fresh.load_state_dict(loaded)
    except Exception as exc:
        raise Mismatch("state_dict", f"load_state_dict: {short(exc)}") from None
    _check_module(fresh, "fresh .cuda() module after load_state_dict", True)
    _compare_state(rec.state, _state(fresh), "state_dict() of the reloaded module")
    # .cpu(): plain CPU parameters; the native forward (on the native inputs) gives the native result again
    native_module = _build(info, rec.data, dtype, training, seed)  # (CPU constructor arguments: loss weights)
    native_out = _forward(native_module, rec.data, seed)
    moved = _build(info, rec.data, dtype, training, seed).cuda()
    moved.cpu()
    _check_module(moved, ".cuda().cpu()", False)
    try:
        compare_outputs(native_out, _forward(moved, rec.data, seed), expect_cuda=False)
        moved.to("cuda")
        _check_module(moved, '.cuda().cpu().to("cuda")', True)
        compare_outputs(native_out, _forward(moved, data, seed))
    except Mismatch as mm:
        raise Mismatch("module move", mm.detail) from None


def run_info(info: Any, summary: Summary, *, limit: int | None = None, target: str = "cpu") -> None:
    for dtype in DTYPES:
        if dtype not in info.supported_dtypes("cpu"):
            continue
        for training in ((True, False) if info.train_and_eval_differ else (True,)):
            name = info.name + ("" if training or not info.train_and_eval_differ else " (eval)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    torch.manual_seed(0)
                    inputs = [mi for mi in info.module_inputs_func(info, device="cpu", dtype=dtype,
                                                                   requires_grad=True, training=training)
                              if mi.forward_input is not None]
                except Exception as exc:
                    key = f"module_db: input generation failed ({short(exc, 60)})"
                    summary.not_run[key] = summary.not_run.get(key, 0) + 1
                    continue
                if limit is not None:
                    inputs = inputs[:limit]
                native = _native_side(info, inputs, dtype, training)
                handle = td.activate(target)
                try:
                    for i, rec in enumerate(native):
                        outcome = Outcome("module_db", name, str(dtype).removeprefix("torch."), i)
                        try:
                            _emulated_one(info, rec, dtype, training, i)
                        except Mismatch as mm:
                            outcome.cause, outcome.detail = mm.cause, mm.detail
                        except Exception as exc:
                            outcome.cause, outcome.detail = "exception only under emulation", short(exc)
                        summary.add(outcome)
                finally:
                    handle.deactivate()


def run(names: Iterable[str] | None = None, *, limit: int | None = None, summary: Summary | None = None,
        progress: bool = False) -> Summary:
    summary = summary or Summary()
    start = time.perf_counter()
    for k, info in enumerate(select(module_db(), names)):
        if progress and k % 10 == 0:
            print(f"  module_db {k} {info.name}", flush=True)
        run_info(info, summary, limit=limit)
    summary.seconds["module_db"] = summary.seconds.get("module_db", 0.0) + time.perf_counter() - start
    return summary
