"""The manifest: schema (`model`), loading and validation (`loader`).

Import from the submodules: this package stays empty so that code which only needs
a manifest's path or a cached plan never imports PyYAML and pydantic.
"""
