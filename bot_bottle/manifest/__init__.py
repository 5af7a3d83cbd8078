"""The manifest: schema, loading, validation and JSON Schema export."""

from bot_bottle.manifest.loader import LoadedManifest, load_manifest, manifest_path, parse_manifest
from bot_bottle.manifest.model import AgentSpec, BottleSpec, Manifest

__all__ = [
    "AgentSpec",
    "BottleSpec",
    "LoadedManifest",
    "Manifest",
    "load_manifest",
    "manifest_path",
    "parse_manifest",
]
