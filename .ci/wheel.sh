#!/usr/bin/env bash
# The package as users get it: build the sdist and the wheel, install the wheel (not editable) into a fresh
# venv, and run the example suites through it, the .pth subprocess hook included. Called by .ci/run after the
# quick start (which made .venv, where `build` is installed); also runnable alone: bash .ci/wheel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

rm -rf dist .ci-wheel-venv
.venv/bin/python -m build --outdir dist . > /dev/null
ls dist/pytest_torchdevice-*.tar.gz dist/pytest_torchdevice-*-py3-none-any.whl

python3 -m venv .ci-wheel-venv
py="$repo/.ci-wheel-venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$py" -m pip install --quiet --disable-pip-version-check dist/pytest_torchdevice-*-py3-none-any.whl "torch==2.13.0" numpy

# Run outside the clone, so that nothing can import the source tree instead of the installed wheel.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/cuda_suite examples/mps_suite "$work/"
cat > "$work/test_installed.py" <<'PY'
import subprocess
import sys
import sysconfig

import torch

import pytest_torchdevice
import torchdevice_core


def test_the_wheel_is_what_runs():
    site = sysconfig.get_paths()["purelib"]
    for module in (torchdevice_core, pytest_torchdevice):
        assert module.__file__.startswith(site), module.__file__


def test_a_subprocess_inherits_the_redirection_through_the_pth_hook():
    code = "import torch; print(torch.randn(2, device='cuda').device, torch.cuda.is_available())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "cuda:0 True", out.stderr
    assert torch.randn(1, device="cuda").is_cuda
PY
cd "$work"
"$py" -m pytest -p no:cacheprovider -q test_installed.py --target-device=cpu
"$py" -m pytest -p no:cacheprovider -q cuda_suite --target-device=cpu --torchdevice-report=report.json
test -s report.json
"$py" -m pytest -p no:cacheprovider -q mps_suite --target-device=cpu --source-device=mps
echo "wheel: installed and ran the example suites"
