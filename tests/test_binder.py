"""The Binder (repo2docker) configuration: real packages only, a CPU torch, the package installed, data baked in."""

import os
import re
import stat
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# Packages Binder may name that need not be installed where the tests run, each with the reason. Empty: all are.
ALLOWED_NOT_INSTALLED = {}


def requirement_lines():
    lines = [line.split("#")[0].strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    return [line for line in lines if line]


def requirements():
    return [Requirement(line) for line in requirement_lines() if not line.startswith("-")]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_only_the_cpu_index_is_added_and_nothing_is_installed_from_the_repository():
    options = [line for line in requirement_lines() if line.startswith("-")]
    assert options == [f"--extra-index-url {CPU_INDEX}"]
    assert not any(line in (".", "-e .") or line.startswith(("-e", "file:")) for line in requirement_lines()), \
        "install the package in postBuild: a local path here reinstalls torch on every code change"


@pytest.mark.parametrize("requirement", requirements(), ids=str)
def test_every_package_exists(requirement):
    """Offline stand-in for 'pip can resolve it': the name is a distribution installed here (or allow-listed)."""
    if requirement.name in ALLOWED_NOT_INSTALLED:
        return
    try:
        distribution(requirement.name)
    except PackageNotFoundError:
        pytest.fail(f"binder/requirements.txt names {requirement.name!r}, which is not an installed distribution "
                    f"(a typo?); if it is right, add it to ALLOWED_NOT_INSTALLED with the reason")


def test_torch_is_a_pinned_cpu_build_that_satisfies_the_package():
    torch = [r for r in requirements() if r.name == "torch"]
    assert len(torch) == 1
    pin = re.fullmatch(r"==(\d+\.\d+\.\d+)\+cpu", str(torch[0].specifier))
    assert pin, f"torch must be pinned as ==X.Y.Z+cpu (got {torch[0]}); unpinned, PyPI's CUDA build wins"
    declared = next(Requirement(d) for d in pyproject()["project"]["dependencies"] if d.startswith("torch"))
    assert Version(pin.group(1)) in declared.specifier


def test_every_package_dependency_is_in_the_binder_requirements():
    """postBuild installs the package with --no-deps, so Binder must list each dependency itself."""
    named = {r.name.lower() for r in requirements()}
    for dependency in pyproject()["project"]["dependencies"]:
        assert Requirement(dependency).name.lower() in named, dependency


def test_runtime_is_a_python_the_package_supports():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert match, runtime
    assert Version(match.group(1)) in SpecifierSet(pyproject()["project"]["requires-python"])


def test_post_build_is_strict_installs_the_package_and_fetches_the_data():
    path = BINDER / "postBuild"
    assert path.stat().st_mode & stat.S_IXUSR, "postBuild must be executable"
    listed = subprocess.run(["git", "ls-files", "-s", str(path)], cwd=ROOT, capture_output=True, text=True).stdout
    if listed:  # committed: the executable bit must be in git too, or Binder ignores the script
        assert listed.startswith("100755"), listed
    commands = [line.strip() for line in path.read_text().splitlines()
                if line.strip() and not line.strip().startswith("#")]
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    assert commands[0] == "set -euo pipefail"
    assert "python -m pip install --no-cache-dir --no-deps -e ." in commands
    assert "python -m metalearn_lite.data download" in commands
    assert "python -m metalearn_lite.check" in commands
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0


def test_post_build_commands_exist():
    """The modules postBuild runs are importable command lines (they would fail the build otherwise)."""
    for module in ("metalearn_lite.data.__main__", "metalearn_lite.check"):
        done = subprocess.run([sys.executable, "-m", module.replace(".__main__", ""), "--help"],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
        assert done.returncode == 0, done.stderr
