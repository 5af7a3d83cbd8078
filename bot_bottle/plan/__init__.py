"""Resolving a manifest into a `BottlePlan` (`resolver`), a plan into per-launch inputs
(`materialize`), and caching plans (`cache`). Import from the submodules: this package
stays empty so that loading a cached plan never imports the schema."""
