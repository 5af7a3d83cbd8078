"""Provisioning steps against a recording Target: what lands where, on any backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bot_bottle.plan.model import GitIdentity, GitRemotePlan, ProvisionFile, Sourced
from bot_bottle.provision.steps import ProvisionInputs, provision
from bot_bottle.provision.target import CommandResult

CA = b"-----BEGIN CERTIFICATE-----\negress\n-----END CERTIFICATE-----\n"


class RecordingTarget:
    home = "/home/agent"
    workspace = "/workspace"

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, int]] = {}

    def ready(self) -> None:
        pass

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.files[path] = (data, mode)

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> CommandResult:
        raise AssertionError("steps only write files")


def test_files_skills_git_and_trust(tmp_path: Path) -> None:
    skill = tmp_path / "review"
    (skill / "sub").mkdir(parents=True)
    (skill / "SKILL.md").write_text("# review")
    (skill / "sub" / "x.txt").write_text("x")
    t = RecordingTarget()
    provision(t, ProvisionInputs(
        egress_ca_pem=CA,
        files=(ProvisionFile("~/.aws/credentials", b"decoy", 0o600),),
        skills=(str(skill),),
        skills_dir="~/.claude/skills",
        git_identity=GitIdentity(Sourced("Bot \"B\"", "bottle"), Sourced("b@x", "agent")),
        git_remotes=(GitRemotePlan("origin", "git@github.com:o/r.git"),),
        git_gate_url="http://127.0.0.1:9419",
    ))  # fmt: skip
    assert t.files["~/.aws/credentials"] == (b"decoy", 0o600)
    assert t.files["~/.claude/skills/review/SKILL.md"][0] == b"# review"
    assert t.files["~/.claude/skills/review/sub/x.txt"][0] == b"x"
    bundle = next(
        data
        for path, (data, _) in t.files.items()
        if path.endswith(".pem") and CA in data and data != CA
    )
    assert bundle.endswith(CA)
    gitconfig = t.files["~/.gitconfig"][0].decode()
    assert 'name = "Bot \\"B\\""' in gitconfig and 'email = "b@x"' in gitconfig
    assert (
        '[url "http://127.0.0.1:9419/origin.git"]\n\tinsteadOf = "git@github.com:o/r.git"'
        in gitconfig
    )
