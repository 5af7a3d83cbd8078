"""The host's Debian apt sources, read so a bootstrapped base image uses the same mirror.

Hosts without a public registry (and corporate networks) reach Debian through a mirror
the operator already configured for apt; hardcoding a public URL would fail there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot_bottle.errors import BackendUnavailable


@dataclass(frozen=True)
class AptSource:
    """One `deb` line: a mirror URI, a suite and its components."""

    uri: str
    suite: str
    components: tuple[str, ...]

    def line(self) -> str:
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def parse_one_line(text: str) -> list[AptSource]:
    """`deb [opts] URI SUITE COMPONENT...` lines (sources.list format)."""
    out = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            out.append(AptSource(words[0], words[1], tuple(words[2:])))
    return out


def parse_deb822(text: str) -> list[AptSource]:
    """Stanzas of `Types: / URIs: / Suites: / Components:` (`.sources` format)."""
    out = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0].isspace() and key:
                fields[key] += " " + raw.strip()
            elif ":" in raw:
                key, _, value = raw.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        comps = tuple(fields.get("components", "").split())
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                out.append(AptSource(uri, suite, comps))
    return out


def host_sources(root: Path = Path("/")) -> list[AptSource]:
    """Every enabled `deb` source in the host's apt configuration under `root`."""
    etc = root / "etc/apt"
    out: list[AptSource] = []
    main = etc / "sources.list"
    if main.is_file():
        out += parse_one_line(main.read_text(errors="replace"))
    d = etc / "sources.list.d"
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if f.suffix == ".list":
                out += parse_one_line(f.read_text(errors="replace"))
            elif f.suffix == ".sources":
                out += parse_deb822(f.read_text(errors="replace"))
    return out


def suite_sources(sources: list[AptSource], suite: str) -> list[AptSource]:
    """The sources for `suite` and its companions (`-updates`, `-security`), in order."""
    wanted = {suite, f"{suite}-updates", f"{suite}-security", f"{suite}/updates"}
    return [s for s in sources if s.suite in wanted]


def mirror_for(sources: list[AptSource], suite: str) -> str:
    """The mirror URI that serves `suite` itself (what debootstrap needs)."""
    for s in sources:
        if s.suite == suite and "main" in s.components:
            return s.uri
    raise BackendUnavailable(
        f"no apt source for Debian {suite!r} main on this host",
        f"add a `deb <mirror> {suite} main` line to /etc/apt/sources.list, or pass --mirror",
    )
