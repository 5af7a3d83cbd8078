"""Builds of the bundled images (and an agent's own Dockerfile), cached by content digest.

A tag is `bot-bottle/<name>:<digest>`, the digest covering the Dockerfile, its context
and the build CA; a tag that exists is never rebuilt, so a warm host starts bottles
without touching a builder. Only agent images are built: the sidecars run on the host
(their credentials stay out of every container's configuration).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot_bottle.agents import PACKAGES
from bot_bottle.docker_engine import connect, engine_errors
from bot_bottle.errors import BackendUnavailable

if TYPE_CHECKING:
    import docker

HERE = Path(__file__).resolve().parent
Progress = Callable[[str], None]
LABEL = "bot-bottle.image"
AGENT_UID = 1000


@dataclass(frozen=True)
class ImageSpec:
    """One image bot-bottle builds: a context directory, its Dockerfile there, the stage
    to build (`target`, empty for the last) and its build arguments."""

    name: str
    context: Path
    buildargs: dict[str, str] = field(default_factory=dict)
    target: str = ""
    dockerfile: str = "Dockerfile"


# The agent CLIs baked into their images, pinned so a tag (a digest of these too)
# always means the same CLI.
AGENT_CLI_VERSIONS = {"claude": "2.1.330", "codex": "0.169.0"}


def _agent_cli(cli: str) -> ImageSpec:
    package = f"{PACKAGES[cli]}@{AGENT_CLI_VERSIONS[cli]}"
    return ImageSpec(f"agent-{cli}", HERE / "agent", buildargs={"NPM_PACKAGE": package},
                     target="npm-cli")  # fmt: skip


BUNDLED: dict[str, ImageSpec] = {
    "agent-general": ImageSpec("agent-general", HERE / "agent", target="general"),
    "agent-claude": _agent_cli("claude"),
    "agent-codex": _agent_cli("codex"),
}


def host_ca_bundle() -> Path:
    """The host's trust store as one PEM file (what the host itself uses to fetch)."""
    candidates = [os.environ.get("SSL_CERT_FILE", ""), ssl.get_default_verify_paths().cafile or "",
                  "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                  "/etc/ssl/cert.pem"]  # fmt: skip
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise BackendUnavailable("no CA bundle found on this host", "pass --ca-bundle FILE")


def _files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", ".git"))
        for f in sorted(filenames):
            if not f.endswith((".pyc", ".pyo")):
                yield Path(dirpath) / f


def digest(spec: ImageSpec, ca_pem: bytes) -> str:
    """Content digest of everything the build reads; 16 hex characters."""
    h = hashlib.sha256()

    def add(name: str, data: bytes) -> None:
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)

    for p in _files(spec.context):
        add(f"ctx/{p.relative_to(spec.context)}", p.read_bytes())
    add("ca-bundle.pem", ca_pem)
    for k in sorted(spec.buildargs):
        add(f"arg/{k}", spec.buildargs[k].encode())
    add("target", spec.target.encode())
    add("dockerfile", spec.dockerfile.encode())
    return h.hexdigest()[:16]


def tag_for(spec: ImageSpec, ca_pem: bytes) -> str:
    return f"bot-bottle/{spec.name}:{digest(spec, ca_pem)}"


def image_exists(tag: str, client: docker.DockerClient | None = None) -> bool:
    """Whether the engine has `tag`. Pass the caller's `client`: each new one costs a
    connection and a ping (~10 ms), paid on every bottle start otherwise."""
    import docker.errors

    client = client or connect()
    with engine_errors(f"looking up {tag}"):
        try:
            client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False


def ensure(
    spec: ImageSpec,
    *,
    ca_bundle: Path | None = None,
    progress: Progress = print,
    detail: Progress | None = None,
    client: docker.DockerClient | None = None,
) -> tuple[str, bool]:
    """Build `spec` unless its digest tag exists; returns (tag, built)."""
    ca_pem = (ca_bundle or host_ca_bundle()).read_bytes()
    tag = tag_for(spec, ca_pem)
    if image_exists(tag, client):
        return tag, False
    with tempfile.TemporaryDirectory(prefix=f"bot-bottle-{spec.name}-") as tmp:
        ctx = Path(tmp) / "context"
        copy_context(spec.context, ctx)
        (ctx / "ca-bundle.pem").write_bytes(ca_pem)
        _docker_build(ctx, tag, spec, progress, detail)
    return tag, True


def copy_context(src: Path, dst: Path) -> None:
    """Copy a build context as it is: a symlink stays a link (the engine's COPY never
    follows it out of the context), and FIFOs, sockets and devices are left out. A
    custom context may sit in the agent's workspace: following a link it planted would
    copy a host file (`~/.ssh/id_ed25519`) into the image it then runs in, and opening
    a FIFO would hang the launcher."""

    def special(directory: str, names: list[str]) -> set[str]:
        out = {n for n in names if n == "__pycache__"}
        for n in names:
            mode = os.lstat(os.path.join(directory, n)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                out.add(n)
        return out

    shutil.copytree(src, dst, symlinks=True, ignore=special)


# The engine's bookkeeping between steps: not what the step printed.
_NOISE = (" ---> ", "Removing intermediate container", "Successfully built", "Successfully tagged")


def _docker_build(
    ctx: Path, tag: str, spec: ImageSpec, progress: Progress, detail: Progress | None = None
) -> None:
    """Build, showing each step as a heading (`progress`) and what it prints, and any
    base image pull, as it comes (`detail`; default `progress`)."""
    detail = detail or progress
    client = connect(timeout=1800)
    tail: list[str] = []
    pulls: dict[str, str] = {}  # layer -> last status shown: one line per change
    with engine_errors(f"building {tag}"):
        for chunk in client.api.build(path=str(ctx), dockerfile=spec.dockerfile, tag=tag,
                                      rm=True, forcerm=True, decode=True,
                                      buildargs=spec.buildargs or None,
                                      target=spec.target or None,
                                      labels={LABEL: spec.name}):  # fmt: skip
            if "error" in chunk:
                progress(f"{spec.name}: failed")  # a heading: ends a live line first
                raise BackendUnavailable(
                    f"building {tag} from {spec.context / spec.dockerfile} failed: "
                    f"{chunk['error'].strip()}\n" + "\n".join(tail),
                    "pass --ca-bundle FILE if a download failed on TLS; otherwise fix the "
                    "Dockerfile",
                )
            if "status" in chunk:
                layer, status = str(chunk.get("id", "")), str(chunk["status"])
                if pulls.get(layer) != status:
                    pulls[layer] = status
                    detail(f"{spec.name}: {status} {layer}".rstrip())
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    tail = [*tail[-29:], line]
                    if line.startswith("Step "):
                        progress(f"{spec.name}: {line}")
                    elif not line.startswith(_NOISE):
                        detail(f"{spec.name}: {line}")
    progress(f"{spec.name}: built {tag}")


def build_all(
    names: Sequence[str] = (),
    *,
    ca_bundle: Path | None = None,
    progress: Progress = print,
    detail: Progress | None = None,
) -> Iterable[str]:
    """Build the named bundled images (all when empty); yields one line per image."""
    unknown = [n for n in names if n not in BUNDLED]
    if unknown:
        raise BackendUnavailable(f"unknown image {unknown[0]!r}", f"one of {', '.join(BUNDLED)}")
    for name in names or tuple(BUNDLED):
        tag, built = ensure(BUNDLED[name], ca_bundle=ca_bundle, progress=progress, detail=detail)
        yield f"{tag} {'built' if built else 'up to date'}"


@dataclass(frozen=True)
class ImageStatus:
    name: str
    tag: str
    built: bool


def status(ca_bundle: Path | None = None) -> list[ImageStatus]:
    ca_pem = (ca_bundle or host_ca_bundle()).read_bytes()
    client = connect()
    out = []
    for spec in BUNDLED.values():
        tag = tag_for(spec, ca_pem)
        out.append(ImageStatus(spec.name, tag, image_exists(tag, client)))
    return out


def custom_agent(
    dockerfile: Path,
    *,
    ca_bundle: Path | None = None,
    progress: Progress = print,
    detail: Progress | None = None,
    client: docker.DockerClient | None = None,
) -> str:
    """Build an agent's own Dockerfile (its directory is the context), then a thin layer
    that gives it the agent user's HOME and /workspace; the sidecars stay bundled."""
    if not dockerfile.is_file():
        raise BackendUnavailable(f"agent_provider.dockerfile {dockerfile} does not exist",
                                 "fix the path in the manifest")  # fmt: skip
    ctx = dockerfile.parent
    base = custom_base(dockerfile)
    ca_pem = (ca_bundle or host_ca_bundle()).read_bytes()
    base_tag = tag_for(base, ca_pem)
    if not image_exists(base_tag, client):
        _docker_build(ctx, base_tag, base, progress, detail)
    with tempfile.TemporaryDirectory(prefix="bot-bottle-adapt-") as tmp:
        spec = _adapter(base, base_tag, Path(tmp))
        tag = tag_for(spec, ca_pem)
        if not image_exists(tag, client):
            _docker_build(spec.context, tag, spec, progress, detail)
    return tag


def custom_agent_tag(dockerfile: Path, ca_pem: bytes) -> str:
    """The tag `custom_agent` gives `dockerfile`, worked out without building anything."""
    base = custom_base(dockerfile)
    with tempfile.TemporaryDirectory(prefix="bot-bottle-adapt-") as tmp:
        return tag_for(_adapter(base, tag_for(base, ca_pem), Path(tmp)), ca_pem)


def _adapter(base: ImageSpec, base_tag: str, context: Path) -> ImageSpec:
    """The thin layer over a custom image (written into `context`): the agent user's
    HOME and /workspace."""
    (context / "Dockerfile").write_text(
        f"FROM {base_tag}\nUSER root\n"
        f"RUN mkdir -p /home/agent /workspace && chown {AGENT_UID}:{AGENT_UID} "
        "/home/agent /workspace\n"
        f"ENV HOME=/home/agent\nUSER {AGENT_UID}:{AGENT_UID}\nWORKDIR /workspace\n"
    )
    return ImageSpec(f"{base.name}-agent", context)


def custom_base(dockerfile: Path) -> ImageSpec:
    """An agent's own Dockerfile as an image spec (its directory is the context)."""
    return ImageSpec(f"custom-{_name_hash(dockerfile)}", dockerfile.parent,
                     dockerfile=dockerfile.name)  # fmt: skip


def _name_hash(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
