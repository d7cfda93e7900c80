"""The installed wheel (not only the checkout) carries schemas and vectors and works anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("BEATSPEC_SKIP_WHEEL") == "1",
                       reason="BEATSPEC_SKIP_WHEEL=1 (the wheel was already tested in this run)"),
]


def _run(*args: str | Path, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(a) for a in args], cwd=cwd, input=stdin, capture_output=True,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel and install it into a fresh virtual environment; return its bin dir."""
    work = tmp_path_factory.mktemp("wheel")
    build = _run(sys.executable, "-m", "build", "--wheel", "--outdir", work / "dist", ROOT,
                 cwd=work)
    assert build.returncode == 0, build.stderr.decode()[-2000:]
    (wheel,) = (work / "dist").glob("beatspec-*.whl")
    venv.create(work / "venv", with_pip=True)
    bindir = work / "venv" / "bin"
    install = _run(bindir / "python", "-m", "pip", "install", "--quiet", wheel, cwd=work)
    assert install.returncode == 0, install.stderr.decode()[-2000:]
    return bindir


def test_wheel_validates_from_any_directory(installed: Path, tmp_path: Path) -> None:
    doc = {"name": "report", "task": "t", "args": [], "kwargs": {}, "options": {},
           "schedule": {"__type__": "interval", "every": 60.0, "relative": False},
           "enabled": True}
    ok = _run(installed / "beatspec", "validate", "--strict", "-", cwd=tmp_path,
              stdin=json.dumps(doc).encode())
    assert ok.returncode == 0, ok.stdout.decode() + ok.stderr.decode()
    doc["schedule"] = {"__type__": "interval", "every": 60.0}
    bad = _run(installed / "beatspec", "validate", "-", cwd=tmp_path,
               stdin=json.dumps(doc).encode())
    assert bad.returncode == 1
    assert b"INT-1" in bad.stdout


def test_wheel_carries_schemas_vectors_and_spec(installed: Path, tmp_path: Path) -> None:
    probe = _run(
        installed / "python", "-c",
        "from beatspec._data import schemas_dir, conformance_dir, spec_dir;"
        "from beatspec.schemas import schema_names, validator;"
        "print(schemas_dir()); print(len(schema_names()));"
        "docs = conformance_dir() / 'vectors' / 'v1' / 'documents';"
        "print(sum(1 for _ in docs.glob('*.json')));"
        "print((spec_dir() / 'beatspec-1.md').is_file());"
        "print(validator('definition.json').is_valid({'name': 'x'}))",
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr.decode()
    where, count, vectors, spec, verdict = probe.stdout.decode().split()
    assert "site-packages" in where
    assert int(count) >= 10
    assert int(vectors) >= 1
    assert spec == "True"
    assert verdict == "False"
    lint = _run(installed / "beatspec", "vectors", "check", cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()
