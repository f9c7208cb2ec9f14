"""The wheel carries the product and nothing else, and runs without the dev extras."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = set(PROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
DEV_ONLY = ("pytest", "httpx", "hypothesis", "schemathesis", "duckdb")
DEV_ONLY += ("exchange_calendars", "importlinter", "pytest_benchmark")

IMPORT_EVERYTHING = """
import importlib, importlib.util, json, pkgutil, sys
packages = sys.argv[1].split(",")
dev_only = sys.argv[2].split(",")
imported = []
for name in packages:
    package = importlib.import_module(name)
    imported.append(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if ".migrations" in info.name:
            continue  # Alembic's revisions run inside Alembic, not on import
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({
    "imported": imported,
    "dev_only_present": [m for m in dev_only if importlib.util.find_spec(m) is not None],
    "dev_only_loaded": [m for m in dev_only if m in sys.modules],
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("bcpi-*.whl")
    return built


def test_the_wheel_holds_the_product_packages_and_no_test_tooling(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == PACKAGES
    assert {"tests", "benchmarks", "reliability"}.isdisjoint(top)
    harness = [n for n in names if any(w in n for w in ("crash", "fuzz", "conftest", "test_"))]
    assert harness == []
    assert "core/methodology/v2025.2.toml" in names
    assert any(n.startswith("store/migrations/versions/0008") for n in names)


def test_the_wheel_installs_and_imports_without_the_dev_extras(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr[-2000:]

    answer = subprocess.run(
        [str(python), "-c", IMPORT_EVERYTHING, ",".join(sorted(PACKAGES)), ",".join(DEV_ONLY)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the checkout: only the installed wheel is importable
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    found = json.loads(answer.stdout)
    assert set(PACKAGES) <= set(found["imported"])
    assert "api.app" in found["imported"] and "cli.main" in found["imported"]
    assert found["dev_only_present"] == []
    assert found["dev_only_loaded"] == []

    calendar = subprocess.run(
        [str(venv / "bin" / "bcpi"), "calendar", "2026"], capture_output=True, text=True
    )
    assert calendar.returncode == 0, calendar.stderr[-2000:]
    year = json.loads(calendar.stdout)
    assert year["year"] == 2026 and year["provisional"] is False
    assert {"date": "2026-01-05", "fixing_at": "2026-01-05T15:00:00+08:00"} in year["days"]
