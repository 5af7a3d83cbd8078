"""The git gate: the bottle's only way to a git remote.

It serves smart HTTP (`git http-backend`) from a bare mirror per remote, refreshed
from upstream with the host's credentials before every clone, fetch and push; a
pre-receive hook in the mirror checks the incoming commits and ref rules and, only
if they pass, forwards the push upstream. The agent holds remotes, never keys.
"""
