"""Developer scripts: the quick start (dev.py) and the torch-versions run (torch_versions.py)."""
