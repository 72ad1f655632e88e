"""What the loop writes down: state.json (atomically, on every change and as a heartbeat),
run.log and events.jsonl lines, and notifications. One object, so every write goes through
the same full-disk guard and every status change reaches the service manager.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from unattended.contracts.status import RunStatus
from unattended.supervisor.records.fsio import UnsafePath, ensure_private_dir
from unattended.supervisor.records.state import write_state
from unattended.supervisor.run.ports import Clock, ServiceNotifier

if TYPE_CHECKING:
    from unattended.platform_adapters.inhibit import Inhibitor
    from unattended.platform_adapters.notify import NotifyEvent
    from unattended.supervisor.run.loop import RunContext

# (event, notify_cmd, warn): desktop and user-command notifications.
Notify = Callable[["NotifyEvent", "str | None", Callable[[str], None]], None]


class DiskFull(Exception):
    pass


def system_notify(event: NotifyEvent, command: str | None, warn: Callable[[str], None]) -> None:
    from unattended.platform_adapters.notify import notify

    notify(event, command, warn)


class Recorder:
    def __init__(
        self,
        ctx: RunContext,
        clock: Clock,
        sd: ServiceNotifier,
        inhibitor: Inhibitor | None,
        notify: Notify = system_notify,
    ) -> None:
        self.ctx = ctx
        self.clock = clock
        self.sd = sd
        self.inhibitor = inhibitor
        self._notify = notify
        self.last_write = 0.0
        # Every process of the run alive now (the loop's worker tree, helpers): on disk at each
        # write, so after a kill -9 the next start ends what is still provably ours.
        self.seen_processes: Callable[[], list[tuple[int, float]]] = lambda: []

    # ----- state.json ------------------------------------------------------------------
    def set(self, status: RunStatus, **fields: Any) -> None:
        """Change the status (and any state fields) and write state.json."""
        changed = self._change(status, fields)
        self.write()
        if changed:
            self._tell_service()

    def note(self, status: RunStatus, **fields: Any) -> None:
        """Change the status (and any state fields) in memory only: the next write puts them on
        disk (the loop's next ``set``, or a tick's)."""
        if self._change(status, fields):
            self._tell_service()

    def _change(self, status: RunStatus, fields: dict[str, Any]) -> bool:
        st = self.ctx.state
        for key, value in fields.items():
            if key == "worker_started_at" and isinstance(value, float):
                value = datetime.fromtimestamp(value, UTC)
            setattr(st, key, value)
        changed = st.status != status
        st.status = status
        return changed

    def _tell_service(self) -> None:
        st = self.ctx.state
        self.sd.status(f"{st.status.value}: iteration {st.iteration} of {st.max_iterations}")

    def write(self) -> None:
        from unattended.contracts.state import SeenProcess

        st = self.ctx.state
        st.descendants = [SeenProcess(pid=p, create_time=c) for p, c in self.seen_processes()]
        if self.inhibitor is not None:  # `.held` notices (and logs once) an inhibitor that died
            st.inhibitor = self.inhibitor.describe() if self.inhibitor.held else None
        st.updated_at = datetime.fromtimestamp(self.clock.time(), UTC)
        self.guard_disk(lambda: write_state(self.ctx.paths, st))
        self.last_write = self.clock.time()
        if self.ctx.settings.metrics_textfile:  # --metrics-textfile: same moment, same facts
            from unattended.supervisor.records.prometheus import export_textfile

            export_textfile(self.ctx, self.warn)

    def tree_changed(self) -> bool:
        """A process of the run alive now that state.json does not list (write it again).
        One that ended is no reason: a listed process is ended after a kill -9 only if it is
        still alive and provably ours (its start time and run marker), and the next write
        drops it (this spares the write at every worker's exit, and at each tool's end)."""
        recorded = {(d.pid, d.create_time) for d in self.ctx.state.descendants}
        return not recorded.issuperset(self.seen_processes())

    def guard_disk(self, action: Callable[[], object]) -> None:
        """Run a write; recreate a deleted ``.unattended/`` once; ENOSPC becomes DiskFull."""
        try:
            action()
        except UnsafePath:
            return  # a symlink planted in our tree: refused, logged by fsio's listener, run on
        except FileNotFoundError:
            ensure_private_dir(self.ctx.paths.iterations)
            action()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DiskFull(exc.strerror or "no space left on device") from None
            raise

    # ----- run.log ---------------------------------------------------------------------
    def log(
        self, message: str, iteration: int | None = None, kind: str = "info", **fields: Any
    ) -> None:
        self.ctx.log.event(message, iteration=iteration, kind=kind, **fields)

    def warn(self, message: str) -> None:
        self.log(f"warning: {message}", kind="warning")

    # ----- notifications ---------------------------------------------------------------
    def notify(self, status: str, reason: str, summary: str = "") -> None:
        try:
            from unattended.platform_adapters.notify import NotifyEvent

            st = self.ctx.state
            event = NotifyEvent(
                status=status,
                reason=reason,
                project=str(self.ctx.project),
                iteration=st.iteration,
                cost_usd=st.cost_usd,
                summary=summary,
            )
            self._notify(event, self.ctx.settings.notify_cmd, self.warn)
        except Exception as exc:  # a notifier never ends the run
            self.warn(f"notification failed: {exc}")

    def release_inhibitor(self) -> None:
        if self.inhibitor is not None:
            self.inhibitor.release()
