"""Resolve the run's settings: CLI > environment > ``unattended.toml`` > user config > default.

Read once when a run starts and saved in state.json, so a worker editing ``unattended.toml``
cannot change the caps of the running run. Every value remembers where it came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unattended.contracts.names import ENV_CLAUDE_BIN
from unattended.contracts.settings import SETTINGS_FILE, Settings

TOML_HINT = "correct it or move it aside"


class ConfigError(Exception):
    """A setting is unknown or invalid; the message is one line naming the key."""


def user_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "unattended" / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; {TOML_HINT}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); {TOML_HINT}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply; {TOML_HINT}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    return data


def _validation_message(exc: Exception, origin: Mapping[str, str]) -> str:
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if not key:
        return f"invalid settings: {msg}"
    where = origin.get(key, "default")
    return f"invalid setting {key} (from {where}): {msg}"


def resolve_settings(
    project: Path,
    cli_values: Mapping[str, Any],
    environ: Mapping[str, str] = os.environ,
) -> tuple[Settings, dict[str, str]]:
    """Merge the layers; ``cli_values`` holds only options the user actually passed."""
    layers: list[tuple[str, dict[str, Any]]] = [
        (str(user_config_path(environ)), _read_toml(user_config_path(environ))),
        (SETTINGS_FILE, _read_toml(project / SETTINGS_FILE)),
    ]
    if environ.get(ENV_CLAUDE_BIN):
        env_bin = {"claude_bin": environ[ENV_CLAUDE_BIN]}
        layers.append(("env UNATTENDED_CLAUDE_BIN", env_bin))
    layers.append(("cli", {k: v for k, v in cli_values.items() if v is not None}))

    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, values in layers:
        for key, value in values.items():
            merged[key] = value
            origin[key] = name
    # --prompt on the CLI overrides a prompt_file from the toml and vice versa.
    if origin.get("prompt") == "cli" and origin.get("prompt_file") not in (None, "cli"):
        merged.pop("prompt_file")
        origin.pop("prompt_file")
    if origin.get("prompt_file") == "cli" and origin.get("prompt") not in (None, "cli"):
        merged.pop("prompt")
        origin.pop("prompt")
    try:
        settings = Settings.model_validate(merged)
    except Exception as exc:  # pydantic.ValidationError, imported lazily
        raise ConfigError(_validation_message(exc, origin)) from None
    sources = {key: origin.get(key, "default") for key in Settings.model_fields}
    return settings, sources
