"""pytest-torchdevice: run CUDA-written PyTorch test suites on CPU or Apple MPS (the pytest plugin)."""

__version__ = "0.1.0"
