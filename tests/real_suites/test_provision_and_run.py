"""Provisioning steps that need no network (tests from a git tag, unpacking, fingerprints) and the pytest
command lines and environments of the ways."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from benchmarks.real_suites.__main__ import build_parser
from benchmarks.real_suites.collector import RESULTS_ENV
from benchmarks.real_suites.provision import SetupError, add_git_tests, fingerprint, unpack
from benchmarks.real_suites.run import RunResult, command, environment, pytest_config_args, read_results
from benchmarks.real_suites.suites import GitTests, Suite

SUITE = Suite(
    name="demo",
    dist="demo",
    version="1.0",
    test_args=("tests", "-k", "not slow"),
    common_args=("-o", "addopts="),
    native_args=("--native-only",),
    plugin_args=("--device=cuda",),
    env=(("FULL_TEST", "1"),),
)


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_tests_come_from_the_release_tag_of_a_local_clone(tmp_path: Path) -> None:
    repo = tmp_path / "upstream"
    (repo / "test").mkdir(parents=True)
    (repo / "test" / "test_a.py").write_text("def test_a(): pass\n")
    (repo / "docs.txt").write_text("not wanted\n")
    _git("init", "-q", cwd=repo)
    _git("add", ".", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "release", cwd=repo)
    _git("tag", "1.0", cwd=repo)
    (repo / "test" / "test_a.py").write_text("def test_after_the_release(): pass\n")
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "later", cwd=repo)

    src = tmp_path / "src" / "demo-1.0"
    src.mkdir(parents=True)
    suite = dataclasses.replace(SUITE, tests_from_git=GitTests(url="unused", tag="1.0", paths=("test",)))
    add_git_tests(suite, src, tmp_path / "install.log", repo / ".git")
    assert (src / "test" / "test_a.py").read_text() == "def test_a(): pass\n"
    assert not (src / "docs.txt").exists()

    missing = dataclasses.replace(SUITE, tests_from_git=GitTests(url="unused", tag="9.9", paths=("test",)))
    with pytest.raises(SetupError, match=r"git archive 9\.9"):
        add_git_tests(missing, src, tmp_path / "install.log", repo / ".git")


def test_unpack_refuses_what_is_not_an_archive(tmp_path: Path) -> None:
    bad = tmp_path / "x.tar.gz"
    bad.write_text("not a tarball")
    with pytest.raises(SetupError, match="unpacking"):
        unpack(bad, tmp_path / "out")
    good = tmp_path / "y.tar"
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "f.txt").write_text("x")
    with tarfile.open(good, "w") as tar:
        tar.add(tmp_path / "pkg", arcname="pkg-1.0")
    unpack(good, tmp_path / "out")
    assert (tmp_path / "out" / "pkg-1.0" / "f.txt").read_text() == "x"


def test_fingerprint_follows_pins_and_test_origin() -> None:
    base = fingerprint(SUITE)
    assert fingerprint(dataclasses.replace(SUITE, version="1.1")) != base
    assert fingerprint(dataclasses.replace(SUITE, requirements=("numpy==2.0",))) != base
    tagged = dataclasses.replace(SUITE, tests_from_git=GitTests("u", "1.0", ("test",)))
    assert fingerprint(tagged) != base
    assert fingerprint(dataclasses.replace(SUITE, subset_note="why")) == base  # not an install input


def test_pytest_config_is_pinned_to_the_sdist(tmp_path: Path) -> None:
    src = tmp_path / "demo-1.0"
    src.mkdir()
    (src / "pyproject.toml").write_text("[project]\nname='demo'\n")  # no pytest section: not a config
    args = pytest_config_args(src)
    assert args == ["-c", str(tmp_path / "empty-pytest.ini"), f"--rootdir={src}"]
    (src / "setup.cfg").write_text("[tool:pytest]\naddopts = -x\n")
    assert pytest_config_args(src) == ["-c", str(src / "setup.cfg"), f"--rootdir={src}"]


def test_the_ways_command_lines(tmp_path: Path) -> None:
    py, src, rep = Path("/venv/bin/python"), tmp_path / "demo-1.0", tmp_path / "rep.json"
    src.mkdir()
    native = command(SUITE, "native", py, src, rep)
    plugin = command(SUITE, "plugin", py, src, rep)
    xdist = command(SUITE, "xdist", py, src, rep)
    assert native[:3] == [str(py), "-m", "pytest"] and "real_suites_collector" in native
    assert "no:torchdevice" in native and "--native-only" in native and "--device=cuda" not in native
    assert "--target-device=cpu" in plugin and f"--torchdevice-report={rep}" in plugin and "-n" not in plugin
    assert xdist[-5:-3] == ["-n", "2"]
    for args in (native, plugin, xdist):
        assert args[-3:] == ["tests", "-k", "not slow"]
        assert args[args.index("-o") + 1] == "addopts="


def test_the_ways_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "--target-device=mps")
    monkeypatch.setenv("PYTEST_TARGET_DEVICE", "mps")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = environment(SUITE, tmp_path / "src" / "demo-1.0", tmp_path / "r.json", threads=1)
    assert "PYTEST_ADDOPTS" not in env and "PYTEST_TARGET_DEVICE" not in env
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["FULL_TEST"] == "1"
    assert env[RESULTS_ENV] == str(tmp_path / "r.json")
    assert env["PYTHONPATH"].split(":") == [str(tmp_path / "src"), "/elsewhere"]
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert "OMP_NUM_THREADS" not in environment(SUITE, tmp_path, tmp_path / "r.json", threads=0)


def test_read_results_says_what_is_missing(tmp_path: Path) -> None:
    log = tmp_path / "plugin.log"
    log.write_text("Traceback...\nINTERNALERROR> boom\n")
    r = RunResult(way="plugin", command=[], exitstatus=3, log=str(log))
    read_results(r, tmp_path / "absent.json", tmp_path / "absent-report.json")
    assert r.problem is not None
    assert "no per-test results" in r.problem and "INTERNALERROR> boom" in r.problem
    assert "--torchdevice-report unusable" in r.problem

    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"collected": 1, "tests": {"t": {"outcome": "passed", "duration": 0.1, "cause": None}}}))
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"tests": {"t": {"cuda_path": True}}}))
    r = RunResult(way="plugin", command=[], exitstatus=0, log=str(log))
    read_results(r, ok, report)
    assert r.problem is None and r.collected == 1 and r.cuda_path_ids() == {"t"}


def test_command_line_options() -> None:
    ap = build_parser()
    args = ap.parse_args(["--ways", "plugin,native", "--suite", "gpytorch", "--git-mirror", "torch_geometric=/g"])
    assert args.ways == ("native", "plugin")  # canonical order
    assert args.git_mirror == [("torch_geometric", Path("/g").resolve())]
    assert args.test_args is None
    assert ap.parse_args(["--test-args", "test/utils -k 'not slow'"]).test_args == ["test/utils", "-k", "not slow"]
    for bad in (["--ways", "plugin"], ["--ways", "native,gpu"], ["--git-mirror", "nosuch=/g"]):
        with pytest.raises(SystemExit):
            ap.parse_args(bad)
