"""launchd: the agent goes to `gui/<uid>` when a GUI session exists, else `user/<uid>` (an
SSH-only Mac), chosen at install time; uninstall looks in both (issue 14 item 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.platform_adapters.fake_tools import recorded, recording_tool
from unattended.platform_adapters import service


def _host(tmp_path: Path, gui: bool) -> tuple[service.Host, Path, list[str]]:
    bin_dir, records = tmp_path / "bin", tmp_path / "records"
    bin_dir.mkdir()
    records.mkdir()
    # `launchctl print gui/501` fails without a GUI session (exit 113, as on a headless Mac).
    then = "exit 0" if gui else 'case "$1 $2" in "print gui/"*) exit 113;; esac; exit 0'
    recording_tool(bin_dir, "launchctl", records, then=then)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    said: list[str] = []
    return service.Host(env, "darwin", 501, said.append, said.append), records, said


@pytest.mark.parametrize(("gui", "domain"), [(True, "gui/501"), (False, "user/501")])
def test_domain_chosen_at_install(tmp_path: Path, gui: bool, domain: str) -> None:
    host, records, said = _host(tmp_path, gui)
    project = tmp_path / "repo"
    (project / ".git").mkdir(parents=True)
    assert service.launchd_domain(host) == domain
    code = service.install_launchd(host, str(project), print_only=False, start=True, enable=False)
    assert code == 0, said
    calls = recorded(records, "launchctl")
    assert ["print", "gui/501"] in calls
    bootstrap = [c for c in calls if c[0] == "bootstrap"]
    assert bootstrap and bootstrap[0][1] == domain
    assert service.uninstall_launchd(host, str(project)) == 0
    bootouts = [c[1] for c in recorded(records, "launchctl") if c[0] == "bootout"]
    assert bootouts[-1].startswith("gui/501/")  # uninstall tries gui first, then user
