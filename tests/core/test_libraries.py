"""CUDA build/library queries, and warnings a GPU would not give (cuDNN on RNNs, pin_memory in the DataLoader)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import torchdevice_core as td

from ._callers import ask_from

_ASK = """
import torch
def ask():
    return torch.backends.cuda.is_built(), torch.cuda.get_arch_list()
"""



@pytest.fixture
def handle() -> Iterator[td.Handle]:
    with td.redirected("cpu") as h:
        yield h


def test_device_queries_emulated_library_queries_real(handle: td.Handle) -> None:
    assert torch.cuda.is_available()
    assert torch.backends.cuda.is_built() is True
    assert torch.cuda.get_arch_list() == ["sm_80"]
    with handle.suspended():
        real = (torch.backends.cuda.is_built(), torch.cuda.get_arch_list())
    assert ask_from("torch.fake_internal", _ASK)() == real
    assert ask_from("user_code", _ASK)() == (True, ["sm_80"])
    # no CUDA toolkit, no cuDNN: reported as the machine is (a ROCm build has torch.version.cuda None too)
    assert torch.version.cuda is None
    assert torch.backends.cudnn.is_available() is False and torch.backends.cudnn.version() is None
    assert torch.backends.cudnn.is_acceptable(torch.ones(1, device="cuda")) is False


def test_rnns_do_not_warn_about_cudnn(handle: td.Handle) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cls in (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN):
            rnn = cls(4, 8, num_layers=2).cuda()
            out, _ = rnn(torch.randn(5, 3, 4, device="cuda"))
            assert out.is_cuda and out.shape == (5, 3, 8)
            out.sum().backward()


def test_cudnn_is_acceptable_still_answers_for_plain_tensors(handle: td.Handle) -> None:
    with handle.suspended():
        expected = torch.backends.cudnn.is_acceptable(torch.ones(1))
    assert torch.backends.cudnn.is_acceptable(torch.ones(1)) is expected


def test_dataloader_pin_memory_takes_the_gpu_path_without_warning(handle: td.Handle) -> None:
    data = TensorDataset(torch.arange(10.0), torch.arange(10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader = DataLoader(data, batch_size=4, pin_memory=True)
        batches = list(loader)
    assert [b[0].tolist() for b in batches] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0]]
    assert all(b[1].device.type == "cpu" for b in batches)  # pinned host tensors, not device tensors
    assert batches[0][0].cuda().is_cuda


def test_dataloader_warns_as_it_does_natively_when_inactive() -> None:
    with pytest.warns(UserWarning, match="no accelerator is found"):
        list(DataLoader(TensorDataset(torch.arange(4.0)), batch_size=2, pin_memory=True))
