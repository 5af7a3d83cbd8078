"""`bot-bottle images ...` (bootstrap, build, ls) and `bot-bottle gc`."""

from __future__ import annotations

import json
from pathlib import Path

import click

ca_option = click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Extra CA bundle (PEM) trusted while fetching packages during builds; "
    "defaults to the host's trust store.",
)


@click.group()
def images() -> None:
    """Build and list the images the docker backend (and the microVM guest) runs."""


@images.command()
@click.option("--mirror", default=None, help="Debian mirror (default: the host's apt source).")
@ca_option
@click.option("--force", is_flag=True, help="Rebuild even if the base image exists.")
def bootstrap(mirror: str | None, ca_bundle: Path | None, force: bool) -> None:
    """Make debian:bookworm-slim from Debian packages (for hosts with no registry)."""
    from bot_bottle.images.bootstrap import bootstrap as run
    from bot_bottle.images.progress import LiveLines

    lines = LiveLines()
    done = run(progress=lines, detail=lines.detail, mirror=mirror, ca_bundle=ca_bundle,
               force=force)  # fmt: skip
    lines.done()
    click.echo(done)


@images.command()
@ca_option
@click.argument("names", nargs=-1)
def build(ca_bundle: Path | None, names: tuple[str, ...]) -> None:
    """Build the bundled images (all, or NAMES); cached by content digest."""
    from bot_bottle.images.build import build_all
    from bot_bottle.images.progress import LiveLines

    lines = LiveLines()  # progress on stderr; the result lines stay on stdout
    for line in build_all(names, ca_bundle=ca_bundle, progress=lines, detail=lines.detail):
        lines.done()
        click.echo(line)


@images.command("ls")
@click.option("--json", "as_json", is_flag=True)
def ls_images(as_json: bool) -> None:
    """The bundled images, their current tags and whether each is built."""
    from bot_bottle.images.build import status

    rows = status()
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    for r in rows:
        click.echo(f"{r.name:<14} {'built  ' if r.built else 'missing'} {r.tag}")


@images.command()
@click.option("--boot-only", is_flag=True, help="Only the kernel and initramfs (no Docker).")
@click.option("--image", "names", multiple=True, metavar="NAME",
              help="The bundled agent image whose root to make: general, claude or codex "
              "(repeatable; default general).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
def guest(boot_only: bool, names: tuple[str, ...], as_json: bool) -> None:
    """Build (if missing) and list the microVM guest: kernel, initramfs, root images."""
    from bot_bottle.images.build import BUNDLED
    from bot_bottle.images.guest.store import ensure_boot, ensure_root_for
    from bot_bottle.images.progress import LiveLines

    roles = [n.removeprefix("agent-") for n in BUNDLED]
    for name in names:
        if name not in roles:
            raise click.BadParameter(f"{name!r} is not one of {', '.join(roles)}",
                                     param_hint="--image")  # fmt: skip
    lines = LiveLines()
    _, rows = ensure_boot(progress=lines)
    if not boot_only:
        for name in dict.fromkeys(names or ("general",)):
            rows.append(ensure_root_for(name, progress=lines, detail=lines.detail))
    lines.done()
    if as_json:
        out = [{"name": r.name, "path": str(r.path), "built": r.built,
                "size": r.path.stat().st_size} for r in rows]  # fmt: skip
        click.echo(json.dumps(out, indent=2))
        return
    for r in rows:
        size = f"{r.path.stat().st_size >> 20} MB"
        click.echo(f"{r.name:<40} {'built     ' if r.built else 'up to date'} {size:>7} {r.path}")


@images.command()
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def prune(dry_run: bool) -> None:
    """Remove microVM guest artefacts no launch would use again: kernels and initramfs
    other than the current package's, roots of images no longer built or held."""
    from bot_bottle.executor import ProcessExecutor
    from bot_bottle.images.guest import prune as guest_prune
    from bot_bottle.images.guest.store import cache_dir

    old = guest_prune.stale(cache_dir(), ProcessExecutor())
    if not dry_run:
        guest_prune.remove(old)
    verb = "would remove" if dry_run else "removed"
    for s in old:
        click.echo(f"{verb} {s.path}  ({s.reason})")
    if not old:
        click.echo("nothing to prune")


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True)
def gc(dry_run: bool, as_json: bool) -> None:
    """Remove what crashed launches left behind: containers, networks, volumes, state."""
    from bot_bottle.backends.docker.gc import collect

    removed = collect(dry_run=dry_run)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in removed], indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for r in removed:
        click.echo(f"{verb} {r.kind} {r.name}  ({r.reason})")
    if not removed:
        click.echo("nothing to collect")
