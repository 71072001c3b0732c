"""Op-level fixes found by the conformance harness (``python -m benchmarks.conformance``): each test is one
case where an op's result on emulated tensors did not look like the CUDA result."""

from __future__ import annotations

import torch

import torchdevice_core as td


def test_results_nested_inside_results_are_emulated() -> None:
    # histogramdd returns (hist, bin_edges) with bin_edges a tuple of tensors: every one is a result
    x = torch.rand(20, 2)
    with td.redirected("cpu"):
        hist, edges = torch.histogramdd(x.cuda(), bins=[3, 4])
        assert hist.is_cuda and str(hist.device) == "cuda:0"
        assert len(edges) == 2
        assert all(e.is_cuda and str(e.device) == "cuda:0" for e in edges)
        native_hist, native_edges = torch.histogramdd(x, bins=[3, 4])
        assert torch.equal(hist.cpu(), native_hist)
        assert all(torch.equal(e.cpu(), n) for e, n in zip(edges, native_edges, strict=True))
    assert type(torch.histogramdd(x, bins=[3, 4]).bin_edges[0]) is torch.Tensor
