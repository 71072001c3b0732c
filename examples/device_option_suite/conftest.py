"""The pattern of suites that take the device from their own option (pytest_optimizer-style ``--device``)."""

import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--device", default="cuda", help="the device the tests run on (cuda, mps, cpu)")


@pytest.fixture
def device(request):
    name = request.config.getoption("--device")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(name, False):
        pytest.skip(f"{name} is not available")
    return torch.device(name)
