"""The distribution: `python -m build` makes an sdist and a wheel that `twine check` accepts,
with SPDX license metadata, the LICENSE file, classifiers and project URLs (issue 14 item 6).
Built from a copy of the tracked files, so the work tree gets no build/ or dist/."""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from unattended import __version__

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the tracked files")
    src = tmp_path_factory.mktemp("src")
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, tracked):
        if (REPO / name).is_file() and not (REPO / name).is_symlink():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(src)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_twine_accepts_both(dist: Path) -> None:
    files = sorted(str(p) for p in dist.iterdir())
    assert [Path(f).name for f in files] == [
        f"unattended-{__version__}-py3-none-any.whl",
        f"unattended-{__version__}.tar.gz",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2


def test_wheel_metadata(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = email.parser.Parser().parsestr(
            zf.read(f"unattended-{__version__}.dist-info/METADATA").decode()
        )
    assert meta["Metadata-Version"] >= "2.4"
    assert meta["License-Expression"] == "MIT" and meta["License-File"] == "LICENSE"
    assert f"unattended-{__version__}.dist-info/licenses/LICENSE" in names
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # PEP 639: the expression
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Issues"} <= set(urls)
    requires = meta.get_all("Requires-Dist")
    assert not any(r.startswith("anthropic") and "extra" not in r for r in requires)
    assert "unattended/platform_adapters/unit_templates/unattended@.service" in names
    assert not any(n.startswith("tests/") for n in names)


def test_sdist_carries_the_license(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = tf.getnames()
    assert f"unattended-{__version__}/LICENSE" in names
    assert "MIT License" in (REPO / "LICENSE").read_text()
    assert "the unattended authors" in (REPO / "LICENSE").read_text()
