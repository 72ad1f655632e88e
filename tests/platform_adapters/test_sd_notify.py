"""sd_notify against a real bound Unix datagram socket (path and abstract)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.platform_adapters.notify_socket import NotifySocket
from unattended.platform_adapters.sd_notify import SdNotifier, strip_notify_env


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_messages_arrive(tmp_path: Path, abstract: bool) -> None:
    with NotifySocket(tmp_path, abstract=abstract) as sock:
        if abstract:
            assert sock.address.startswith("@")
        sd = SdNotifier.from_env(sock.env())
        assert sd.enabled
        assert sd.ready("running: iteration 1\nof 3")
        assert sd.status("waiting:  iteration 2")
        assert sd.watchdog()
        assert sd.stopping("stopped")
        sd.close()
        got = sock.drain(timeout=2)
        while len(got) < 4:
            more = sock.drain(timeout=2)
            assert more, got
            got += more
    assert sock.raw[0] == b"READY=1\nSTATUS=running: iteration 1 of 3"
    assert got[1:] == [
        {"STATUS": "waiting: iteration 2"},
        {"WATCHDOG": "1"},
        {"STOPPING": "1", "STATUS": "stopped"},
    ]


def test_watchdog_interval_honours_pid(tmp_path: Path) -> None:
    me = os.getpid()
    with NotifySocket(tmp_path) as sock:
        base = sock.env(watchdog_usec=400_000)
        assert SdNotifier.from_env(base, pid=me).watchdog_interval_s == pytest.approx(0.2)
        ours = {**base, "WATCHDOG_PID": str(me)}
        assert SdNotifier.from_env(ours, pid=me).watchdog_interval_s == pytest.approx(0.2)
        assert SdNotifier.from_env(ours).watchdog_interval_s == pytest.approx(0.2)
        theirs = {**base, "WATCHDOG_PID": str(me + 1)}
        assert SdNotifier.from_env(theirs, pid=me).watchdog_interval_s is None
        for bad in ("0", "-5", "x", ""):
            env = {**base, "WATCHDOG_USEC": bad}
            assert SdNotifier.from_env(env, pid=me).watchdog_interval_s is None
        junk_pid = {**base, "WATCHDOG_PID": "abc"}
        assert SdNotifier.from_env(junk_pid, pid=me).watchdog_interval_s is None
        # No socket, no watchdog: there is no one to feed.
        assert SdNotifier.from_env({"WATCHDOG_USEC": "400000"}).watchdog_interval_s is None


def test_watchdog_if_due_paces_itself(tmp_path: Path) -> None:
    with NotifySocket(tmp_path) as sock:
        sd = SdNotifier.from_env(sock.env(watchdog_usec=1_000_000), pid=os.getpid())
        sent = [sd.watchdog_if_due(t) for t in (100.0, 100.2, 100.49, 100.5, 100.7, 101.0)]
        assert sent == [True, False, False, True, False, True]
        got = sock.wait_for("WATCHDOG=1", count=3, timeout=5)
        assert len(got) == 3
        sock.drain(timeout=0.2)
        assert len(sock.messages) == 3
        plain = SdNotifier.from_env(sock.env())
        assert not plain.watchdog_if_due(1.0)  # no WATCHDOG_USEC: never


def test_missing_socket_is_a_noop(tmp_path: Path) -> None:
    said: list[str] = []
    sd = SdNotifier.from_env({}, log=said.append)
    assert not sd.enabled
    assert not sd.ready() and not sd.status("x") and not sd.watchdog() and not sd.stopping()
    assert said == []
    gone = SdNotifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")}, log=said.append)
    assert gone.enabled
    assert not gone.ready()
    assert not gone.status("x")
    assert len(said) == 1 and "cannot send to NOTIFY_SOCKET" in said[0]
    odd = SdNotifier.from_env({"NOTIFY_SOCKET": "vsock:2:1"}, log=said.append)
    assert not odd.enabled and not odd.ready()
    assert "unsupported NOTIFY_SOCKET" in said[-1]


def test_workers_env_loses_the_service_variables() -> None:
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1", "WATCHDOG_PID": "2", "PATH": "/bin"}
    assert strip_notify_env(env) == {"PATH": "/bin"}
    assert env["NOTIFY_SOCKET"] == "@x"  # a copy
