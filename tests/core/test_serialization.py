"""Checkpoints tagged ``cuda:0``: saved while active, loaded with every common ``map_location``."""

from __future__ import annotations

import io
import pathlib
import pickletools
from typing import Any

import pytest
import torch

import torchdevice_core as td


def _cuda_checkpoint() -> tuple[bytes, dict[str, torch.Tensor]]:
    """A checkpoint whose storages are tagged ``cuda:0``, as one written on a GPU machine is."""
    with td.redirected("cpu"):
        model = torch.nn.Linear(3, 2).cuda()
        payload = {"weight": model.weight.detach(), "bias": model.bias.detach(),
                   "step": torch.tensor(7, device="cuda")}
        buf = io.BytesIO()
        torch.save(payload, buf)
        expected = {k: v.cpu() for k, v in payload.items()}
    return buf.getvalue(), expected


def _locations(data: bytes) -> set[str]:
    """The device tags in a zip checkpoint's pickle (what a real GPU checkpoint carries)."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        ops = pickletools.genops(z.read(pkl))
        return {arg for _, arg, _ in ops if isinstance(arg, str) and arg.startswith(("cuda", "cpu"))}


def test_saving_while_active_tags_storages_cuda() -> None:
    data, _ = _cuda_checkpoint()
    assert _locations(data) == {"cuda:0"}
    with td.redirected("cpu"):
        buf = io.BytesIO()
        torch.save({"host": torch.ones(2)}, buf)
    assert _locations(buf.getvalue()) == {"cpu"}


@pytest.mark.parametrize(
    "map_location",
    [None, "cuda", "cuda:0", torch.device("cuda"), {"cuda:0": "cuda:0"}, lambda s, loc: s.cuda(),
     lambda s, loc: None],
    ids=["default", "str", "str0", "device", "dict", "lambda-cuda", "lambda-none"],
)
def test_cuda_checkpoint_loads_emulated(map_location: Any) -> None:
    data, expected = _cuda_checkpoint()
    with td.redirected("cpu") as handle:
        kwargs = {} if map_location is None else {"map_location": map_location}
        loaded = torch.load(io.BytesIO(data), **kwargs)
        for key, value in expected.items():
            assert loaded[key].is_cuda and loaded[key].device == torch.device("cuda:0"), key
            assert td.real_device(loaded[key]).type == "cpu"
            assert torch.equal(loaded[key].cpu(), value)
        assert handle.record.snapshot().total("redirected") >= 1


def test_map_location_cpu_gives_plain_tensors() -> None:
    data, expected = _cuda_checkpoint()
    with td.redirected("cpu"):
        loaded = torch.load(io.BytesIO(data), map_location="cpu")
        assert all(type(v) is torch.Tensor and not v.is_cuda for v in loaded.values())
        assert torch.equal(loaded["weight"], expected["weight"])


def test_cuda_checkpoint_without_the_library_fails_like_on_a_cpu_machine() -> None:
    data, expected = _cuda_checkpoint()
    assert td.active() is None
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the checkpoint would load natively")
    with pytest.raises(RuntimeError, match="Attempting to deserialize object on a CUDA device"):
        torch.load(io.BytesIO(data))
    loaded = torch.load(io.BytesIO(data), map_location="cpu")
    assert type(loaded["weight"]) is torch.Tensor
    assert torch.equal(loaded["weight"], expected["weight"])


def test_state_dict_round_trip_through_a_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "model.pt"
    with td.redirected("cpu"):
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)).cuda()
        torch.save(model.state_dict(), path)
        state = torch.load(path)
        assert all(v.is_cuda for v in state.values())
        fresh = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)).cuda()
        fresh.load_state_dict(state)
        for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        whole = torch.load(path, weights_only=False, map_location=lambda s, loc: s.cuda())
        assert whole["0.weight"].is_cuda


def test_loading_a_whole_module(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "module.pt"
    with td.redirected("cpu"):
        torch.save(torch.nn.Linear(2, 2).cuda(), path)
        module = torch.load(path, weights_only=False)
        assert isinstance(module.weight, torch.nn.Parameter)
        assert module.weight.is_cuda
        out = module(torch.ones(1, 2, device="cuda"))
        assert out.is_cuda


def test_storage_cuda_with_shared_storages() -> None:
    with td.redirected("cpu"):
        base = torch.arange(6.0, device="cuda")
        buf = io.BytesIO()
        torch.save({"a": base, "b": base[2:]}, buf)
        loaded = torch.load(io.BytesIO(buf.getvalue()), map_location=lambda s, loc: s.cuda())
        loaded["a"][2] = 100.0
        assert loaded["b"][0].item() == 100.0  # views still share one storage
        assert loaded["b"].is_cuda
