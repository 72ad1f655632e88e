"""A fake `gh` / `glab` (``FAKE_FORGE_TOOL``, set by its wrapper): records its argv and
answers the few commands ``--on-done pr`` uses the way the real CLIs do (exit codes, JSON of
`pr list` / `mr list`, the URL printed by `create`).

State lives in ``$FAKE_FORGE_DIR/forge.json``: ``{"logged_in": bool, "prs": [...],
"fail": "create"}`` (``fail`` names a subcommand that exits 1 with an API error).
Each call is appended to ``$FAKE_FORGE_DIR/calls.jsonl`` as ``{"tool", "argv", "cwd", "env"}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(os.environ["FAKE_FORGE_DIR"])
STATE = ROOT / "forge.json"
RECORDED_ENV = ("GH_PROMPT_DISABLED", "NO_PROMPT", "GIT_TERMINAL_PROMPT")


def load() -> dict:
    try:
        return json.loads(STATE.read_text())
    except FileNotFoundError:
        return {"logged_in": True, "prs": []}


def save(state: dict) -> None:
    STATE.write_text(json.dumps(state, indent=1))


def opt(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def gh(argv: list[str], state: dict) -> int:
    cmd = argv[:2]
    if cmd == ["auth", "status"]:
        if not state.get("logged_in"):
            print(
                "You are not logged into any GitHub hosts. To log in, run: gh auth login",
                file=sys.stderr,
            )
            return 1
        print("github.com\n  ✓ Logged in to github.com account tester (keyring)", file=sys.stderr)
        return 0
    if not state.get("logged_in"):
        print("To get started with GitHub CLI, please run:  gh auth login", file=sys.stderr)
        return 4
    if state.get("fail") == argv[1]:
        print(
            "GraphQL: Resource not accessible by integration (createPullRequest)", file=sys.stderr
        )
        return 1
    prs = state["prs"]
    if cmd == ["pr", "list"]:
        head = opt(argv, "--head")
        fields = (opt(argv, "--json") or "number").split(",")
        found = [p for p in prs if p["head"] == head and p["state"] == "OPEN"]
        print(json.dumps([{f: p[f] for f in fields} for p in found[:1]]))
        return 0
    if cmd == ["pr", "create"]:
        number = len(prs) + 1
        pr = {
            "number": number,
            "url": f"https://github.com/acme/widgets/pull/{number}",
            "head": opt(argv, "--head"),
            "title": opt(argv, "--title"),
            "body": Path(opt(argv, "--body-file") or "/dev/null").read_text(),
            "isDraft": "--draft" in argv,
            "state": "OPEN",
        }
        prs.append(pr)
        save(state)
        print(
            f"\nCreating pull request for {pr['head']} into main in acme/widgets\n", file=sys.stderr
        )
        print(pr["url"])
        return 0
    if cmd in (["pr", "edit"], ["pr", "ready"]):
        pr = next(p for p in prs if str(p["number"]) == argv[2])
        if cmd[1] == "ready":
            pr["isDraft"] = False
            print(
                f'✓ Pull request #{pr["number"]} is marked as "ready for review"', file=sys.stderr
            )
        else:
            pr["title"] = opt(argv, "--title") or pr["title"]
            pr["body"] = Path(opt(argv, "--body-file") or "/dev/null").read_text()
            print(pr["url"])
        save(state)
        return 0
    print(f"unknown command {' '.join(argv)!r} for the fake gh", file=sys.stderr)
    return 1


def glab(argv: list[str], state: dict) -> int:
    cmd = argv[:2]
    if cmd == ["auth", "status"]:
        if not state.get("logged_in"):
            print("x gitlab.com: api call failed: 401 Unauthorized", file=sys.stderr)
            return 1
        print("gitlab.com\n  ✓ Logged in to gitlab.com as tester", file=sys.stderr)
        return 0
    prs = state["prs"]
    if cmd == ["mr", "list"]:
        head = opt(argv, "--source-branch")
        found = [p for p in prs if p["head"] == head and p["state"] == "opened"]
        print(
            json.dumps(
                [
                    {
                        "iid": p["iid"],
                        "web_url": p["web_url"],
                        "draft": p["draft"],
                        "source_branch": p["head"],
                    }
                    for p in found
                ]
            )
        )
        return 0
    if cmd == ["mr", "create"]:
        iid = len(prs) + 1
        mr = {
            "iid": iid,
            "web_url": f"https://gitlab.com/acme/widgets/-/merge_requests/{iid}",
            "head": opt(argv, "--source-branch"),
            "title": opt(argv, "--title"),
            "body": opt(argv, "--description"),
            "draft": "--draft" in argv,
            "state": "opened",
        }
        prs.append(mr)
        save(state)
        print(f"\nCreating merge request for {mr['head']} into main in acme/widgets\n")
        print(f"!{iid} {mr['title']} ({mr['head']})\n {mr['web_url']}\n")
        return 0
    if cmd == ["mr", "update"]:
        mr = next(p for p in prs if str(p["iid"]) == argv[2])
        mr["title"] = opt(argv, "--title") or mr["title"]
        mr["body"] = opt(argv, "--description") or mr["body"]
        if "--ready" in argv:
            mr["draft"] = False
        save(state)
        print(f"- Updating merge request !{mr['iid']}\n✓ updated title\n{mr['web_url']}")
        return 0
    print(f"unknown command {' '.join(argv)!r} for the fake glab", file=sys.stderr)
    return 1


def main() -> int:
    tool = os.environ["FAKE_FORGE_TOOL"]
    argv = sys.argv[1:]
    env = {k: os.environ[k] for k in RECORDED_ENV if k in os.environ}
    with (ROOT / "calls.jsonl").open("a") as fh:
        fh.write(json.dumps({"tool": tool, "argv": argv, "cwd": os.getcwd(), "env": env}) + "\n")
    state = load()
    return gh(argv, state) if tool == "gh" else glab(argv, state)


if __name__ == "__main__":
    sys.exit(main())
