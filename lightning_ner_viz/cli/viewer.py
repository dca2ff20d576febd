"""Rerun's ``rerun`` binary: where it is, the viewer's command line, and an environment that keeps it quiet.

Nothing here imports rerun: the binary is found from the ``rerun_cli`` package's location.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

QUIET_LOG_LEVEL = "warn"
"""``RUST_LOG`` for a quiet viewer: its warnings and errors, not its start-up info lines."""


def rerun_executable() -> str:
    """The ``rerun`` binary shipped in the rerun-sdk wheel.

    Not its Python wrapper script, which would leave the viewer running when it is stopped.

    Raises:
        ModuleNotFoundError: when neither the wheel's binary nor a ``rerun`` on ``PATH`` is found.
    """
    name = "rerun.exe" if os.name == "nt" else "rerun"
    spec = importlib.util.find_spec("rerun_cli")
    binary = Path(spec.origin).with_name(name) if spec is not None and spec.origin else None
    if binary is None or not binary.is_file():
        binary = Path(shutil.which("rerun") or "")
    if not binary.is_file():
        raise ModuleNotFoundError("The `rerun` viewer was not found; install it with "
                                  "`pip install 'lightning-ner-viz[rerun]'`.")
    return str(binary)


def viewer_command(recordings: Sequence[Path], *, web: bool = False, port: int = 9876,
                   web_port: int = 9090) -> list[str]:
    """The command that opens ``recordings`` in the native viewer, or serves the web viewer on loopback.

    The viewer shows files that share an application id and a recording id as one recording.
    """
    files = [str(path) for path in recordings]
    if not web:
        return [rerun_executable(), *files]
    return [rerun_executable(), "--serve-web", "--bind", "127.0.0.1", "--port", str(port),
            "--web-viewer-port", str(web_port), *files]


def quiet_environment(scratch: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with Rerun's analytics banner and info logs off.

    Rerun prints its analytics notice when it finds no ``rerun/analytics.json`` in its
    config directory. Here ``XDG_CONFIG_HOME`` points to ``scratch/rerun-config``, whose
    ``analytics.json`` turns analytics off, so nothing is written to the user's
    ``~/.config``; ``RUST_LOG`` becomes ``warn`` unless it is set. ``XDG_CONFIG_HOME`` is
    honoured on Linux and the BSDs; on macOS and Windows the notice can still show once.
    """
    env = dict(os.environ if base is None else base)
    config_home = scratch / "rerun-config"
    write_analytics_off(config_home / "rerun" / "analytics.json", scratch / "rerun-data" / "rerun" / "analytics")
    env["XDG_CONFIG_HOME"] = str(config_home)
    env.setdefault("RUST_LOG", QUIET_LOG_LEVEL)
    return env


def write_analytics_off(config_file: Path, data_dir: Path) -> None:
    """Write a Rerun analytics config at ``config_file`` that turns analytics off (unless one is there)."""
    if config_file.is_file():
        return
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config = {"analytics_enabled": False, "analytics_id": uuid.uuid4().hex, "metadata": {},
              "config_file_path": str(config_file), "data_dir_path": str(data_dir)}
    config_file.write_text(json.dumps(config), encoding="utf-8")


def viewer_launch(recordings: Sequence[Path], scratch: Path, *, web: bool = False, port: int = 9876,
                  web_port: int = 9090, verbose: bool = False) -> tuple[list[str], dict[str, str]]:
    """The viewer's command and environment: this process's environment when ``verbose``, else a quiet one."""
    command = viewer_command(recordings, web=web, port=port, web_port=web_port)
    return command, dict(os.environ) if verbose else quiet_environment(scratch)
