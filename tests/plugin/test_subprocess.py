"""Subprocesses started by redirected tests inherit the redirection (env variable + .pth hook)."""

from __future__ import annotations

import pytest


def test_python_c_and_spawn_inherit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import subprocess, sys
        import torch
        import torch.multiprocessing as mp

        def child(rank, queue):
            queue.put((torch.cuda.is_available(), str(torch.ones(1, device="cuda").device)))

        def test_python_c():
            code = "import torch; print(torch.randn(2, device='cuda').device, torch.cuda.is_available())"
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            assert out.stdout.strip() == "cuda:0 True", out.stderr

        def test_spawn():
            ctx = mp.get_context("spawn")
            queue = ctx.SimpleQueue()
            mp.spawn(child, args=(queue,), nprocs=1)
            assert queue.get() == (True, "cuda:0")

        def test_python_without_torch_pays_nothing():
            out = subprocess.run([sys.executable, "-c", "import sys; print('torch' in sys.modules)"],
                                 capture_output=True, text=True)
            assert out.stdout.strip() == "False"
    """)
    pytester.runpytest_subprocess("--target-device=cpu").assert_outcomes(passed=3)


def test_no_inheritance_when_the_plugin_is_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import os, subprocess, sys

        def test_child_is_plain():
            assert "TORCHDEVICE_SUBPROCESS" not in os.environ
            code = "import torch; print(torch.cuda.is_available())"
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            assert out.stdout.strip() == "False"
    """)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
