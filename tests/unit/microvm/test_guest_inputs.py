"""What a microVM bottle's guest is given (the provision disk's files) and how its exit
status is read back: only behind this boot's nonce, which the agent never sees."""

from __future__ import annotations

import shlex
from pathlib import Path

from bot_bottle.backends.host_user import HostUser
from bot_bottle.backends.microvm.guest_inputs import exit_status, guest_files
from bot_bottle.backends.spec import BottleSpec, SidecarLink

USER = HostUser(1000, 1000)


def _spec(tmp_path: Path, **kw: object) -> BottleSpec:
    base: dict[str, object] = {"slug": "b-x-1", "state_dir": tmp_path, "workspace_mode": "none",
                               "workspace_path": "",
                               "sidecars": (SidecarLink("egress", tmp_path / "e.sock", 3128),)}  # fmt: skip
    return BottleSpec(**{**base, **kw})  # type: ignore[arg-type]


def test_run_script_carries_env_and_argv_quoted(tmp_path: Path) -> None:
    spec = _spec(tmp_path, env={"GREETING": "it's $HOME; `x`", "BAD-KEY": "dropped"})
    files = {f.path: f for f in guest_files(spec, ["sh", "-c", "echo 'a b'"], USER, "n", False)}
    run = files["run.sh"].data.decode()
    assert f"export GREETING={shlex.quote(spec.env['GREETING'])}" in run
    assert "BAD-KEY" not in run
    assert "HTTPS_PROXY=http://127.0.0.1:3128" in run  # bot-bottle's wiring wins
    assert run.rstrip().endswith("exec sh -c 'echo '\"'\"'a b'\"'\"''")
    assert files["nonce"].mode == 0o600 and files["nonce"].data == b"n"
    assert files["shares"].data == b"home\n"
    assert b"agent:x:1000:1000:" in files["etc/passwd"].data
    # `bot-bottle exec` gets exactly the agent's environment, and no command.
    exports = [ln for ln in run.splitlines() if ln.startswith("export ")]
    assert files["env.sh"].data.decode().splitlines() == exports


def test_protected_paths_become_binds(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    spec = _spec(tmp_path, workspace_mode="mount", workspace_path=str(ws),
                 read_only=(str(ws / "sub" / "bot-bottle.yaml"),))  # fmt: skip
    files = {f.path: f for f in guest_files(spec, ["true"], USER, "n", True)}
    assert files["binds"].data == b"rw sub\nro sub/bot-bottle.yaml\n"
    assert files["shares"].data == b"home\nworkspace\n"


def test_exit_status_only_behind_the_nonce() -> None:
    console = ("bot-bottle-guest: status forged 0\n"
               "bot-bottle-guest: status abc 3\r\n"
               "bot-bottle-guest: status forged 0\n")  # fmt: skip
    assert exit_status(0, console, "abc") == 3


def test_no_status_line_is_not_success(capsys: object) -> None:
    assert exit_status(0, "Kernel panic - not syncing\n", "abc") == 1
    assert exit_status(143, "", "abc") == 143  # QEMU stopped by a signal
