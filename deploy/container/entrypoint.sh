#!/bin/sh
# unattended-entrypoint: the two steps of a run's pod (see docs/kubernetes.md).
#
#   unattended-entrypoint clone          init container: clone the repository onto the volume,
#                                         or keep the one a previous pod of this Job left there
#   unattended-entrypoint run -- OPTS    main container: `unattended start --foreground OPTS`,
#                                         with --resume when the volume holds a run's state;
#                                         the outcome goes to the termination message
#
# Environment: UNATTENDED_REPO_URL, UNATTENDED_REPO_DIR (/work/repo), UNATTENDED_BRANCH,
# GIT_TOKEN / GIT_USERNAME (from the Secret; given to git by a credential helper that reads the
# environment, so the token is never in a URL, an argv or a log), UNATTENDED_BIN (unattended),
# UNATTENDED_TERMINATION_LOG (/dev/termination-log).
set -eu

REPO_DIR=${UNATTENDED_REPO_DIR:-/work/repo}
UNATTENDED=${UNATTENDED_BIN:-unattended}
PYTHON=${UNATTENDED_PYTHON:-python3}
TERMINATION_LOG=${UNATTENDED_TERMINATION_LOG:-/dev/termination-log}

say() { printf 'unattended-entrypoint: %s\n' "$*" >&2; }

git_setup() {
    mkdir -p "$HOME"
    if [ -n "${GIT_TOKEN:-}" ]; then
        # Single quotes: the helper expands $GIT_TOKEN when git runs it, not now.
        git config --global credential.helper \
            '!f() { test "$1" = get || exit 0; echo "username=${GIT_USERNAME:-x-access-token}"; echo "password=${GIT_TOKEN}"; }; f'
    fi
    git config --global user.name >/dev/null 2>&1 ||
        git config --global user.name "${GIT_USER_NAME:-unattended}"
    git config --global user.email >/dev/null 2>&1 ||
        git config --global user.email "${GIT_USER_EMAIL:-unattended@localhost}"
}

clone() {
    : "${UNATTENDED_REPO_URL:?UNATTENDED_REPO_URL is not set}"
    git_setup
    if [ -d "$REPO_DIR/.git" ]; then
        if git -C "$REPO_DIR" rev-parse -q --verify 'HEAD^{commit}' >/dev/null; then
            say "reusing the clone in $REPO_DIR (a retried pod resumes the run)"
            return 0
        fi
        if [ -e "$REPO_DIR/.unattended/state.json" ]; then
            say "$REPO_DIR holds a run's state but no usable repository: refusing to delete it"
            exit 2
        fi
        say "removing an incomplete clone in $REPO_DIR"
        rm -rf "$REPO_DIR"
    elif [ -d "$REPO_DIR" ] && [ -n "$(ls -A "$REPO_DIR")" ]; then
        say "$REPO_DIR exists and is not a git repository: refusing to overwrite it"
        exit 2
    fi
    git clone --quiet -- "$UNATTENDED_REPO_URL" "$REPO_DIR"
    branch=${UNATTENDED_BRANCH:-}
    if [ -n "$branch" ] &&
        git -C "$REPO_DIR" rev-parse -q --verify "refs/remotes/origin/$branch" >/dev/null; then
        git -C "$REPO_DIR" switch --quiet "$branch"  # continue that branch's earlier work
        say "cloned $UNATTENDED_REPO_URL, on its branch $branch"
    else
        say "cloned $UNATTENDED_REPO_URL (unattended start creates ${branch:-the branch})"
    fi
}

# The outcome, from state.json (the run's single source of truth), for `kubectl describe`.
write_outcome() {
    [ -f .unattended/state.json ] || return 0
    "$PYTHON" - >"$TERMINATION_LOG" <<'PY' || say "could not write $TERMINATION_LOG"
import json
s = json.load(open(".unattended/state.json"))
print(f"run ended {s['status']} (exit {s.get('exit_code')}) after {s.get('iteration', 0)} "
      f"iteration(s), ${s.get('cost_usd', 0.0):.2f}: {s.get('stop_reason') or ''}"[:2000])
for key, label in (("pushed_ref", "pushed: "), ("pr_url", "pull request: "),
                   ("on_done_error", "")):
    if s.get(key):
        print(f"{label}{s[key]}"[:500])
PY
}

run() {
    [ "${1:-}" = "--" ] && shift
    git_setup
    cd "$REPO_DIR"
    if [ -f .unattended/state.json ]; then
        # A previous pod of this Job ran here: continue its run (same id, deadline, totals);
        # its uncommitted changes are its own work, not a user's.
        say "a run's state is on the volume: resuming it"
        set -- --resume --allow-dirty "$@"
    fi
    interrupted=""
    "$UNATTENDED" start --foreground "$@" &
    child=$!
    # SIGTERM (pod deletion, node drain) goes to the daemon, which stops the worker cleanly.
    trap 'interrupted=1; kill -TERM "$child" 2>/dev/null || true' TERM INT
    code=0
    wait "$child" || code=$?
    if [ -n "$interrupted" ]; then
        code=0
        wait "$child" || code=$?
    fi
    write_outcome
    exit "$code"
}

case "${1:-}" in
clone) clone ;;
run) shift; run "$@" ;;
*)
    say "usage: unattended-entrypoint clone | run -- [unattended start options]"
    exit 2
    ;;
esac
