"""``init_process_group("nccl")`` -> gloo where the target is not CUDA; user code still reads "nccl" back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..patching import Patch
from ..session import Redirection


def _map_backend(backend: Any) -> Any:
    """"nccl" -> "gloo", and "cpu:gloo,cuda:nccl" -> "cpu:gloo,cuda:gloo"."""
    if not isinstance(backend, str) or "nccl" not in backend.lower():
        return backend
    return backend.lower().replace("nccl", "gloo")


def _make_init(session: Redirection, orig: Callable[..., Any], api: str, mapped: dict[int, str]) -> Callable[..., Any]:
    def init_process_group(backend: Any = None, *args: Any, **kwargs: Any) -> Any:
        new = _map_backend(backend)
        if new is backend:
            return orig(backend, *args, **kwargs)
        session.record.redirected(f"{api}(backend={backend!r})")
        kwargs.pop("device_id", None)  # a CUDA device id means nothing to gloo on the target
        result = orig(new, *args, **kwargs)
        mapped[0] = str(backend)
        return result

    init_process_group.__name__ = orig.__name__
    return init_process_group


def _make_new_group(session: Redirection, orig: Callable[..., Any]) -> Callable[..., Any]:
    def new_group(*args: Any, **kwargs: Any) -> Any:
        if "backend" in kwargs:
            kwargs["backend"] = _map_backend(kwargs["backend"])
        elif len(args) >= 3:
            args = (*args[:2], _map_backend(args[2]), *args[3:])
        return orig(*args, **kwargs)

    return new_group


def _make_get_backend(session: Redirection, orig: Callable[..., Any], mapped: dict[int, str]) -> Callable[..., Any]:
    def get_backend(group: Any = None) -> Any:
        real = orig(group)
        if 0 in mapped and str(real) == "gloo" and not session.real_caller():
            session.record.emulated("torch.distributed.get_backend")
            return mapped[0]
        return real

    return get_backend


def _make_is_nccl_available(session: Redirection, orig: Callable[..., Any]) -> Callable[..., Any]:
    def is_nccl_available() -> bool:
        if session.real_caller():
            return bool(orig())
        session.record.emulated("torch.distributed.is_nccl_available")
        return True

    return is_nccl_available


def patches(session: Redirection) -> list[Patch]:
    if session.target.type == "cuda":
        return []
    try:
        import torch.distributed as dist
        import torch.distributed.distributed_c10d as c10d
    except ImportError:
        return []
    if not dist.is_available():
        return []
    mapped: dict[int, str] = {}
    out = []
    for owner in (dist, c10d):
        out.append(Patch(owner, "init_process_group",
                         _make_init(session, c10d.init_process_group, "torch.distributed.init_process_group",
                                    mapped), "nccl -> gloo"))
        out.append(Patch(owner, "new_group", _make_new_group(session, c10d.new_group), "nccl -> gloo"))
        out.append(Patch(owner, "get_backend", _make_get_backend(session, c10d.get_backend, mapped),
                         "report the backend the code asked for"))
        out.append(Patch(owner, "is_nccl_available", _make_is_nccl_available(session, c10d.is_nccl_available),
                         "nccl is emulated by gloo"))
    return out
