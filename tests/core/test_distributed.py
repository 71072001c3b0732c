"""``init_process_group("nccl")`` runs on gloo; user code still reads "nccl" back."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist

import torchdevice_core as td

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nccl_process_group_becomes_gloo() -> None:
    with td.redirected("cpu") as handle:
        assert dist.is_nccl_available()
        dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1,
                                device_id=torch.device("cuda", 0))
        try:
            assert dist.is_initialized()
            assert dist.get_backend() == "nccl"
            assert dist.get_world_size() == 1 and dist.get_rank() == 0
            t = torch.arange(4.0, device="cuda")
            dist.all_reduce(t)
            assert t.is_cuda and t.tolist() == [0.0, 1.0, 2.0, 3.0]
            gathered = [torch.zeros(4, device="cuda")]
            dist.all_gather(gathered, t)
            assert torch.equal(gathered[0], t)
            dist.broadcast(t, src=0)
            dist.barrier()
            counts = handle.record.snapshot().counts
            assert counts[("redirected", "torch.distributed.init_process_group(backend='nccl')")] == 1
        finally:
            dist.destroy_process_group()
    assert not dist.is_initialized()


def test_torch_internal_callers_see_the_real_backend() -> None:
    real_nccl = dist.is_nccl_available()
    with td.redirected("cpu"):
        dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
        try:
            namespace: dict[str, object] = {"__name__": "torch.distributed.fake", "dist": dist}
            exec("def ask():\n    return dist.get_backend(), dist.is_nccl_available()", namespace)
            assert namespace["ask"]() == ("gloo", real_nccl)  # type: ignore[operator]
            assert (dist.get_backend(), dist.is_nccl_available()) == ("nccl", True)
        finally:
            dist.destroy_process_group()


def test_gloo_is_left_alone() -> None:
    with td.redirected("cpu") as handle:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
        try:
            assert dist.get_backend() == "gloo"
        finally:
            dist.destroy_process_group()
        assert handle.record.snapshot().total("redirected") == 0


def test_ddp_with_device_ids_trains_on_the_target() -> None:
    with td.redirected("cpu"):
        dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
        try:
            model = torch.nn.Linear(4, 2).cuda()
            ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[0])
            out = ddp(torch.randn(3, 4, device="cuda"))
            out.sum().backward()
            assert out.is_cuda
            assert model.weight.grad is not None and model.weight.grad.is_cuda
        finally:
            dist.destroy_process_group()
