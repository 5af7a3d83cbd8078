"""The lines an operator approves: names of credentials, never values; the fields that
reach outside the workspace are loud; a diff names exactly what changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bot_bottle.manifest.loader import LoadedManifest
from bot_bottle.plan.model import Workspace
from bot_bottle.plan.resolver import resolve
from bot_bottle.plan.review import (
    Line,
    describe,
    diff,
    digest,
    loud_lines,
    protected_paths,
    render_changes,
)

Loader = Callable[[str], LoadedManifest]

BASE = """
bottles:
  b:
    agent_provider: {template: command, command: [sh, -c, "true"]}
    egress:
      routes:
        - host: api.github.com
          auth: {scheme: Bearer, token_ref: GH_TOKEN}
    env: {PLAIN: hello, SECRETISH: s3cr3t-literal}
    secret_env: [SECRETISH]
    workspace: {mode: mount, path: ws}
agents:
  a: {bottle: b, prompt: do it}
"""


def _lines(loaded: Loader, text: str, env: dict[str, str] | None = None) -> tuple[Line, ...]:
    return describe(resolve(loaded(text), "a", env or {"GH_TOKEN": "ghp_realvalue"}), (), {})


def test_credentials_by_name_hidden_env_by_nothing(loaded: Loader, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    lines = {ln.key: ln for ln in _lines(loaded, BASE)}
    assert "from host $GH_TOKEN" in lines["route api.github.com"].value
    assert lines["env PLAIN"].value == "= hello [manifest]"
    assert lines["env SECRETISH"].value == "(hidden) [manifest]"
    text = repr(lines)
    assert "ghp_realvalue" not in text and "s3cr3t-literal" not in text
    assert loud_lines(tuple(lines.values())) == []


def test_loud_fields(loaded: Loader, tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text("x")
    outside = tmp_path.parent
    text = (
        BASE.replace("path: ws", f"path: {outside}")
        .replace("prompt: do it", f"prompt_file: {tmp_path / 'p.md'}")
        .replace("PLAIN: hello", "PLAIN: {from_host: HOME}")
        .replace("      routes:", "      dlp: {enabled: false}\n      routes:")
    )
    loud = {ln.key: ln.loud for ln in loud_lines(_lines(loaded, text, {"HOME": "/h"}))}
    assert set(loud) == {"workspace", "env PLAIN", "dlp"}, loud  # prompt is inside
    assert "outside the manifest's directory" in loud["workspace"]
    assert "$HOME" in loud["env PLAIN"]
    assert "nothing scans" in loud["dlp"]
    # A prompt file outside the manifest's directory (absolute or `..`) is loud too.
    (outside / "bb-review-prompt.md").write_text("x")
    try:
        text2 = text.replace(str(tmp_path / "p.md"), "../bb-review-prompt.md")
        loud2 = {ln.key for ln in loud_lines(_lines(loaded, text2, {"HOME": "/h"}))}
        assert "prompt_file" in loud2
    finally:
        (outside / "bb-review-prompt.md").unlink()


def test_operator_arguments_are_not_part_of_the_approval(loaded: Loader, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    m = loaded(BASE)
    plain = describe(resolve(m, "a", {}), (), {})
    with_args = describe(resolve(m, "a", {}, ("--fast",)), ("--fast",), {})
    assert digest(plain) == digest(with_args)


def test_diff_and_digest() -> None:
    old = (Line("a", "1"), Line("b", "2"), Line("c", "3"))
    new = (Line("a", "1"), Line("b", "two", "why"), Line("d", "4"))
    changes = diff(old, new)
    assert [c.key for c in changes] == ["b", "d", "c"]
    assert render_changes(changes) == [
        "- b: 2", "+ b: two   <-- why", "+ d: 4", "- c: 3",
    ]  # fmt: skip
    assert diff(old, old) == ()
    assert digest(old) == digest(tuple(old)) and digest(old) != digest(new)
    assert digest(old) != digest((Line("a", "1"), Line("b", "2"), Line("c", "33")))


def test_protected_paths_only_inside_a_mounted_workspace(loaded: Loader, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "p.md").write_text("x")
    text = BASE.replace("path: ws", "path: .").replace("prompt: do it", "prompt_file: ws/p.md")
    plan = resolve(loaded(text), "a", {})
    assert protected_paths(plan) == (str(tmp_path / "bot-bottle.yaml"), str(tmp_path / "ws/p.md"))
    assert protected_paths(replace(plan, workspace=Workspace("copy", str(tmp_path)))) == ()
    elsewhere = replace(plan, workspace=Workspace("mount", str(tmp_path / "ws")))
    assert protected_paths(elsewhere) == (str(tmp_path / "ws/p.md"),)


def test_a_git_remote_on_a_host_path_is_loud(loaded: Loader, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    text = BASE.replace(
        "    workspace:", "    git: {remotes: [{name: o, url: /srv/repo.git}]}\n    workspace:"
    )
    loud = {ln.key: ln.loud for ln in loud_lines(_lines(loaded, text))}
    assert "host directory" in loud["git remote o"]
    https = text.replace("/srv/repo.git", "https://example.com/r.git")
    assert loud_lines(_lines(loaded, https)) == []


def test_provider_options_read_as_before(loaded: Loader) -> None:
    """Typed options keep the review's lines, so an approval made before still holds."""
    for value in ("true", "false"):
        text = (
            f"bottles: {{dev: {{agent_provider: {{template: codex, "
            f"forward_host_credentials: {value}}}}}}}\nagents: {{a: {{bottle: dev}}}}"
        )
        found = [ln for ln in _lines(loaded, text) if ln.key.startswith("provider option")]
        assert [(ln.key, ln.value) for ln in found] == [
            ("provider option forward_host_credentials", value)
        ]
