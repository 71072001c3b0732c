"""PyTorch's own device-generic test files, with and without the plugin: CPU vs emulated-CUDA pass rates.

It fetches nothing: point it at a PyTorch checkout (or a folder holding its ``test_*.py`` files) of the
release matching the installed torch, and name the files::

    python benchmarks/torch_test_corpus.py --pytorch .torch_tests --file test_type_promotion.py

Each file runs twice in a subprocess (``python -m pytest FILE``, from the file's folder, with a time limit):
natively (``-p no:torchdevice``: only CPU variants exist on a CPU box) and with ``--target-device=cpu``
(``instantiate_device_type_tests`` then makes the CUDA variants too).  Outcomes come from pytest's JUnit
XML; a test's variant is the suffix of its class (``TestFooCPU`` / ``TestFooCUDA``).  The table says, per
file, how many CPU variants pass natively and under the plugin, how many CUDA variants pass, and which CUDA
variants fail although their CPU twin passes (the ones to explain).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

VARIANTS = ("CPU", "CUDA")


@dataclass
class Outcomes:
    """Per variant (``CPU``/``CUDA``): test id (class-less, device suffix dropped) -> outcome."""

    by_variant: dict[str, dict[str, str]] = field(default_factory=lambda: {v: {} for v in VARIANTS})
    wall_s: float = 0.0
    returncode: int = 0

    def counts(self, variant: str) -> Counter[str]:
        return Counter(self.by_variant[variant].values())


def variant_of(classname: str) -> tuple[str, str] | None:
    """``test_x.TestFooCUDA`` -> (``CUDA``, ``TestFoo``); None for classes that are not device variants."""
    cls = classname.rpartition(".")[2]
    for variant in sorted(VARIANTS, key=len, reverse=True):
        if cls.endswith(variant):
            return variant, cls[: -len(variant)]
    return None


def twin_key(base: str, name: str, variant: str) -> str:
    """``TestFoo::test_y_cuda_float32`` and ``TestFoo::test_y_cpu_float32`` share ``TestFoo::test_y_*_float32``."""
    suffix = f"_{variant.lower()}"
    head, sep, tail = name.partition(suffix)
    return f"{base}::{head}*{tail}" if sep else f"{base}::{name}"


def parse_junit(path: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {v: {} for v in VARIANTS}
    if not path.exists():
        return out
    for case in ET.parse(path).getroot().iter("testcase"):
        found = variant_of(case.get("classname", ""))
        if found is None:
            continue
        variant, base = found
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
        out[variant][twin_key(base, case.get("name", ""), variant)] = outcome
    return out


def run(file: Path, plugin: bool, timeout: float, select: str | None, workdir: Path) -> Outcomes:
    junit = workdir / f"{file.stem}-{'plugin' if plugin else 'native'}.xml"
    ini = workdir / "pytest.ini"  # the file's own folder decides nothing (not this repo's strict config either)
    ini.write_text("[pytest]\n")
    cmd = [sys.executable, "-m", "pytest", file.name, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
           "-o", "junit_family=xunit1", "-c", str(ini), f"--rootdir={file.parent}"]
    cmd += ["--target-device=cpu"] if plugin else ["-p", "no:torchdevice"]
    if select:
        cmd += ["-k", select]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTORCH_PRINT_REPRO_ON_FAILURE="0")
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=file.parent, env=env, capture_output=True, text=True, timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = -1
    return Outcomes(parse_junit(junit), time.perf_counter() - start, code)


def rate(counts: Counter[str]) -> str:
    ran = counts["passed"] + counts["failed"]
    pct = f" ({100 * counts['passed'] / ran:.1f} %)" if ran else ""
    return f"{counts['passed']}/{ran}{pct}, {counts['skipped']} skipped"


def cuda_failures(plugin: Outcomes) -> dict[str, str]:
    """Every failing CUDA variant -> its CPU twin's outcome (``absent`` for CUDA-only tests such as onlyCUDA)."""
    cpu, cuda = plugin.by_variant["CPU"], plugin.by_variant["CUDA"]
    return {key: cpu.get(key, "absent") for key, outcome in sorted(cuda.items()) if outcome == "failed"}


def cuda_only_failures(plugin: Outcomes) -> list[str]:
    """CUDA variants that fail while their CPU twin passes (same test, same dtype)."""
    cpu, cuda = plugin.by_variant["CPU"], plugin.by_variant["CUDA"]
    return sorted(key for key, outcome in cuda.items() if outcome == "failed" and cpu.get(key) == "passed")


def find(root: Path, name: str) -> Path:
    for candidate in (root / name, root / "test" / name):
        if candidate.exists():
            return candidate
    raise SystemExit(f"{name} is neither in {root} nor in {root / 'test'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pytorch", type=Path, required=True, help="a PyTorch checkout, or a folder of its test files")
    parser.add_argument("--file", action="append", required=True, help="a test file (repeatable)")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k expression for every file (subsets)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per run (default 1200)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--junit-dir", type=Path, default=None, help="keep the JUnit XML files here")
    args = parser.parse_args(argv)
    rows = []
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.junit_dir:
            args.junit_dir.mkdir(parents=True, exist_ok=True)
            workdir = args.junit_dir.resolve()
        for name in args.file:
            path = find(args.pytorch, name).resolve()
            native = run(path, False, args.timeout, args.select, workdir)
            plugin = run(path, True, args.timeout, args.select, workdir)
            failures = cuda_only_failures(plugin)
            wall = f"{native.wall_s:.0f} s / {plugin.wall_s:.0f} s"
            rows.append(f"| {name} | {rate(native.counts('CPU'))} | {rate(plugin.counts('CPU'))} | "
                        f"{rate(plugin.counts('CUDA'))} | {len(failures)} | {wall} |")
            results[name] = {
                "native": {v: dict(native.counts(v)) for v in VARIANTS},
                "plugin": {v: dict(plugin.counts(v)) for v in VARIANTS},
                "cuda_fails_where_cpu_passes": failures,
                "cuda_failures_and_cpu_twin": cuda_failures(plugin),
                "returncodes": [native.returncode, plugin.returncode],
            }
            for key, twin in cuda_failures(plugin).items():
                print(f"  {name}: CUDA variant fails, CPU twin {twin}: {key}", file=sys.stderr)
    print("| file | CPU variants, native | CPU variants, plugin | CUDA variants, plugin | CUDA fails where CPU "
          "passes | wall (native / plugin) |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.select:
        print(f"(subset: -k {args.select!r})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
