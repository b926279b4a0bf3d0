"""The maintainers' module map (docs/modules.md) names every module of the package, and only modules that exist;
the package's front door offers the core names."""

import re
import subprocess
import sys
from pathlib import Path

import metalearn_lite

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "metalearn_lite"
MAP = ROOT / "docs" / "modules.md"


def package_modules() -> set:
    """Every module file of the package, relative to it (package faces ``__init__.py`` left out)."""
    return {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"}


def mapped_modules() -> set:
    return set(re.findall(r"^\| `([\w/]+\.py)` \|", MAP.read_text(encoding="utf-8"), flags=re.MULTILINE))


def test_every_module_is_on_the_map():
    missing = sorted(package_modules() - mapped_modules())
    assert not missing, f"add these modules to docs/modules.md (concept and notebooks): {missing}"


def test_the_map_names_only_modules_that_exist():
    stale = sorted(mapped_modules() - package_modules())
    assert not stale, f"docs/modules.md names modules that no longer exist: {stale}"


def test_the_front_door_offers_the_core_names():
    for name, module in metalearn_lite.FRONT_DOOR.items():
        value = getattr(metalearn_lite, name)
        assert value.__module__.startswith(f"metalearn_lite.{module}"), (name, value.__module__)
    assert set(metalearn_lite.FRONT_DOOR) <= set(dir(metalearn_lite))


def test_importing_the_package_loads_nothing_heavy():
    code = "import sys, metalearn_lite; print(sorted(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
