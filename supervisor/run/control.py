"""Changing the caps of a live run through ``.unattended/control.json`` (``unattended extend``).

The CLI never talks to the daemon: it writes a request file atomically, and the daemon calls
:func:`apply_pending` on every tick. The daemon first *claims* the file by renaming it to
``control.json.applying``, so a request written while another is being applied is never lost
(it waits for the next tick). It then applies the caps to the in-memory state and settings,
rewrites state.json, and only then deletes the claimed file: once neither file exists, state.json
shows the new caps, which is what the CLI waits for.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from unattended.contracts.paths import RunPaths

CLAIMED_NAME = "control.json.applying"
LOCK_NAME = "control.lock"
APPLIED_KEPT = 20  # request ids state.json remembers as applied


def claimed_path(paths: RunPaths) -> Path:
    return paths.root / CLAIMED_NAME


def pending(paths: RunPaths) -> bool:
    """True while a request waits for the daemon or is being applied."""
    return paths.control.exists() or claimed_path(paths).exists()


def write_request(
    paths: RunPaths,
    hours: float | None = None,
    max_iterations: int | None = None,
    max_cost_usd: float | None = None,
    now: float | None = None,
) -> Any:  # -> contracts.control.ControlRequest
    """Write (atomically) a request, merged over one still waiting: both users' caps count.
    Concurrent calls are serialised by an exclusive lock on ``control.lock``, so none is lost.

    Raises ``ValueError`` (pydantic's ValidationError) when the values are not valid.
    """
    from unattended.contracts.control import ControlFileError, ControlRequest, parse_control
    from unattended.supervisor.records import fsio

    new_id = uuid.uuid4().hex[:12]
    with _request_lock(paths):
        fields: dict[str, Any] = {}
        ids: list[str] = []
        try:
            waiting = parse_control(paths.control.read_bytes(), paths.control)
            fields.update(waiting.changes())
            ids = waiting.request_ids or [waiting.request_id]
        except (OSError, ControlFileError):
            pass  # nothing waiting (or junk the daemon will discard): ours replaces it
        new = {"hours": hours, "max_iterations": max_iterations, "max_cost_usd": max_cost_usd}
        fields.update({k: v for k, v in new.items() if v is not None})
        moment = time.time() if now is None else now
        request = ControlRequest(
            request_id=new_id,
            requested_at=datetime.fromtimestamp(moment, UTC),
            request_ids=[*ids, new_id],
            **fields,
        )
        fsio.atomic_write(paths.control, request.to_json())
    return request


@contextlib.contextmanager
def _request_lock(paths: RunPaths) -> Iterator[None]:
    import fcntl

    from unattended.supervisor.records.fsio import open_private_file

    fd = open_private_file(paths.root / LOCK_NAME, os.O_RDWR | os.O_CREAT)  # never via a link
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def was_applied(paths: RunPaths, request_id: str) -> bool:
    """True once state.json says the daemon applied the request ``request_id``."""
    from unattended.contracts.state import StateFileError
    from unattended.supervisor.records.state import read_state

    try:
        state = read_state(paths)
    except StateFileError:
        return False
    return state is not None and request_id in state.applied_requests


def wait_applied(paths: RunPaths, timeout: float = 3.0, interval: float = 0.05) -> bool:
    """Wait until the daemon has applied every pending request (True) or ``timeout`` passed."""
    end = time.monotonic() + timeout
    while pending(paths):
        if time.monotonic() >= end:
            return False
        time.sleep(interval)
    return True


def new_deadline(started_at: datetime, hours: float) -> datetime:
    """``--hours H`` means the run's total hours: the deadline is started_at + H (whole s)."""
    return started_at + timedelta(seconds=round(hours * 3600))


def apply_pending(paths: RunPaths, state: Any, settings: Any, now: float) -> list[str]:
    """Apply a waiting control request to ``state`` (RunState) and ``settings`` (Settings).

    Called by the daemon every tick; costs one failed rename when nothing waits. Returns lines
    for run.log (empty when there was nothing to do). An invalid request is deleted and reported
    in one warning line; the caps stay as they were. state.json is rewritten before the request
    file disappears.
    """
    from unattended.contracts.control import ControlFileError, parse_control

    claimed = claimed_path(paths)
    if not claimed.exists():
        try:
            os.replace(paths.control, claimed)
        except FileNotFoundError:
            return []
        except OSError as exc:
            return [f"warning: extend: cannot claim {paths.control}: {exc.strerror}"]
    try:
        request = parse_control(claimed.read_bytes().decode("utf-8"), paths.control)
        problem = _check_settings(settings, request.changes())
        if problem is None:
            problem = _check_apply(request, state, settings, now)
    except OSError as exc:
        _discard(claimed)
        return [f"warning: extend: ignored {paths.control}: cannot read: {exc.strerror}"]
    except ControlFileError as exc:
        _discard(claimed)
        return [f"warning: extend: ignored an invalid control request: {exc}"]
    except Exception as exc:  # noqa: BLE001 - junk in a request file never ends a run
        _discard(claimed)
        return [f"warning: extend: ignored an unreadable control request: {_why(exc)}"]
    if problem:
        _discard(claimed)
        return [f"warning: extend: ignored request {request.request_id}: {problem}"]
    lines = _apply(request, state, settings, now)
    applied = [*state.applied_requests, *(request.request_ids or [request.request_id])]
    state.applied_requests = applied[-APPLIED_KEPT:]
    state.updated_at = datetime.fromtimestamp(now, UTC)
    try:
        from unattended.supervisor.records.state import write_state

        write_state(paths, state)
    except OSError as exc:  # the loop's next heartbeat writes it; never end the run over this
        lines.append(f"warning: extend: could not rewrite state.json now: {exc.strerror}")
    _discard(claimed)
    return lines


def _why(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (byte {exc.start})"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _check_apply(request: Any, state: Any, settings: Any, now: float) -> str | None:
    """Apply the request to copies first, so one that cannot be applied (a deadline beyond
    the calendar) is refused as a whole, never half applied."""
    try:
        _apply(request, state.model_copy(deep=True), settings.model_copy(deep=True), now)
    except (ValueError, OverflowError, ArithmeticError) as exc:
        return f"cannot apply: {_why(exc)}"
    return None


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _check_settings(settings: Any, changes: dict[str, Any]) -> str | None:
    """Validate the changed settings as a whole before touching anything (all or nothing)."""
    from pydantic import ValidationError

    try:
        type(settings).model_validate({**settings.model_dump(), **changes})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "settings"
        return f"{key}: {err['msg'].removeprefix('Value error, ')}"
    return None


def _money(value: float | None) -> str:
    return "none" if value is None else f"${value:g}"


def _apply(request: Any, state: Any, settings: Any, now: float) -> list[str]:
    from unattended.contracts.timefmt import utc_iso

    lines = []
    if request.hours is not None:
        old = settings.hours
        deadline = new_deadline(state.started_at, request.hours)
        settings.hours = request.hours
        state.deadline = deadline
        line = f"extend: hours {old:g} → {request.hours:g} (deadline {utc_iso(deadline)})"
        if deadline.timestamp() <= now:
            line += ": already past, the run ends as capped"
        lines.append(line)
    if request.max_iterations is not None:
        old_n = state.max_iterations
        settings.max_iterations = request.max_iterations
        state.max_iterations = request.max_iterations
        line = f"extend: max_iterations {old_n} → {request.max_iterations}"
        if request.max_iterations <= state.iteration:
            line += f" (iteration {state.iteration} reached: the run ends after the current one)"
        lines.append(line)
    if request.max_cost_usd is not None:
        old_cost = settings.max_cost_usd
        settings.max_cost_usd = request.max_cost_usd
        line = f"extend: max_cost_usd {_money(old_cost)} → {_money(request.max_cost_usd)}"
        if state.cost_usd >= request.max_cost_usd:
            line += f" (${state.cost_usd:.2f} already spent: the run ends as capped)"
        lines.append(line)
    # state.settings is the saved copy of the run's settings: keep it in step.
    state.settings = {**state.settings, **request.changes()}
    return lines
