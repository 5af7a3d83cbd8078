"""Every object a push makes reachable is scanned, whatever points at it, and so is
every piece of metadata that lands upstream: a secret in any of them refuses the push,
and the refusal names where it is (ref, object, field).

Each case builds one push shape in the agent's clone (with git's own plumbing, as an
attacker would) on top of upstream's `main`, pushes it through the real gate to the
real ssh upstream, and checks that upstream never got it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from git_gate_harness import (
    Agent,
    GateProc,
    Upstream,
    git,
    host_clone,
    make_agent,
    ssh_env,
    start_gate,
    stop_gate,
)

pytestmark = pytest.mark.integration

# Built at runtime so this file holds no literal key-shaped string.
KEY = "AKIA" + "Q7R2ZK4WXM9PLT3B"
IDENT = "a <a@b> 1700000000 +0000"


@pytest.fixture(scope="module")
def tag_gate(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GateProc]:
    """The gate in front of the ssh upstream, allowing tags as well as agent branches."""
    remote = {"name": "origin", "url": upstream.url, "protected_refs": ["main"],
              "allowed_refs": ["main", "agent/**", "refs/tags/**"]}  # fmt: skip
    g = start_gate(tmp_path_factory.mktemp("tag-gate"), remote, ssh_env(upstream))
    try:
        yield g
    finally:
        stop_gate(g.proc)


@pytest.fixture
def clone(tag_gate: GateProc, tmp_path: Path) -> Agent:
    return make_agent(tag_gate, tmp_path)


def run(a: Agent, *args: str, data: bytes | None = None, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(["git", *args], cwd=a.repo, env={**a.env, **(env or {})}, input=data,
                       capture_output=True, check=False)  # fmt: skip
    if p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {p.stderr.decode(errors='replace')}")
    return p.stdout.decode().strip()


def obj(a: Agent, kind: str, data: bytes) -> str:
    """Write any object as is (`--literally`: no check of its format)."""
    return run(a, "hash-object", "-w", "--literally", "-t", kind, "--stdin", data=data)


def blob(a: Agent, text: str) -> str:
    return obj(a, "blob", text.encode())


def tree(a: Agent, entries: dict[str, str]) -> str:
    """A tree of blobs, subtrees (`name/`) and submodules (`name@`) over HEAD's tree."""
    lines = run(a, "ls-tree", "HEAD").splitlines()
    for name, oid in entries.items():
        kind, mode = ("tree", "040000") if name.endswith("/") else ("blob", "100644")
        if name.endswith("@"):  # a submodule: its commit id is never checked
            kind, mode = "commit", "160000"
        lines.append(f"{mode} {kind} {oid}\t{name.rstrip('/@')}")
    return run(a, "mktree", data="\n".join(lines).encode() + b"\n")


def commit(
    a: Agent,
    tree_oid: str,
    parents: tuple[str, ...] = (),
    msg: bytes = b"change\n",
    headers: bytes = b"",
    author: str = IDENT,
    committer: str = IDENT,
) -> str:
    parents = parents or (run(a, "rev-parse", "HEAD"),)
    raw = f"tree {tree_oid}\n".encode()
    raw += b"".join(f"parent {p}\n".encode() for p in parents)
    raw += f"author {author}\ncommitter {committer}\n".encode() + headers + b"\n" + msg
    return obj(a, "commit", raw)


def tag(a: Agent, target: str, kind: str, name: str, msg: str, tagger: str = IDENT) -> str:
    raw = f"object {target}\ntype {kind}\ntag {name}\ntagger {tagger}\n\n{msg}\n"
    return obj(a, "tag", raw.encode())


def clean_commit(a: Agent, path: str = "clean.txt") -> str:
    return commit(a, tree(a, {path: blob(a, "nothing to see\n")}))


# Each shape returns the refspec to push; the push must carry the secret somewhere.
Shape = Callable[[Agent, str], str]

CONTENT: dict[str, Shape] = {
    "lightweight-tag-at-blob": lambda a, n: f"{blob(a, f'key={KEY}')}:refs/tags/{n}",
    "lightweight-tag-at-tree": lambda a, n: (
        f"{tree(a, {'leak.txt': blob(a, f'key={KEY}')})}:refs/tags/{n}"
    ),
    "annotated-tag-at-blob": lambda a, n: (
        f"{tag(a, blob(a, f'key={KEY}'), 'blob', n, 'release')}:refs/tags/{n}"
    ),
    "submodule-id": lambda a, n: (
        f"{commit(a, tree(a, {'sub@': KEY.encode().hex()}))}:refs/heads/agent/{n}"
    ),
    "octopus-merge-adds-file": lambda a, n: (
        f"{octopus(a, {'leak.txt': blob(a, f'key={KEY}')})}:refs/heads/agent/{n}"
    ),
}


def octopus(a: Agent, added: dict[str, str]) -> str:
    """A three-parent merge of two clean side commits whose tree also adds `added`."""
    s1, s2 = clean_commit(a, "side1.txt"), clean_commit(a, "side2.txt")
    entries = {"side1.txt": blob(a, "nothing to see\n"), "side2.txt": blob(a, "nothing to see\n")}
    head = run(a, "rev-parse", "HEAD")
    return commit(a, tree(a, {**entries, **added}), (head, s1, s2), b"merge\n")


def ident_commit(role: str, ident: str) -> Shape:
    def make(a: Agent, n: str) -> str:
        t = tree(a, {"clean.txt": blob(a, "nothing to see\n")})
        return f"{commit(a, t, **{role: ident})}:refs/heads/agent/{n}"

    return make


def extra_header(a: Agent, n: str) -> str:
    c = commit(a, tree(a, {}), headers=f"x-note {KEY}\n".encode())
    return f"{c}:refs/heads/agent/{n}"


def nested_tag(a: Agent, n: str) -> str:
    head = run(a, "rev-parse", "HEAD")
    inner = tag(a, head, "commit", f"{n}-inner", f"notes\n\nkey {KEY}")
    return f"{tag(a, inner, 'tag', n, 'clean outer message')}:refs/tags/{n}"


def tagger(a: Agent, n: str) -> str:
    t = tag(a, run(a, "rev-parse", "HEAD"), "commit", n, "v", tagger=f"{KEY} <t@x> 0 +0000")
    return f"{t}:refs/tags/{n}"


def file_name(a: Agent, n: str) -> str:
    return f"{commit(a, tree(a, {f'{KEY}.txt': blob(a, 'x')}))}:refs/heads/agent/{n}"


def directory_name(a: Agent, n: str) -> str:
    return f"{commit(a, tree(a, {f'{KEY}/': tree_of(a, 'f.txt')}))}:refs/heads/agent/{n}"


def utf16_message(bom: bool, header: bool) -> Shape:
    def make(a: Agent, n: str) -> str:
        text = f"subject\n\ndebug key {KEY}\n"
        msg = text.encode("utf-16") if bom else text.encode("utf-16-le")
        headers = b"encoding UTF-16\n" if header else b""
        c = commit(a, tree(a, {}), msg=msg, headers=headers)
        return f"{c}:refs/heads/agent/{n}"

    return make


NAMED = f"{KEY} <a@b> 1700000000 +0000"
MAILED = f"a <{KEY}@example.com> 1700000000 +0000"
METADATA: dict[str, tuple[Shape, str]] = {
    "author-name": (ident_commit("author", NAMED), "author"),
    "author-email": (ident_commit("author", MAILED), "author"),
    "committer-name": (ident_commit("committer", NAMED), "committer"),
    "committer-email": (ident_commit("committer", MAILED), "committer"),
    "extra-commit-header": (extra_header, "x-note"),
    "nested-tag-message": (nested_tag, "tag message"),
    "tagger": (tagger, "tagger"),
    "tag-name": (lambda a, n: f"HEAD:refs/tags/{n}-{KEY}", "ref name"),
    "ref-name": (lambda a, n: f"HEAD:refs/heads/agent/{n}/{KEY}", "ref name"),
    "file-name": (file_name, "tree entry"),
    "directory-name": (directory_name, "tree entry"),
    "utf16-message-declared": (utf16_message(bom=True, header=True), "commit message"),
    "utf16le-message-undeclared": (utf16_message(bom=False, header=False), "commit message"),
}


def tree_of(a: Agent, name: str) -> str:
    return run(a, "mktree", data=f"100644 blob {blob(a, 'x')}\t{name}\n".encode())


def push_records(gate: GateProc) -> list[dict[str, object]]:
    if not gate.audit.exists():
        return []
    recs = [json.loads(line) for line in gate.audit.read_text().splitlines()]
    return [r for r in recs if r.get("kind") == "git-push"]


def refused(a: Agent, upstream: Upstream, gate: GateProc, spec: str) -> str:
    """Push `spec`; assert the gate refused it and upstream has nothing of it."""
    ref = spec.rsplit(":", 1)[1]
    before = len(push_records(gate))
    p = a.try_git("push", "origin", spec)
    assert p.returncode != 0, p.stderr
    assert "REJECTED" in p.stderr, p.stderr
    assert upstream.rev(ref) == "", p.stderr
    (rec,) = push_records(gate)[before:]
    assert rec["verdict"] == "rejected"
    assert KEY not in gate.audit.read_text()
    return p.stderr


@pytest.mark.parametrize("shape", CONTENT, ids=list(CONTENT))
def test_secret_in_any_new_object_is_refused(
    shape: str, clone: Agent, upstream: Upstream, tag_gate: GateProc
) -> None:
    err = refused(clone, upstream, tag_gate, CONTENT[shape](clone, f"c-{shape}"))
    assert "aws-access-key" in err


@pytest.mark.parametrize("channel", METADATA, ids=list(METADATA))
def test_secret_in_metadata_is_refused_naming_the_field(
    channel: str, clone: Agent, upstream: Upstream, tag_gate: GateProc
) -> None:
    make, field = METADATA[channel]
    err = refused(clone, upstream, tag_gate, make(clone, f"m-{channel}"))
    assert "aws-access-key" in err
    assert field in err, err


def test_same_shapes_without_a_secret_are_accepted(
    clone: Agent, upstream: Upstream, tag_gate: GateProc
) -> None:
    """The shapes themselves pass: the refusals above are for the secret, not the shape."""
    a = clone
    specs = [
        f"{blob(a, 'key=none')}:refs/tags/ok-blob",
        f"{tree(a, {'ok.txt': blob(a, 'fine')})}:refs/tags/ok-tree",
        f"{tag(a, blob(a, 'fine too'), 'blob', 'ok-atag', 'release')}:refs/tags/ok-atag",
        f"{octopus(a, {'ok.txt': blob(a, 'fine')})}:refs/heads/agent/ok-octopus",
        f"{nested_tag_clean(a)}:refs/tags/ok-nested",
    ]
    for spec in specs:
        p = a.try_git("push", "origin", spec)
        assert p.returncode == 0, p.stderr
        assert upstream.rev(spec.rsplit(":", 1)[1]), spec


def nested_tag_clean(a: Agent) -> str:
    inner = tag(a, run(a, "rev-parse", "HEAD"), "commit", "ok-inner", "inner notes")
    return tag(a, inner, "tag", "ok-nested", "outer notes")


def test_secret_the_file_already_had_upstream_is_not_reported_again(
    clone: Agent, upstream: Upstream, tag_gate: GateProc, tmp_path: Path
) -> None:
    """Blobs are scanned whole: editing a file whose upstream version already holds a
    key-shaped string (put there by the operator, outside the gate) is not refused for
    it, twice in one push too; a key the push adds to that file still is."""
    old_key = "AKIA" + "ZX3CV4BN5MQ7WE2R"
    op = host_clone(upstream, tmp_path / "operator")
    (op / "fixtures").mkdir()
    (op / "fixtures" / "keys.txt").write_text(f"# test fixture\nkey = {old_key}\n")
    ident = ("-c", "user.name=op", "-c", "user.email=op@x")
    git(*ident, "add", ".", cwd=op)
    git(*ident, "commit", "-qm", "fixture", cwd=op)
    git("push", "-q", "origin", "main", cwd=op)
    clone.git("pull", "-q", "--ff-only", "origin", "main")
    clone.commit("fixtures/keys.txt", f"# test fixture, edited\nkey = {old_key}\n", "edit 1")
    clone.commit("fixtures/keys.txt", f"# test fixture, edited twice\nkey = {old_key}\n", "edit 2")
    p = clone.try_git("push", "origin", "HEAD:refs/heads/agent/fixture-edit")
    assert p.returncode == 0, p.stderr
    added = clone.commit("fixtures/keys.txt", f"# edited\nkey = {old_key}\nnew = {KEY}\n")
    p = clone.try_git("push", "origin", "HEAD:refs/heads/agent/fixture-edit")
    assert p.returncode != 0
    assert f"{added[:12]} fixtures/keys.txt:3: aws-access-key" in p.stderr, p.stderr
    assert p.stderr.count("secret: ") == 1, p.stderr
