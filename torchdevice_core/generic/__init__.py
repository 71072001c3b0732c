"""Device-generic torch APIs (``torch.accelerator``, ``torch.Stream``/``torch.Event``), PyTorch's own
device-type test framework, and the CUDA library queries, emulated for the source device."""
