"""Whether the images a Docker launch needs are there, asked without building any."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot_bottle.errors import BackendUnavailable, BotBottleError
from bot_bottle.images.bootstrap import BASE_TAG
from bot_bottle.images.build import (
    BUNDLED,
    ImageSpec,
    custom_base,
    host_ca_bundle,
    image_exists,
    tag_for,
)

if TYPE_CHECKING:
    import docker


def bundled_for(image: str) -> ImageSpec | None:
    """The bundled image a plan's `image` names, by role ("claude", "codex", "general")
    or by image name; None for any other image reference (used as given)."""
    name = (image or "general").removeprefix("bot-bottle/")
    for candidate in (f"agent-{name}", name):
        if candidate in BUNDLED:
            return BUNDLED[candidate]
    return None


def readiness(
    image: str, dockerfile: str, client: docker.DockerClient
) -> tuple[list[BotBottleError], list[str]]:
    """What a launch would meet getting its agent image, without building anything:
    blockers (a Dockerfile that is not there, a bundled image whose base is missing on
    a host with no registry, an image reference the engine lacks) and notes (an image
    the launch builds first, which takes minutes)."""
    if dockerfile:
        path = Path(dockerfile)
        if not path.is_file():
            return [BackendUnavailable(f"agent_provider.dockerfile {path} does not exist",
                                       "fix the path in the manifest")], []  # fmt: skip
        base = custom_base(path)
        if image_exists(tag_for(base, host_ca_bundle().read_bytes()), client):
            return [], []
        return [], [f"the first launch builds {path} (`bot-bottle run` shows its progress)"]
    spec = bundled_for(image)
    if spec is None:
        if image_exists(image, client):
            return [], []
        return [BackendUnavailable(f"image {image} is not on the Docker engine",
                                   f"`docker pull {image}` or build it first")], []  # fmt: skip
    tag = tag_for(spec, host_ca_bundle().read_bytes())
    if image_exists(tag, client):
        return [], []
    if not image_exists(BASE_TAG, client):
        return [BackendUnavailable(
            f"image {tag} is not built, and its base {BASE_TAG} is not on the engine "
            "(there is no registry to pull it from)",
            "`bot-bottle images bootstrap`, then `bot-bottle images build`",
        )], []  # fmt: skip
    return [], [f"the first launch builds {tag} (minutes; `bot-bottle images build` does it now)"]
