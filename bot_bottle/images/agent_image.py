"""The agent image a bottle runs, from its plan's `image` and `dockerfile`: one mapping
for every backend that runs one (the Docker backend runs the image, the microVM backend
boots it exported as its root), so both run the same bytes.

A bundled image ("general", "claude", "codex") and an agent's own Dockerfile get a tag
that is a digest of what the build reads (`content_addressed`); any other reference is
used as given and means whatever the engine holds under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot_bottle.images.build import (
    Progress,
    custom_agent,
    custom_agent_tag,
    ensure,
    host_ca_bundle,
    tag_for,
)
from bot_bottle.images.readiness import bundled_for

if TYPE_CHECKING:
    import docker


@dataclass(frozen=True)
class AgentImage:
    """A Docker tag, and whether it is a content digest (the same tag always names the
    same bytes, so what is made from it can be cached by the tag alone)."""

    tag: str
    content_addressed: bool


def resolve(image: str, dockerfile: str = "", ca_bundle: Path | None = None) -> AgentImage:
    """The tag a launch would run, worked out without the engine and without building."""
    if dockerfile:
        ca_pem = (ca_bundle or host_ca_bundle()).read_bytes()
        return AgentImage(custom_agent_tag(Path(dockerfile), ca_pem), True)
    spec = bundled_for(image)
    if spec is not None:
        return AgentImage(tag_for(spec, (ca_bundle or host_ca_bundle()).read_bytes()), True)
    return AgentImage(image, False)


def ensure_image(
    image: str,
    dockerfile: str = "",
    *,
    progress: Progress = print,
    detail: Progress | None = None,
    client: docker.DockerClient | None = None,
) -> AgentImage:
    """The tag a launch runs, built first if it is a bundled image or an agent's own
    Dockerfile that is not built yet (any other reference must already be there)."""
    if dockerfile:
        tag = custom_agent(Path(dockerfile), progress=progress, detail=detail, client=client)
        return AgentImage(tag, True)
    spec = bundled_for(image)
    if spec is not None:
        return AgentImage(ensure(spec, progress=progress, detail=detail, client=client)[0], True)
    return AgentImage(image, False)
