"""Apple MPS: the emulated ``torch.mps`` namespace (MPS-written code on other devices) and the MPS limits
(float64 policy, operators without MPS kernels) used on a real Mac and in the Linux simulation."""
