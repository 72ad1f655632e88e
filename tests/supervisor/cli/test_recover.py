"""`unattended recover` as a command: list, restore, and one-line errors with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.git_helpers import IDENTITY, git, hermetic_git  # noqa: F401 - autouse
from unattended.supervisor.cli.recover import recover
from unattended.supervisor.git.snapshots import take_snapshot

REPO_ROOT = Path(__file__).resolve().parents[3]
APP_SNIPPET = """
import sys, typer
from unattended.supervisor.cli.recover import recover
app = typer.Typer()
app.command("recover")(recover)
@app.command()
def other() -> None:
    pass
app(sys.argv[1:], prog_name="unattended")
"""


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("recover")(recover)

    @app.command()
    def other() -> None:  # a second command keeps "recover" a subcommand
        pass

    return app


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "work")
    (path / ".gitignore").write_text(".env\n")
    (path / "app.py").write_text("v1\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", APP_SNIPPET, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_worker_wipes_work_and_recover_brings_it_back(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / "app.py").write_text("v2, not committed\n")
    (repo / "notes.md").write_text("untracked notes\n")
    (repo / ".env").write_text("TOKEN=secret\n")
    take_snapshot(repo, repo / ".git", "night", 3, "before", (".env",))
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-q", "-fdx")

    listed = run_cli("recover", "--project", str(repo))
    assert listed.returncode == 0, listed.stderr
    assert "night/0003-before" in listed.stdout

    done = run_cli("recover", "--restore", "night/0003-before", "--to-branch", "rescue",
                   "--with-ignored", cwd=repo)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "git switch rescue" in done.stdout
    assert "wrote back 1 ignored file(s): .env" in done.stdout
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "work"  # not checked out
    git(repo, "switch", "-q", "rescue")
    assert (repo / "app.py").read_text() == "v2, not committed\n"
    assert (repo / "notes.md").read_text() == "untracked notes\n"
    assert (repo / ".env").read_text() == "TOKEN=secret\n"


def test_list_is_the_default(app: typer.Typer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    runner = CliRunner()
    empty = runner.invoke(app, ["recover", "--project", str(repo)])
    assert empty.exit_code == 0
    assert "no snapshots" in empty.stdout
    for it in (1, 2):
        take_snapshot(repo, repo / ".git", "r1", it, "before", ())
    for args in (
        ["recover", "--project", str(repo)],
        ["recover", "--list", "--project", str(repo)],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0
        lines = res.stdout.splitlines()
        assert lines[0].split() == ["REF", "DATE", "COMMIT"]
        assert lines[1].startswith("r1/0002-before")
        assert lines[2].startswith("r1/0001-before")


def test_restore_holds_back_ignored_without_flag(app: typer.Typer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / ".env").write_text("S=1\n")
    take_snapshot(repo, repo / ".git", "r1", 1, "after", (".env",))
    (repo / ".env").unlink()
    res = CliRunner().invoke(
        app, ["recover", "--project", str(repo), "--restore", "r1/0001-after", "--to-branch", "b"]
    )
    assert res.exit_code == 0, res.stderr
    assert "held back 1 ignored file(s)" in res.stdout
    assert not (repo / ".env").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--restore", "r1/0001-after"], "--restore needs --to-branch NAME"),
        (["--to-branch", "x"], "need --restore REF"),
        (["--with-ignored"], "need --restore REF"),
        (["--list", "--restore", "r1/0001-after", "--to-branch", "x"], "cannot be combined"),
        (["--restore", "r1/0009-after", "--to-branch", "x"], "no snapshot"),
        (["--restore", "r1/0001-after", "--to-branch", "work"], "already exists"),
        (["--restore", "r1/0001-after", "--to-branch", "a..b"], "not a valid branch name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    app: typer.Typer, tmp_path: Path, args: list[str], message: str
) -> None:
    repo = make_repo(tmp_path / "r")
    take_snapshot(repo, repo / ".git", "r1", 1, "after", ())
    res = CliRunner().invoke(app, ["recover", "--project", str(repo), *args])
    assert res.exit_code == 2
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert res.stderr.startswith("error: ")
    assert message in res.stderr
    assert res.stderr.count("\n") == 1


def test_not_a_repository_without_traceback(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for argv in (["recover"], ["recover", "--restore", "x/0001-after", "--to-branch", "b"]):
        res = run_cli(*argv, cwd=plain)
        assert res.returncode == 2
        assert res.stderr.startswith("error: ") and "not inside a git work tree" in res.stderr
        assert "Traceback" not in res.stderr
        assert res.stderr.count("\n") == 1
    missing = run_cli("recover", "--project", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a directory" in missing.stderr


def test_list_json(app: typer.Typer, tmp_path: Path) -> None:
    import json

    repo = make_repo(tmp_path / "r")
    runner = CliRunner()
    assert json.loads(runner.invoke(app, ["recover", "--list", "--json", "--project", str(repo)])
                      .stdout)["snapshots"] == []  # fmt: skip
    take_snapshot(repo, repo / ".git", "r1", 1, "before", ())
    res = runner.invoke(app, ["recover", "--list", "--json", "--project", str(repo)])
    doc = json.loads(res.stdout)  # one document, nothing else on stdout
    assert doc["project"] == str(repo.resolve())
    (snap,) = doc["snapshots"]
    assert snap["ref"] == "r1/0001-before" and len(snap["commit"]) == 40
    assert snap["date"].endswith("Z")
