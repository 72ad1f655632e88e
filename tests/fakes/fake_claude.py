#!/usr/bin/env python3
"""A scriptable stand-in for `claude -p [PROMPT] --output-format stream-json --verbose`.

The prompt is read the way the real CLI reads it in print mode (both 2.1.197 and 2.1.332): a
stdin that is not a terminal is read to its end and joined to the prompt argument, if any, as
`arg\nstdin`; the recorded `prompt` is that joined text.

Why: the supervisor must be tested against every way the real Claude Code CLI (2.1.197, see
/work/shared/claude-cli-facts.md) ends a run, quickly and without an account. Standalone and
stdlib only on purpose: it must never share code (or bugs) with the product it tests.

Scenario
--------
Env `FAKE_CLAUDE_SCENARIO` names a JSON file holding a list of invocations; invocation k (0-based,
counted in `<scenario>.counter`) plays entry k, and the last entry repeats. An invocation is a
list of steps; a step is `{"do": ACTION, ...options}` or just the string `"ACTION"`. Steps run in
order; at most one *final* step, and it must come last. With no final step the run ends like
`text`. Example: `[[{"do": "commit"}, "done"], [{"do": "api_error", "status": 529}]]`.

Work steps (each is one API turn, printed as assistant tool_use + user tool_result lines):
  commit   {file="fake-work.txt", content=None (append a line), message="fake: ..."}
           a real `git add` + `git commit` in cwd through Bash, with gitOperation in the result
  write    {file="scratch.txt", content}      create a file with the Write tool (untracked)
  run      {cmd, description}                 run a shell command in cwd through Bash
  permission_denied {tool="Bash", command}    a denied tool call, listed in permission_denials
  busy     {seconds}                          a Bash tool child burning {seconds} of CPU, silent
  grandchild {pid_file, seconds=3600, detach=false, hold_stdout=false}
           a `sleep` in its own session (like the CLI's Bash tool); its pid is written to
           pid_file. detach=true: double fork, orphaned at once. hold_stdout: it keeps our stdout.
  spew     {mb}   about mb MiB of assistant text / tool_use / tool_result lines, streamed (1 GiB ok)
  subagent {model="claude-haiku-4-5-20251001", input_tokens=2000, output_tokens=300}
           a Task tool call whose subagent writes `<session>/subagents/agent-*.jsonl` (usage on
           its own model); that model appears in the result's modelUsage, not in its usage
Other non-final steps:
  say      {text}   a text block prepended to the next assistant message
  usage    {input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
            cost_usd, context_tokens, context_window, cache_1h, partial_lines}  figures for the
            result (totals) and for each later assistant message (context_tokens = input + cache
            creation + cache read); cache_1h of the cache writes are 1-hour ones (priced 2x input,
            as the CLI does when the API sends the split); partial_lines: a message's earlier
            transcript lines carry partial output_tokens (as CLI 1.0.98 to 2.1.39 wrote them)
  background {text="Stale notification — already processed", input_tokens=400, output_tokens=40}
            a background task that finishes after the answer: once the final result is printed,
            a second init event, one more turn and a second result follow (its usage is that turn
            alone; modelUsage and total_cost_usd are cumulative for the process)
  rate_limit {status="allowed_warning", type="five_hour", resets_in=3600 | resets_at, utilization}
            a `rate_limit_event` line that does not end the run
  sleep    {seconds}  print nothing for a while;  ignore_sigterm;  ignore_sigint
Final steps:
  done {text} | blocked {reason} | text {text} | question {text} | blocker_none | markers_in_tool
  api_error {status=429|500|529|..., retries=0, message}     synthetic assistant error + result
  usage_limit {kind=session|weekly|opus|usage|server, resets_in=3600 | resets_at (epoch s)}
  auth_error {kind=invalid_key|not_logged_in};  prompt_too_long
  exit {code=1, stderr}  (no result);  no_result (exit 0, no result);  hang (sleep forever)
  auth_error also takes {retries=0, retry_delay=0.5}: the CLI's api_retry events for a 401
           ("authentication_failed"), retry_delay seconds apart, before the final error
  replay {file}  print a real captured stream-json file verbatim (exit 1 if its last result is
           an error): the daemon reading what a real CLI printed

Versions: `FAKE_CLAUDE_VERSION=2.1.332` plays that CLI's differences (default 2.1.197): on
`--resume` the result's modelUsage and total_cost_usd are cumulative for the session (restored
from the transcript's `cost-state` line) while usage stays per invocation, each result carries
`result_index` and `model_usage_since_last_result`, and `type` is no longer a result's first key.

Behaviour copied from the real CLI: SIGINT prints a `result` with subtype
`error_during_execution` and exits 1 (killing the running tool); SIGTERM exits 143 at once with no
result and leaves tool processes alive; tool commands run in their own session; `--max-turns`
and `--max-budget-usd` give their error results; bypass permissions as root without
`IS_SANDBOX=1` is refused; in modes other than bypassPermissions, Bash is denied unless
`--allowedTools` names it (Write is allowed in acceptEdits). `--settings` PostToolUse command hooks
are run with the real stdin JSON. API-error, auth and limit results report zero usage unless a
`usage` step says otherwise. Guesses (not observed): terminal_reason of error results, the exact
usage-limit time format for today's resets ("5:46pm (UTC)"), tool lists in system/init.

Records, next to the scenario: `<scenario>.calls.jsonl` (one line per invocation: argv, cwd, pid,
ppid, pgid, sid, selected env, env names, stdin kind, open fds, controlling tty),
`<scenario>.hooks.jsonl` (one line per hook run). A transcript is written under
`$HOME/.claude/projects/` like the CLI does, but never into the real home directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

VERSION = "2.1.197"
DEFAULT_MODEL = "claude-opus-4-8[1m]"
# USD per million tokens: input, output, cache read, cache write (gives the facts' 7.54625).
PRICES = (5.0, 25.0, 0.5, 6.25)
DEFAULT_USAGE = {
    "input_tokens": 1200,
    "output_tokens": 350,
    "cache_creation_input_tokens": 4000,
    "cache_read_input_tokens": 18000,
}
TOOLS = [
    "Task", "Bash", "Glob", "Grep", "ExitPlanMode", "Read", "Edit", "Write", "NotebookEdit",
    "WebFetch", "TodoWrite", "WebSearch", "BashOutput", "KillShell", "SlashCommand", "Skill",
    "AskUserQuestion", "EnterPlanMode", "ListMcpResourcesTool", "ReadMcpResourceTool",
    "TaskCreate", "TaskGet", "TaskList", "TaskUpdate", "TaskStop",
]  # fmt: skip
VALUE_FLAGS = {
    "--output-format", "--input-format", "--model", "--permission-mode", "--allowedTools",
    "--allowed-tools", "--disallowedTools", "--disallowed-tools", "--tools", "--settings",
    "--setting-sources", "--append-system-prompt", "--system-prompt", "--session-id",
    "--mcp-config", "--fallback-model", "--max-turns", "--max-budget-usd", "--json-schema",
    "--effort", "--add-dir", "--agents", "--debug-file",
}  # fmt: skip
OPTIONAL_VALUE_FLAGS = {"-r", "--resume"}
WORK = {"commit", "write", "run", "permission_denied", "busy", "grandchild", "spew"}
WORK |= {"subagent"}
OTHER = {"say", "usage", "rate_limit", "sleep", "ignore_sigterm", "ignore_sigint", "background"}
FINAL = {
    "done", "blocked", "text", "question", "blocker_none", "markers_in_tool", "api_error",
    "usage_limit", "auth_error", "prompt_too_long", "exit", "no_result", "hang", "replay",
}  # fmt: skip
HAIKU_PRICES = (1.0, 5.0, 0.1, 1.25)
# 2.1.332's result key order ("type" is no longer first).
KEY_ORDER_332 = (
    "duration_api_ms", "stop_reason", "session_id", "total_cost_usd", "usage", "modelUsage",
    "permission_denials", "terminal_reason", "fast_mode_state", "is_error", "num_turns",
    "subtype", "api_error_status", "result", "ttft_ms", "type", "duration_ms", "uuid",
    "result_index", "model_usage_since_last_result",
)  # fmt: skip
SERVER_TAIL = (
    "This is a server-side issue, usually temporary — try again in a moment. "
    "If it persists, check your inference gateway ({gateway})."
)
INTERRUPT_TEXT = (
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it "
    "was a file edit, the new_string was NOT written to the file). STOP what you are doing and "
    "wait for the user to tell you how to proceed."
)
LIMIT_KINDS = {
    "session": ("five_hour", "session"),
    "weekly": ("seven_day", "weekly"),
    "opus": ("seven_day_opus", "Opus"),
    "usage": ("overage", "usage"),
}
# CPU seconds, not wall seconds: on a loaded machine a wall-clock loop burns less than asked.
BUSY_CODE = (
    "import sys,time\nend=time.process_time()+float(sys.argv[1])\n"
    "while time.process_time()<end:pass"
)


class Interrupted(Exception):
    """Raised by the SIGINT handler so any blocking call unwinds to the clean-stop path."""


class ScenarioError(Exception):
    """A scenario file the fake cannot play; reported in one line, exit 2."""


class Exit(Exception):
    """End the process with this code after unwinding."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


MU_COUNTS = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheCreationInputTokens")


def version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(".")[:3])
    except ValueError:
        return (0,)


def new_id(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:24] if prefix else str(uuid.uuid4())


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# ---------------------------------------------------------------- command line


class Options:
    """The few flags the fake understands; everything else is accepted and ignored."""

    def __init__(self, argv: list[str]) -> None:
        self.print_mode = False
        self.verbose = False
        self.version = False
        self.help = False
        self.dangerous = False
        self.no_persist = False
        self.values: dict[str, str] = {}
        self.prompt: str | None = None
        i = 0
        while i < len(argv):
            arg = argv[i]
            i += 1
            name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
            if name in ("-p", "--print"):
                self.print_mode = True
            elif name == "--verbose":
                self.verbose = True
            elif name in ("-v", "--version"):
                self.version = True
            elif name in ("-h", "--help"):
                self.help = True
            elif name in ("--dangerously-skip-permissions", "--allow-dangerously-skip-permissions"):
                self.dangerous = True
            elif name == "--no-session-persistence":
                self.no_persist = True
            elif name in VALUE_FLAGS or name in OPTIONAL_VALUE_FLAGS:
                if eq:
                    self.values[name] = inline
                elif i < len(argv) and (name in VALUE_FLAGS or not argv[i].startswith("-")):
                    self.values[name] = argv[i]
                    i += 1
                else:
                    self.values[name] = ""
            elif not arg.startswith("-") and self.prompt is None:
                self.prompt = arg

    def get(self, *names: str, default: str | None = None) -> str | None:
        for name in names:
            if name in self.values:
                return self.values[name]
        return default

    def tool_list(self, *names: str) -> list[str]:
        return [t for t in re.split(r"[,\s]+", self.get(*names, default="") or "") if t]

    @property
    def permission_mode(self) -> str:
        if self.dangerous:
            return "bypassPermissions"
        return self.get("--permission-mode", default="default") or "default"


# ---------------------------------------------------------------- records


def describe_stdin() -> str:
    try:
        st = os.fstat(0)
    except OSError:
        return "closed"
    if stat.S_ISFIFO(st.st_mode):
        return "pipe"
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISSOCK(st.st_mode):
        return "socket"
    if stat.S_ISCHR(st.st_mode):
        if os.isatty(0):
            return "tty"
        try:
            return "devnull" if os.stat(os.devnull).st_rdev == st.st_rdev else "char"
        except OSError:
            return "char"
    return "other"


def read_stdin_prompt(arg: str | None) -> str | None:
    """The prompt as the real CLI assembles it in print mode: stdin that is not a terminal is
    read to its end and joined to a prompt argument as ``arg\nstdin`` (stdin alone when there is
    no argument; the argument alone when stdin is empty, /dev/null or closed)."""
    if describe_stdin() not in ("pipe", "file", "socket"):
        return arg
    chunks = []
    while chunk := os.read(0, 1 << 20):
        chunks.append(chunk)
    data = b"".join(chunks).decode("utf-8", "replace")
    if not data:
        return arg
    return f"{arg}\n{data}" if arg else data


def open_fds() -> dict[str, str]:
    """Inherited descriptors beyond 0-2 (e.g. to catch a leaked lock fd)."""
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    found: dict[str, str] = {}
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return found
    for name in names:
        if not name.isdigit() or int(name) <= 2:
            continue
        try:
            found[name] = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue  # the directory handle used by listdir, now closed
    return found


def has_ctty() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY))
    except OSError:
        return False
    return True


def call_record(opts: Options, index: int, entry: int, fds: dict[str, str]) -> dict[str, Any]:
    keep = ("IS_SANDBOX", "HOME", "CLAUDE_CODE_MAX_RETRIES", "ANTHROPIC_BASE_URL")
    env = {k: v for k, v in os.environ.items() if k.startswith("UNATTENDED_") or k in keep}
    return {
        "index": index,
        "entry": entry,
        "time": now_iso(),
        "argv": sys.argv[1:],
        "prompt": opts.prompt,
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
        "env": env,
        "env_names": sorted(os.environ),
        "notify_socket": "NOTIFY_SOCKET" in os.environ,
        "watchdog_env": sorted(k for k in os.environ if k.startswith("WATCHDOG_")),
        "stdin": describe_stdin(),
        "fds": fds,
        "ctty": has_ctty(),
    }


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def next_index(counter: Path) -> int:
    """Claim the next invocation number; flock makes near-simultaneous starts safe enough."""
    fd = os.open(counter, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 64).decode() or "0"
        index = int(raw.strip() or 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(index + 1).encode())
        return index
    finally:
        os.close(fd)


def normalise(step: Any, where: str) -> dict[str, Any]:
    if isinstance(step, str):
        step = {"do": step}
    if not isinstance(step, dict) or not isinstance(step.get("do"), str):
        raise ScenarioError(f"{where}: a step is a string or an object with a 'do' key")
    if step["do"] not in WORK | OTHER | FINAL:
        raise ScenarioError(f"{where}: unknown action {step['do']!r}")
    if step["do"] == "grandchild" and not step.get("pid_file"):
        raise ScenarioError(f"{where}: grandchild needs 'pid_file'")
    if step["do"] == "run" and not step.get("cmd"):
        raise ScenarioError(f"{where}: run needs 'cmd'")
    return step


def load_steps(scenario: Path, index: int) -> tuple[int, list[dict[str, Any]]]:
    try:
        data = json.loads(scenario.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"cannot read scenario {scenario}: {exc}") from None
    if not isinstance(data, list) or not data or not all(isinstance(e, list) for e in data):
        raise ScenarioError(f"{scenario}: expected a non-empty list of invocations (step lists)")
    entry = min(index, len(data) - 1)
    steps = [normalise(s, f"invocation {entry} step {n}") for n, s in enumerate(data[entry])]
    for n, step in enumerate(steps[:-1]):
        if step["do"] in FINAL:
            raise ScenarioError(f"invocation {entry} step {n}: final step {step['do']!r} not last")
    return entry, steps


# ---------------------------------------------------------------- output


class Out:
    """Writes whole lines to fd 1 unbuffered, so an interrupt never leaves bytes queued."""

    def __init__(self, fmt: str) -> None:
        self.stream_json = fmt == "stream-json"
        self.fmt = fmt
        self.mid_line = False

    def raw(self, data: bytes) -> None:
        self.mid_line = True
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]
        self.mid_line = False

    def emit(self, obj: dict[str, Any]) -> None:
        if self.stream_json:
            self.raw(json.dumps(obj, ensure_ascii=False).encode() + b"\n")

    def end_line(self) -> None:
        if self.mid_line:
            os.write(1, b"\n")
            self.mid_line = False

    def final(self, result: dict[str, Any]) -> None:
        if self.stream_json:
            self.emit(result)
        elif self.fmt == "json":
            self.raw(json.dumps(result, ensure_ascii=False).encode() + b"\n")
        else:
            self.raw((str(result.get("result", "")) + "\n").encode())


# ---------------------------------------------------------------- the run


class Run:
    """One invocation: plays its steps as API turns and tool calls, then prints a result."""

    def __init__(self, opts: Options, steps: list[dict[str, Any]], index: int, base: Path):
        self.opts = opts
        self.steps = steps
        self.index = index
        self.hooks_path = Path(str(base) + ".hooks.jsonl")
        self.cwd = os.getcwd()
        self.out = Out(opts.get("--output-format", default="text") or "text")
        self.session_id = opts.get("--session-id") or opts.get("-r", "--resume") or new_id()
        self.model = opts.get("--model") or DEFAULT_MODEL
        self.api_model = self.model.replace("[1m]", "")
        self.t0 = time.monotonic()
        self.turns = 0
        self.denials: list[dict[str, Any]] = []
        self.usage = dict(DEFAULT_USAGE)
        self.cost: float | None = None
        self.usage_set = False
        self.context = sum(DEFAULT_USAGE.values()) - DEFAULT_USAGE["output_tokens"]
        self.window = 1_000_000 if "[1m]" in self.model else 200_000
        self.pending_text: list[str] = []
        self.pending_tool: str | None = None
        self.pending_source: str | None = None
        self.hooks = self._post_tool_hooks()
        self.transcript = self._transcript_path()
        self.parent_uuid: str | None = None
        self.planned_turns = 1 + sum(1 for s in steps if s["do"] in WORK)
        self.version = os.environ.get("FAKE_CLAUDE_VERSION") or VERSION
        self.cumulative_resume = version_tuple(self.version) >= (2, 1, 332)
        self.cache_1h = 0
        self.partial_lines = False
        self.other_models: dict[str, dict[str, Any]] = {}  # subagents on other models
        self.background: dict[str, Any] | None = None
        self.results = 0
        self.reported: dict[str, dict[str, Any]] = {}  # modelUsage printed so far (process)
        self.reported_cost = 0.0
        self.prior = self._restore_cost_state() if self.opts.get("-r", "--resume") else None

    # -------------------------------------------------- plumbing

    def _transcript_path(self) -> Path | None:
        home = os.environ.get("HOME")
        if not home:
            return None
        munged = self.cwd.replace("/", "-").replace(".", "-")
        path = Path(home) / ".claude" / "projects" / munged / f"{self.session_id}.jsonl"
        try:
            real_home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            real_home = ""
        if os.path.realpath(home) == os.path.realpath(real_home or "/nonexistent"):
            return path if os.environ.get("FAKE_CLAUDE_REAL_HOME_OK") == "1" else None
        return path

    @property
    def transcript_str(self) -> str:
        home = os.environ.get("HOME", "")
        munged = self.cwd.replace("/", "-").replace(".", "-")
        return str(Path(home) / ".claude" / "projects" / munged / f"{self.session_id}.jsonl")

    def _record(self, line: dict[str, Any]) -> str:
        """Append one transcript line (the real CLI writes one per content block)."""
        line_uuid = new_id()
        if self.transcript is None or self.opts.no_persist:
            return line_uuid
        base = {
            "parentUuid": self.parent_uuid,
            "isSidechain": False,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session_id,
            "version": self.version,
            "gitBranch": "",
            "entrypoint": "sdk-cli",
        }
        base.update(line)
        base.update({"uuid": line_uuid, "timestamp": now_iso()})
        self.transcript.parent.mkdir(parents=True, exist_ok=True)
        append_jsonl(self.transcript, base)
        self.parent_uuid = line_uuid
        return line_uuid

    def _msg_usage(self, output_tokens: int) -> dict[str, Any]:
        cache_read = self.context * 3 // 4
        cache_creation = self.context // 5
        writes = max(1, self.usage["cache_creation_input_tokens"])
        one_hour = cache_creation * min(self.cache_1h, writes) // writes
        return {
            "input_tokens": self.context - cache_read - cache_creation,
            "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": cache_read,
            "output_tokens": output_tokens,
            "service_tier": "standard",
            "cache_creation": {
                "ephemeral_1h_input_tokens": one_hour,
                "ephemeral_5m_input_tokens": cache_creation - one_hour,
            },
        }

    def _check_max_turns(self) -> None:
        limit = self.opts.get("--max-turns")
        if limit and limit.isdigit() and self.turns >= int(limit):
            self.turns += 1
            self._error_result("error_max_turns", "max_turns")
            raise Exit(1)

    def turn(self, blocks: list[dict[str, Any]]) -> str:
        """One API turn: an assistant message printed one content block per line."""
        self._check_max_turns()
        self.turns += 1
        blocks = [{"type": "text", "text": t} for t in self.pending_text] + blocks
        self.pending_text = []
        msg_id, request_id = new_id("msg_"), new_id("req_")
        per_turn_output = max(1, self.usage["output_tokens"] // self.planned_turns)
        last_uuid = ""
        for block in blocks:
            message = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": self.api_model,
                "content": [block],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": self._msg_usage(1),
                "context_management": None,
            }
            last_block = block is blocks[-1]
            shown = per_turn_output if last_block or not self.partial_lines else 1
            final = dict(message, usage=self._msg_usage(shown))
            final["stop_reason"] = "tool_use" if block["type"] == "tool_use" else "end_turn"
            last_uuid = self._record(
                {"type": "assistant", "requestId": request_id, "message": final}
            )
            self.out.emit(
                {
                    "type": "assistant",
                    "message": message,
                    "parent_tool_use_id": None,
                    "session_id": self.session_id,
                    "uuid": last_uuid,
                    "request_id": request_id,
                }
            )
        return last_uuid

    def tool_result(self, tool_id: str, content: str, is_error: bool, result: Any) -> None:
        block = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
        block["is_error"] = is_error
        line_uuid = self._record(
            {
                "type": "user",
                "message": {"role": "user", "content": [block]},
                "toolUseResult": result,
                "sourceToolAssistantUUID": self.pending_source,
            }
        )
        self.out.emit(
            {
                "type": "user",
                "message": {"role": "user", "content": [block]},
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": line_uuid,
                "timestamp": now_iso(),
                "tool_use_result": result,
            }
        )

    def permitted(self, tool: str) -> bool:
        denied = self.opts.tool_list("--disallowedTools", "--disallowed-tools")
        if any(d == tool or d.startswith(tool + "(") for d in denied):
            return False
        mode = self.opts.permission_mode
        allowed = self.opts.tool_list("--allowedTools", "--allowed-tools")
        if mode == "bypassPermissions" or any(
            a == tool or a.startswith(tool + "(") for a in allowed
        ):
            return True
        return tool in ("Write", "Edit") and mode == "acceptEdits"

    def tool(self, name: str, tool_input: dict[str, Any], execute: Any, say: str | None) -> None:
        """A tool call: tool_use, permission check, execution, tool_result, PostToolUse hooks."""
        if say:
            self.pending_text.append(say)
        tool_id = new_id("toolu_")
        self.pending_source = self.turn(
            [{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}]
        )
        if not self.permitted(name):
            self.deny(name, tool_id, tool_input)
            return
        started = time.monotonic()
        self.pending_tool = tool_id
        content, is_error, result = execute()
        self.pending_tool = None
        self.tool_result(tool_id, content, is_error, result)
        self.run_hooks(name, tool_input, tool_id, result, time.monotonic() - started)

    def deny(self, name: str, tool_id: str, tool_input: dict[str, Any]) -> None:
        if name == "Bash":
            content = (
                "This Bash command contains multiple operations. The following part requires "
                f"approval: {tool_input.get('command', '')}"
            )
        else:
            content = f"Claude requested permissions to use {name}, but you haven't granted it yet."
        self.denials.append({"tool_name": name, "tool_use_id": tool_id, "tool_input": tool_input})
        self.tool_result(tool_id, content, True, "Error: " + content)

    def shell(self, cmd: str, env: dict[str, str] | None = None) -> tuple[str, bool, dict]:
        """Run a Bash tool command in its own session, as the CLI does; killed on interrupt."""
        bash = shutil.which("bash") or "/bin/sh"
        proc = subprocess.Popen(
            [bash, "-c", cmd],
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env,
        )
        try:
            out_b, err_b = proc.communicate()
        except BaseException:
            kill_group(proc.pid)
            proc.wait()
            raise
        out, err = out_b.decode(errors="replace"), err_b.decode(errors="replace")
        text = "\n".join(p for p in (out.rstrip("\n"), err.rstrip("\n")) if p)
        if proc.returncode:
            text = f"Exit code {proc.returncode}\n{text}".rstrip("\n")
        result = {
            "stdout": out.rstrip("\n"),
            "stderr": err.rstrip("\n"),
            "interrupted": False,
            "isImage": False,
            "noOutputExpected": False,
        }
        return text, bool(proc.returncode), result

    def run_hooks(self, tool: str, tool_input: Any, tool_id: str, response: Any, secs: float):
        for command, timeout in self.hooks_for(tool):
            payload = {
                "session_id": self.session_id,
                "transcript_path": self.transcript_str,
                "cwd": self.cwd,
                "prompt_id": new_id(),
                "permission_mode": self.opts.permission_mode,
                "effort": {"level": "high"},
                "hook_event_name": "PostToolUse",
                "tool_name": tool,
                "tool_input": tool_input,
                "tool_use_id": tool_id,
                "tool_response": response,
                "duration_ms": int(secs * 1000),
            }
            self.run_hook(command, timeout, payload)

    def run_hook(self, command: str, timeout: float, payload: dict[str, Any]) -> None:
        started = time.monotonic()
        env = dict(os.environ, CLAUDE_PROJECT_DIR=self.cwd)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=self.cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out_b, err_b = proc.communicate(json.dumps(payload).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            out_b, err_b = proc.communicate()
        except BaseException:
            kill_group(proc.pid)
            proc.wait()
            raise
        stdout = out_b.decode(errors="replace")
        context = None
        try:
            parsed = json.loads(stdout) if stdout.strip() else None
            if isinstance(parsed, dict):
                context = (parsed.get("hookSpecificOutput") or {}).get("additionalContext")
        except ValueError:
            pass
        record = {
            "index": self.index,
            "event": "PostToolUse",
            "tool_name": payload["tool_name"],
            "tool_use_id": payload["tool_use_id"],
            "command": command,
            "stdin": payload,
            "returncode": proc.returncode,
            "stdout": stdout,
            "stderr": err_b.decode(errors="replace"),
            "additional_context": context,
            "duration_ms": int((time.monotonic() - started) * 1000),
        }
        append_jsonl(self.hooks_path, record)

    def _post_tool_hooks(self) -> list[dict[str, Any]]:
        """PostToolUse matchers from --settings (file or JSON); invalid settings are ignored."""
        raw = self.opts.get("--settings")
        if not raw:
            return []
        try:
            text = raw if raw.lstrip().startswith("{") else Path(raw).read_text(encoding="utf-8")
            hooks = json.loads(text).get("hooks", {}).get("PostToolUse", [])
            return [h for h in hooks if isinstance(h, dict)]
        except (OSError, ValueError, AttributeError):
            return []

    def hooks_for(self, tool: str) -> list[tuple[str, float]]:
        found = []
        for entry in self.hooks:
            matcher = entry.get("matcher") or "*"
            try:
                matches = matcher == "*" or re.fullmatch(matcher, tool) is not None
            except re.error:
                matches = matcher == tool
            if not matches:
                continue
            for hook in entry.get("hooks") or []:
                if isinstance(hook, dict) and hook.get("type") == "command" and hook.get("command"):
                    found.append((str(hook["command"]), float(hook.get("timeout", 60))))
        return found

    # -------------------------------------------------- results

    def _usage_obj(self, zero: bool) -> dict[str, Any]:
        u = {k: 0 for k in DEFAULT_USAGE} if zero else self.usage
        return {
            "input_tokens": u["input_tokens"],
            "cache_creation_input_tokens": u["cache_creation_input_tokens"],
            "cache_read_input_tokens": u["cache_read_input_tokens"],
            "output_tokens": u["output_tokens"],
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard",
            "cache_creation": {
                "ephemeral_1h_input_tokens": 0 if zero else self.cache_1h,
                "ephemeral_5m_input_tokens": u["cache_creation_input_tokens"]
                - (0 if zero else self.cache_1h),
            },
            "inference_geo": "",
            "iterations": [],
            "speed": "standard",
        }

    def total_cost(self, zero: bool = False) -> float:
        """This invocation's main-model cost (the CLI prices 1-hour writes at 2x input)."""
        if zero:
            return 0.0
        if self.cost is not None:
            return self.cost
        u = self.usage
        amounts = (
            u["input_tokens"],
            u["output_tokens"],
            u["cache_read_input_tokens"],
            u["cache_creation_input_tokens"],
        )
        cost = sum(a * p for a, p in zip(amounts, PRICES, strict=True))
        cost += self.cache_1h * (2 * PRICES[0] - PRICES[3])
        return round(cost / 1e6, 8)

    def _mu(self, u: dict[str, int], cost: float, one_hour: int = 0) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "inputTokens": u["input_tokens"],
            "outputTokens": u["output_tokens"],
            "cacheReadInputTokens": u["cache_read_input_tokens"],
            "cacheCreationInputTokens": u["cache_creation_input_tokens"],
            "webSearchRequests": 0,
            "costUSD": round(cost, 8),
            "contextWindow": self.window,
            "maxOutputTokens": 64000,
        }
        if self.cumulative_resume:
            entry["cacheCreationEphemeral1hInputTokens"] = one_hour
        return entry

    def _this_part(self, zero: bool) -> dict[str, dict[str, Any]]:
        """modelUsage of what this process did so far (main model and subagents)."""
        if zero:
            return {}
        part = {self.model: self._mu(self.usage, self.total_cost(), self.cache_1h)}
        for model, extra in self.other_models.items():
            part[model] = self._mu(extra, extra["cost"])
        return part

    def _restore_cost_state(self) -> dict[str, Any] | None:
        """2.1.332 restores the session's running totals from the transcript on --resume."""
        if self.transcript is None or not self.transcript.is_file():
            return None
        state = None
        for raw in self.transcript.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                if isinstance(line, dict) and line.get("type") == "cost-state":
                    state = line
        return state

    def _base_result(self, subtype: str, is_error: bool, zero: bool = False) -> dict[str, Any]:
        elapsed = time.monotonic() - self.t0
        process = self._this_part(zero)
        cost = round(sum(m["costUSD"] for m in process.values()), 8)
        since = {
            m: {**v, **{k: v[k] - self.reported.get(m, {}).get(k, 0) for k in MU_COUNTS}}
            for m, v in process.items()
        }
        for m, v in since.items():
            v["costUSD"] = round(v["costUSD"] - self.reported.get(m, {}).get("costUSD", 0.0), 8)
        self.reported = {m: dict(v) for m, v in process.items()}
        model_usage, total = process, cost
        if self.cumulative_resume and self.prior:
            model_usage = {m: dict(v) for m, v in (self.prior.get("modelUsage") or {}).items()}
            for m, v in process.items():
                into = model_usage.setdefault(m, dict(v, **{k: 0 for k in MU_COUNTS}, costUSD=0))
                for k in MU_COUNTS:
                    into[k] = into.get(k, 0) + v[k]
                into["costUSD"] = round(into.get("costUSD", 0) + v["costUSD"], 8)
            total = round(float(self.prior.get("totalCostUSD") or 0) + cost, 8)
        result: dict[str, Any] = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "duration_ms": int(elapsed * 1000),
            "duration_api_ms": int(elapsed * 700),
            "num_turns": max(self.turns, 1),
            "session_id": self.session_id,
            "total_cost_usd": total,
            "usage": self._usage_obj(zero),
            "modelUsage": model_usage,
            "permission_denials": self.denials,
            "fast_mode_state": "off",
            "uuid": new_id(),
        }
        if self.cumulative_resume:
            result["result_index"] = self.results
            result["model_usage_since_last_result"] = since
            self._record({"type": "cost-state", "totalCostUSD": total, "modelUsage": model_usage})
        self.results += 1
        return result

    def print_result(self, result: dict[str, Any]) -> None:
        if self.cumulative_resume:
            ordered = {k: result[k] for k in KEY_ORDER_332 if k in result}
            result = {**ordered, **{k: v for k, v in result.items() if k not in ordered}}
        self.out.final(result)

    def success(self, text: str) -> None:
        self.turn([{"type": "text", "text": text}])
        budget = self.opts.get("--max-budget-usd")
        try:
            over = budget is not None and self.total_cost() > float(budget)
        except ValueError:
            over = False
        if over:
            self._error_result("error_max_budget_usd", "max_budget")
            raise Exit(1)
        result = self._base_result("success", False)
        result.update(
            api_error_status=None,
            ttft_ms=420,
            ttft_stream_ms=450,
            time_to_request_ms=35,
            result=text,
            stop_reason="end_turn",
            terminal_reason="completed",
        )
        self.print_result(result)
        if self.background is not None:
            self.background_result(self.background)

    def background_result(self, step: dict[str, Any]) -> None:
        """The background task finished: a second init, one more turn, a second result whose
        usage is that turn's alone while modelUsage and total_cost_usd add up."""
        self.background = None
        self.out.emit(
            {"type": "system", "subtype": "task_notification", "task_id": new_id(),
             "status": "completed", "session_id": self.session_id, "uuid": new_id()}
        )  # fmt: skip
        self.out.emit(self.init_line())
        turn = {
            "input_tokens": int(step.get("input_tokens", 400)),
            "output_tokens": int(step.get("output_tokens", 40)),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        for key in DEFAULT_USAGE:
            self.usage[key] += turn[key]
        self.turns = 0
        text = str(step.get("text", "Stale notification — already processed"))
        self.turn([{"type": "text", "text": text}])
        result = self._base_result("success", False)
        result["usage"] = dict(self._usage_obj(False), **turn)
        result.update(api_error_status=None, result=text, stop_reason="end_turn")
        result.update(terminal_reason="completed")
        self.print_result(result)

    def _error_result(self, subtype: str, terminal_reason: str) -> None:
        result = self._base_result(subtype, True)
        result.update(stop_reason=None, errors=[], terminal_reason=terminal_reason)
        self.print_result(result)

    def api_failure(self, text: str, status: int | None, error: str) -> None:
        """An API failure as the CLI reports it: a synthetic assistant message, then the result."""
        zero = not self.usage_set
        message = {
            "id": new_id(),
            "container": None,
            "model": "<synthetic>",
            "role": "assistant",
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "type": "message",
            "usage": {k: 0 for k in DEFAULT_USAGE},
            "content": [{"type": "text", "text": text}],
            "context_management": None,
        }
        line_uuid = self._record(
            {"type": "assistant", "message": message, "isApiErrorMessage": True}
        )
        self.out.emit(
            {
                "type": "assistant",
                "message": message,
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": line_uuid,
                "error": error,
            }
        )
        result = self._base_result("success", True, zero=zero)
        result["num_turns"] = self.turns + 1
        result.update(
            api_error_status=status,
            result=text,
            stop_reason="stop_sequence",
            terminal_reason="api_error",
        )
        self.print_result(result)

    def interrupted(self) -> None:
        """SIGINT: the CLI's clean stop, reporting error_during_execution."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.out.end_line()
        if self.pending_tool:
            tool_id, self.pending_tool = self.pending_tool, None
            self.tool_result(tool_id, INTERRUPT_TEXT, True, "Error: " + INTERRUPT_TEXT)
        self._error_result("error_during_execution", "aborted")

    # -------------------------------------------------- steps

    def play(self) -> int:
        if self.steps and self.steps[0]["do"] == "replay":  # the capture has its own init
            return self.do_replay(self.steps[0], 0)
        self.out.emit(self.init_line())
        self._record({"type": "user", "message": {"role": "user", "content": self.opts.prompt}})
        for n, step in enumerate(self.steps):
            code = getattr(self, "do_" + step["do"])(step, n)
            if step["do"] in FINAL:
                return int(code or 0)
        self.success("I made some progress on the task; more work remains.")
        return 0

    def init_line(self) -> dict[str, Any]:
        disabled = os.environ.get("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC") == "1"
        return {
            "type": "system",
            "subtype": "init",
            "cwd": self.cwd,
            "session_id": self.session_id,
            "tools": TOOLS,
            "mcp_servers": [],
            "model": self.model,
            "permissionMode": self.opts.permission_mode,
            "slash_commands": ["compact", "context", "cost", "init", "review", "security-review"],
            "apiKeySource": "ANTHROPIC_API_KEY" if os.environ.get("ANTHROPIC_API_KEY") else "none",
            "claude_code_version": self.version,
            "output_style": "default",
            "agents": ["general-purpose", "statusline-setup", "Explore", "Plan"],
            "skills": [],
            "plugins": [],
            "analytics_disabled": disabled,
            "product_feedback_disabled": disabled,
            "uuid": new_id(),
            "memory_paths": {},
            "fast_mode_state": "off",
        }

    def do_say(self, step: dict[str, Any], n: int) -> None:
        self.pending_text.append(str(step.get("text", "Let me look at that.")))

    def do_commit(self, step: dict[str, Any], n: int) -> None:
        name = str(step.get("file", "fake-work.txt"))
        message = str(step.get("message", f"fake: invocation {self.index} step {n}"))
        path = Path(self.cwd, name)
        cmd = f"git add -- {shlex.quote(name)} && git commit -m {shlex.quote(message)}"

        def execute() -> tuple[str, bool, dict]:
            path.parent.mkdir(parents=True, exist_ok=True)
            if "content" in step:
                path.write_text(str(step["content"]), encoding="utf-8")
            else:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(f"work from invocation {self.index}, step {n}, {now_iso()}\n")
            text, failed, result = self.shell(cmd, git_env(self.cwd))
            if not failed:
                sha = git_out(self.cwd, "rev-parse", "HEAD")
                result["gitOperation"] = {"commit": {"sha": sha, "kind": "committed"}}
            return text, failed, result

        desc = {"command": cmd, "description": "Commit the change"}
        self.tool("Bash", desc, execute, step.get("say", "Committing this step."))

    def do_write(self, step: dict[str, Any], n: int) -> None:
        path = Path(self.cwd, str(step.get("file", "scratch.txt")))
        content = str(step.get("content", f"scratch notes from invocation {self.index}\n"))

        def execute() -> tuple[str, bool, dict]:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            result = {"type": "create", "filePath": str(path), "content": content}
            result.update(structuredPatch=[], originalFile=None)
            return f"File created successfully at: {path}", False, result

        tool_input = {"file_path": str(path), "content": content}
        self.tool("Write", tool_input, execute, step.get("say"))

    def do_run(self, step: dict[str, Any], n: int) -> None:
        cmd = str(step["cmd"])
        tool_input = {"command": cmd, "description": str(step.get("description", "Run a command"))}
        self.tool("Bash", tool_input, lambda: self.shell(cmd), step.get("say"))

    def do_permission_denied(self, step: dict[str, Any], n: int) -> None:
        name = str(step.get("tool", "Bash"))
        tool_input = step.get("input") or (
            {"command": str(step.get("command", "git push origin HEAD"))}
            if name == "Bash"
            else {"file_path": str(Path(self.cwd, "notes.md")), "content": "notes\n"}
        )
        tool_id = new_id("toolu_")
        if step.get("say"):
            self.pending_text.append(str(step["say"]))
        self.pending_source = self.turn(
            [{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}]
        )
        self.deny(name, tool_id, tool_input)

    def do_busy(self, step: dict[str, Any], n: int) -> None:
        seconds = float(step.get("seconds", 5))

        def execute() -> tuple[str, bool, dict]:
            proc = subprocess.Popen(
                [sys.executable, "-c", BUSY_CODE, str(seconds)],
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                proc.wait()
            except BaseException:
                kill_group(proc.pid)
                proc.wait()
                raise
            text = f"build finished in {seconds:g}s"
            return text, False, {"stdout": text, "stderr": "", "interrupted": False}

        tool_input = {"command": f"make build  # {seconds:g}s of CPU", "description": "Build"}
        self.tool("Bash", tool_input, execute, step.get("say"))

    def do_grandchild(self, step: dict[str, Any], n: int) -> None:
        seconds = float(step.get("seconds", 3600))
        pid_file = Path(self.cwd, str(step["pid_file"]))

        def execute() -> tuple[str, bool, dict]:
            pid = spawn_sleeper(seconds, bool(step.get("detach")), bool(step.get("hold_stdout")))
            tmp = pid_file.with_name(pid_file.name + ".tmp")
            tmp.write_text(f"{pid}\n", encoding="utf-8")
            os.replace(tmp, pid_file)
            return "", False, {"stdout": "", "stderr": "", "backgroundTaskId": str(pid)}

        tool_input = {"command": f"sleep {seconds:g} &", "description": "Start a background job"}
        self.tool("Bash", tool_input, execute, step.get("say"))

    def do_spew(self, step: dict[str, Any], n: int) -> None:
        """Stream about `mb` MiB of ~64 KiB lines from three templates (constant memory)."""
        target = int(float(step.get("mb", 1)) * 1024 * 1024)
        filler = "spew " * 13000
        common = {"parent_tool_use_id": None, "session_id": self.session_id}
        templates = [
            {
                "type": "assistant",
                "message": {
                    "id": "msg_spew_@@",
                    "type": "message",
                    "role": "assistant",
                    "model": self.api_model,
                    "content": [{"type": "text", "text": filler}],
                    "stop_reason": None,
                    "usage": self._msg_usage(1),
                },
                **common,
            },
            {
                "type": "assistant",
                "message": {
                    "id": "msg_spew_tool",
                    "type": "message",
                    "role": "assistant",
                    "model": self.api_model,
                    "content": [
                        {"type": "tool_use", "id": "toolu_spew_@@", "name": "Bash",
                         "input": {"command": "cat build.log"}}
                    ],
                    "stop_reason": None,
                    "usage": self._msg_usage(1),
                },
                **common,
            },
            {
                "type": "user",
                "message": {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_spew_@@", "content": filler,
                         "is_error": False}
                    ],
                },
                **common,
            },
        ]  # fmt: skip
        parts = [json.dumps(t).encode().split(b"@@", 1) for t in templates]
        written = 0
        counter = 0
        while written < target:
            for i, (head, tail) in enumerate(parts):
                line = head + b"%08d" % (counter if i == 0 else counter // 3) + tail + b"\n"
                if self.out.stream_json:
                    self.out.raw(line)
                written += len(line)
                counter += 1
                if i == 1:
                    self.turns += 1

    def do_usage(self, step: dict[str, Any], n: int) -> None:
        self.usage_set = True
        for key in DEFAULT_USAGE:
            if key in step:
                self.usage[key] = int(step[key])
        if "cost_usd" in step:
            self.cost = float(step["cost_usd"])
        if "context_tokens" in step:
            self.context = int(step["context_tokens"])
        if "context_window" in step:
            self.window = int(step["context_window"])
        if "cache_1h" in step:
            self.cache_1h = min(int(step["cache_1h"]), self.usage["cache_creation_input_tokens"])
        if "partial_lines" in step:
            self.partial_lines = bool(step["partial_lines"])

    def do_background(self, step: dict[str, Any], n: int) -> None:
        self.background = step

    def do_subagent(self, step: dict[str, Any], n: int) -> None:
        model = str(step.get("model", "claude-haiku-4-5-20251001"))
        usage = {
            "input_tokens": int(step.get("input_tokens", 2000)),
            "output_tokens": int(step.get("output_tokens", 300)),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        amounts = (usage["input_tokens"], usage["output_tokens"], 0, 0)
        cost = sum(a * p for a, p in zip(amounts, HAIKU_PRICES, strict=True)) / 1e6
        agent = new_id()[:7]

        def execute() -> tuple[str, bool, dict]:
            row = self.other_models.setdefault(model, {**{k: 0 for k in DEFAULT_USAGE}, "cost": 0})
            for key in DEFAULT_USAGE:
                row[key] += usage[key]
            row["cost"] += cost
            if self.transcript is not None and not self.opts.no_persist:
                sub = self.transcript.with_suffix("") / "subagents" / f"agent-a{agent}.jsonl"
                sub.parent.mkdir(parents=True, exist_ok=True)
                line = {
                    "parentUuid": None, "isSidechain": True, "agentId": f"a{agent}",
                    "sessionId": self.session_id, "type": "assistant", "uuid": new_id(),
                    "timestamp": now_iso(), "version": self.version,
                    "message": {"id": new_id("msg_"), "type": "message", "role": "assistant",
                                "model": model, "content": [{"type": "text", "text": "found"}],
                                "stop_reason": "end_turn",
                                "usage": {**usage, "service_tier": "standard"}},
                }  # fmt: skip
                append_jsonl(sub, line)
            return "The subagent found it.", False, {"status": "completed", "agentId": agent}

        tool_input = {"description": "look around", "prompt": "Find it."}
        tool_input["subagent_type"] = "Explore"
        self.tool("Task", tool_input, execute, None)

    def do_replay(self, step: dict[str, Any], n: int) -> int:
        data = Path(str(step["file"])).read_bytes()
        self.out.raw(data if data.endswith(b"\n") or not data else data + b"\n")
        last = None
        for raw in data.splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(raw)
                if isinstance(event, dict) and event.get("type") == "result":
                    last = event
        return 1 if last is None or last.get("is_error") else 0

    def do_rate_limit(self, step: dict[str, Any], n: int) -> None:
        info: dict[str, Any] = {
            "status": str(step.get("status", "allowed_warning")),
            "resetsAt": reset_epoch(step),
            "rateLimitType": str(step.get("type", "five_hour")),
            "isUsingOverage": False,
        }
        if "utilization" in step:
            info["utilization"] = step["utilization"]
        self.out.emit(
            {"type": "rate_limit_event", "rate_limit_info": info, "uuid": new_id(),
             "session_id": self.session_id}
        )  # fmt: skip

    def do_sleep(self, step: dict[str, Any], n: int) -> None:
        time.sleep(float(step.get("seconds", 1)))

    def do_ignore_sigterm(self, step: dict[str, Any], n: int) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def do_ignore_sigint(self, step: dict[str, Any], n: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    # final steps: the return value is the exit code

    def do_done(self, step: dict[str, Any], n: int) -> int:
        default = "All tasks are complete: the tests pass and every fix is committed."
        self.success(str(step.get("text", default)).rstrip("\n") + "\nUNATTENDED_DONE")
        return 0

    def do_blocked(self, step: dict[str, Any], n: int) -> int:
        reason = str(step.get("reason", "I need credentials for the staging database"))
        self.success(f"I cannot go on without help.\nUNATTENDED_BLOCKED: {reason}")
        return 0

    def do_text(self, step: dict[str, Any], n: int) -> int:
        default = "Fixed two of the failing tests and committed them; more remain."
        self.success(str(step.get("text", default)))
        return 0

    def do_question(self, step: dict[str, Any], n: int) -> int:
        default = (
            "I found two ways to fix the parser. Should I rewrite the tokenizer or patch the "
            "grammar?"
        )
        self.success(str(step.get("text", default)))
        return 0

    def do_blocker_none(self, step: dict[str, Any], n: int) -> int:
        self.success(
            "Progress: fixed the flaky test.\nBlocker: none\nNext: the remaining warnings."
        )
        return 0

    def do_markers_in_tool(self, step: dict[str, Any], n: int) -> int:
        cmd = "printf 'Protocol notes:\\nUNATTENDED_DONE\\nUNATTENDED_BLOCKED: x\\n'"
        tool_input = {"command": cmd, "description": "Show the protocol notes"}
        self.tool("Bash", tool_input, lambda: self.shell(cmd), None)
        self.success("The notes list the protocol markers; the task itself is not finished yet.")
        return 0

    def do_api_error(self, step: dict[str, Any], n: int) -> int:
        status = int(step.get("status", 529))
        message = str(step.get("message", "Rate limited"))
        gateway = urlparse(os.environ.get("ANTHROPIC_BASE_URL", "")).netloc or "api.anthropic.com"
        tail = SERVER_TAIL.format(gateway=gateway)
        kinds = {429: "rate_limit", 500: "server_error", 529: "overloaded"}
        max_retries = int(os.environ.get("CLAUDE_CODE_MAX_RETRIES", "10") or 10)
        for attempt in range(1, int(step.get("retries", 0)) + 1):
            self.out.emit(
                {
                    "type": "system",
                    "subtype": "api_retry",
                    "attempt": attempt,
                    "max_retries": max_retries,
                    "retry_delay_ms": min(500 * 2 ** (attempt - 1), 32000),
                    "error_status": status,
                    "error": kinds.get(status, "unknown"),
                    "session_id": self.session_id,
                    "uuid": new_id(),
                }
            )
        if status == 429:
            text = f"API Error: Request rejected (429) · {message}"
        elif status == 500:
            text = f"API Error: 500 Internal server error. {tail}"
        elif status == 529:
            text = f"API Error: 529 Overloaded. {tail}"
        else:
            text = f"API Error: {status} {message}"
        error = "rate_limit" if status == 429 else "server_error" if status >= 500 else "unknown"
        self.api_failure(str(step.get("text", text)), status, error)
        return 1

    def do_usage_limit(self, step: dict[str, Any], n: int) -> int:
        kind = str(step.get("kind", "session"))
        if kind == "server":
            message = str(step.get("message", "Rate limited"))
            text = (
                "API Error: Server is temporarily limiting requests (not your usage limit) · "
                + message
            )
            self.api_failure(text, 429, "rate_limit")
            return 1
        if kind not in LIMIT_KINDS:
            raise ScenarioError(f"usage_limit kind must be one of {sorted(LIMIT_KINDS)} or server")
        limit_type, word = LIMIT_KINDS[kind]
        resets = reset_epoch(step)
        info = {"status": "rejected", "resetsAt": resets, "rateLimitType": limit_type}
        info["isUsingOverage"] = False
        self.out.emit(
            {"type": "rate_limit_event", "rate_limit_info": info, "uuid": new_id(),
             "session_id": self.session_id}
        )  # fmt: skip
        text = f"You've hit your {word} limit · resets {format_reset(resets)}"
        self.api_failure(text, 429, "rate_limit")
        return 1

    def do_auth_error(self, step: dict[str, Any], n: int) -> int:
        delay = float(step.get("retry_delay", 0.5))
        max_retries = int(os.environ.get("CLAUDE_CODE_MAX_RETRIES", "10") or 10)
        for attempt in range(1, int(step.get("retries", 0)) + 1):
            self.out.emit(
                {"type": "system", "subtype": "api_retry", "attempt": attempt,
                 "max_retries": max_retries, "retry_delay_ms": delay * 1000 + 0.3120247708149,
                 "error_status": 401, "error": "authentication_failed",
                 "session_id": self.session_id, "uuid": new_id()}
            )  # fmt: skip
            time.sleep(delay)
        if step.get("kind") == "not_logged_in":
            self.api_failure("Not logged in · Please run /login", None, "authentication_failed")
        else:
            text = "Invalid API key · Fix external API key"
            self.api_failure(text, 401, "authentication_failed")
        return 1

    def do_prompt_too_long(self, step: dict[str, Any], n: int) -> int:
        self.api_failure("Prompt is too long", 400, "invalid_request")
        return 1

    def do_exit(self, step: dict[str, Any], n: int) -> int:
        line = str(step.get("stderr", "Error: the fake worker crashed"))
        if line:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        return int(step.get("code", 1))

    def do_no_result(self, step: dict[str, Any], n: int) -> int:
        return 0

    def do_hang(self, step: dict[str, Any], n: int) -> int:
        while True:
            time.sleep(3600)


# ---------------------------------------------------------------- helpers


def kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def git_out(cwd: str, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def git_env(cwd: str) -> dict[str, str]:
    """Commit as the repo's user (a fake identity when none is set), never asking to sign."""
    env = dict(os.environ)
    if not git_out(cwd, "config", "user.email"):
        env.setdefault("GIT_AUTHOR_NAME", "Fake Claude")
        env.setdefault("GIT_AUTHOR_EMAIL", "fake-claude@example.invalid")
        env.setdefault("GIT_COMMITTER_NAME", "Fake Claude")
        env.setdefault("GIT_COMMITTER_EMAIL", "fake-claude@example.invalid")
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)  # no signing prompt can hang a test
    env.update({"GIT_CONFIG_COUNT": str(count + 1), f"GIT_CONFIG_KEY_{count}": "commit.gpgsign"})
    env[f"GIT_CONFIG_VALUE_{count}"] = "false"
    return env


def spawn_sleeper(seconds: float, detach: bool, hold_stdout: bool) -> int:
    """A long `sleep` in its own session; with detach, orphaned at once via a double fork."""
    stdout = None if hold_stdout else subprocess.DEVNULL
    if not detach:
        proc = subprocess.Popen(
            ["sleep", f"{seconds:g}"],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return proc.pid
    read_fd, write_fd = os.pipe()
    middle = os.fork()
    if middle == 0:  # pragma: no cover - runs in the forked child
        try:
            os.setsid()
            pid = subprocess.Popen(
                ["sleep", f"{seconds:g}"],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.DEVNULL,
            ).pid
            os.write(write_fd, str(pid).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    data = b""
    while chunk := os.read(read_fd, 64):
        data += chunk
    os.close(read_fd)
    os.waitpid(middle, 0)
    return int(data)


def reset_epoch(step: dict[str, Any]) -> int:
    if "resets_at" in step:
        return int(step["resets_at"])
    return int(time.time() + float(step.get("resets_in", 3600)))


def format_reset(epoch: int) -> str:
    """`Mar 17, 2030, 5:46pm (UTC)`; only the time when the reset is later today."""
    when = datetime.fromtimestamp(epoch, UTC)
    clock = f"{when.hour % 12 or 12}:{when.minute:02d}{'am' if when.hour < 12 else 'pm'}"
    if when.date() == datetime.now(UTC).date():
        return f"{clock} (UTC)"
    return f"{when.strftime('%b')} {when.day}, {when.year}, {clock} (UTC)"


def refuse(message: str, code: int) -> int:
    sys.stderr.write(message + "\n")
    return code


def preflight(opts: Options) -> int | None:
    """The CLI's own refusals, before any API call; None when the run may go ahead."""
    if not opts.print_mode:
        return refuse("fake-claude: only print mode (-p) is supported", 1)
    if not opts.prompt:
        return refuse(
            "Error: Input must be provided either through stdin or as a prompt argument when "
            "using --print",
            1,
        )
    fmt = opts.get("--output-format", default="text")
    if fmt not in ("text", "json", "stream-json"):
        return refuse(f"error: option '--output-format <format>' argument '{fmt}' is invalid.", 1)
    if fmt == "stream-json" and not opts.verbose:
        return refuse(
            "Error: When using --print, --output-format=stream-json requires --verbose", 1
        )
    if (
        opts.permission_mode == "bypassPermissions"
        and os.geteuid() == 0
        and os.environ.get("IS_SANDBOX") != "1"
    ):
        return refuse(
            "--dangerously-skip-permissions cannot be used with root/sudo privileges for "
            "security reasons",
            1,
        )
    return None


def main() -> int:
    fds = open_fds()
    opts = Options(sys.argv[1:])
    if opts.print_mode:
        opts.prompt = read_stdin_prompt(opts.prompt)
    if opts.version:
        print(f"{VERSION} (Claude Code)")
        return 0
    if opts.help:
        print(__doc__)
        return 0
    scenario_env = os.environ.get("FAKE_CLAUDE_SCENARIO")
    if not scenario_env:
        return refuse("fake-claude: FAKE_CLAUDE_SCENARIO is not set (path of a scenario file)", 2)
    scenario = Path(scenario_env)
    try:
        index = next_index(Path(str(scenario) + ".counter"))
        entry, steps = load_steps(scenario, index)
    except (ScenarioError, OSError) as exc:
        return refuse(f"fake-claude: {exc}", 2)
    append_jsonl(Path(str(scenario) + ".calls.jsonl"), call_record(opts, index, entry, fds))
    refused = preflight(opts)
    if refused is not None:
        return refused
    run = Run(opts, steps, index, scenario)

    def on_sigint(signum: int, frame: Any) -> None:
        raise Interrupted()

    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(143))
    try:
        return run.play()
    except Interrupted:
        run.interrupted()
        return 1
    except Exit as done:
        return done.code
    except ScenarioError as exc:
        return refuse(f"fake-claude: {exc}", 2)
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    code = main()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
