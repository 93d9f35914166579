"""What a non-editable install (a wheel, the Docker image's `pip install .`) carries."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_every_module_and_data_file(tmp_path: Path) -> None:
    # From a copy: a build/ left in the checkout by an earlier build would fill the gaps.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT, source,
        ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "deploy", "bench", "tests"),
    )  # fmt: skip
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("hubwatch-*.whl")
    carried = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        str(path.relative_to(ROOT))
        for top in ("hubwatch", "producers", "processors")
        for path in (ROOT / top).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix in {".py", ".sql", ".html", ".css", ".js", ".typed"}
    }
    assert wanted, "nothing to look for"
    assert not wanted - carried, sorted(wanted - carried)
