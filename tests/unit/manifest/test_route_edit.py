"""`add_routes`: a route written into a manifest's text, the rest of it byte for byte.

The operator's comments, quoting and indentation survive; the route lands in the bottle
it was asked for (copying the parent's list when the bottle inherited its routes through
`extends`, since a child's list replaces its parent's whole); a route already allowed is
not written twice, a near one is widened; a result the loader refuses is never returned.
"""

from __future__ import annotations

import difflib

import pytest

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import parse_manifest
from bot_bottle.manifest.model import LIMITS, RouteSpec
from bot_bottle.manifest.route_edit import add_routes

STARTER = """\
# my project's bottle: keep this comment
bottles:
  dev:
    agent_provider:
      template: command            # a trailing comment
      command: [python3, /workspace/agent.py]
    egress:
      routes:
        # the registry, read only
        - host: registry.npmjs.org
          methods: [GET]
        # - host: api.github.com
        #   path_allowlist: [/repos/your-org/]
    workspace: mount              # mount | copy | none
agents:
  coder:
    bottle: dev
    prompt: |
      Do the task.
"""

GRANT = RouteSpec(host="api.example.test", port=8443, path_allowlist=["/v1/"], methods=["GET"])


def routes_of(text: str, bottle: str) -> list[RouteSpec]:
    return parse_manifest(text).bottles[bottle].egress.routes


def removed_lines(old: str, new: str) -> list[str]:
    """Lines of `old` missing from `new`, in order: an edit that only adds has none."""
    a, b = old.splitlines(), new.splitlines()
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    return [a[i] for tag, i1, i2, _j1, _j2 in ops if tag != "equal" for i in range(i1, i2)]


def test_a_route_is_appended_and_every_comment_and_line_kept() -> None:
    edit = add_routes(STARTER, "dev", [GRANT], comment="granted r-1a2b3c4d by alice")
    assert removed_lines(STARTER, edit.text) == []
    assert routes_of(edit.text, "dev")[-1] == GRANT
    assert len(routes_of(edit.text, "dev")) == 2
    new = edit.text.splitlines()
    added = [new[i - 1] for i in edit.lines]
    assert added == [
        "        # granted r-1a2b3c4d by alice",
        "        - host: api.example.test",
        "          port: 8443",
        "          path_allowlist: [/v1/]",
        "          methods: [GET]",
    ]
    # After the last route, before the commented-out example that followed it.
    assert new.index("        - host: api.example.test") < new.index(
        "        # - host: api.github.com"
    )


def test_flow_style_lists_stay_flow_and_an_empty_one_fills() -> None:
    text = "bottles:\n  b:\n    egress: {routes: [], hosts: {a.test: 127.0.0.1}}\n" \
        "agents:\n  a: {bottle: b}\n"  # fmt: skip
    edit = add_routes(text, "b", [GRANT])
    assert routes_of(edit.text, "b") == [GRANT]
    assert edit.text.count("\n") == text.count("\n")
    assert "hosts: {a.test: 127.0.0.1}" in edit.text
    text2 = "bottles:\n  b:\n    egress:\n      routes: [{host: x.test}]  # one\n" \
        "agents:\n  a: {bottle: b}\n"  # fmt: skip
    edit2 = add_routes(text2, "b", [GRANT])
    assert [r.host for r in routes_of(edit2.text, "b")] == ["x.test", "api.example.test"]
    assert "# one" in edit2.text


def test_an_empty_flow_list_in_a_block_becomes_a_block_list() -> None:
    text = "bottles:\n  b:\n    egress:\n      routes: []   # none yet\n      hosts: {}\n" \
        "agents:\n  a: {bottle: b}\n"  # fmt: skip
    edit = add_routes(text, "b", [GRANT], comment="granted r-1")
    assert routes_of(edit.text, "b") == [GRANT]
    assert edit.text.splitlines()[3:6] == [
        "      routes:   # none yet",
        "        # granted r-1",
        "        - host: api.example.test",
    ]


def test_a_bottle_without_egress_gets_one() -> None:
    text = "bottles:\n  b:\n    backend: namespace  # why\n  c:\n    backend: docker\n" \
        "agents:\n  a: {bottle: b}\n"  # fmt: skip
    edit = add_routes(text, "b", [GRANT])
    assert routes_of(edit.text, "b") == [GRANT]
    assert routes_of(edit.text, "c") == []
    assert removed_lines(text, edit.text) == []
    flow = "bottles:\n  b: {backend: namespace}\nagents:\n  a: {bottle: b}\n"
    assert routes_of(add_routes(flow, "b", [GRANT]).text, "b") == [GRANT]


def test_extends_the_route_goes_to_the_bottle_asked_for_not_its_parent() -> None:
    text = """\
bottles:
  base:
    egress:
      routes:
        - host: pypi.org   # the parent's own
          methods: [GET]
  dev:
    extends: base
  other:
    extends: base
agents:
  a: {bottle: dev}
"""
    edit = add_routes(text, "dev", [GRANT])
    m = parse_manifest(edit.text)
    # The child inherited its routes: its own list now carries the parent's and the new
    # one (a child's list replaces its parent's whole), and nobody else gains anything.
    assert [r.host for r in m.bottles["dev"].egress.routes] == ["pypi.org", "api.example.test"]
    assert [r.host for r in m.bottles["base"].egress.routes] == ["pypi.org"]
    assert [r.host for r in m.bottles["other"].egress.routes] == ["pypi.org"]
    assert any("copied" in n and "base" in n for n in edit.notes), edit.notes
    assert removed_lines(text, edit.text) == []


def test_a_parent_gaining_a_route_names_the_children_that_inherit_it() -> None:
    text = "bottles:\n  base:\n    egress: {routes: [{host: pypi.org}]}\n  dev: {extends: base}\n" \
        "agents:\n  a: {bottle: base}\n"  # fmt: skip
    edit = add_routes(text, "base", [GRANT])
    assert [r.host for r in routes_of(edit.text, "dev")] == ["pypi.org", "api.example.test"]
    assert any("dev" in n and "inherit" in n for n in edit.notes), edit.notes


def test_a_route_already_allowed_is_not_written_twice() -> None:
    text = "bottles:\n  b:\n    egress:\n      routes:\n        - host: api.example.test\n" \
        "          port: 8443\nagents:\n  a: {bottle: b}\n"  # fmt: skip
    edit = add_routes(text, "b", [GRANT])
    assert edit.text == text and edit.lines == ()
    assert any("already" in n for n in edit.notes), edit.notes
    twice = add_routes(STARTER, "dev", [GRANT, GRANT])
    assert [r.host for r in routes_of(twice.text, "dev")].count("api.example.test") == 1


def test_a_near_route_is_widened_rather_than_duplicated() -> None:
    text = """\
bottles:
  b:
    egress:
      routes:
        - host: api.example.test
          port: 8443
          path_allowlist:
            - /v0/   # old API
          methods: [GET]
        - host: api.example.test
          port: 8443
          path_allowlist: [/v1/]
          methods: [POST]
agents:
  a: {bottle: b}
"""
    edit = add_routes(text, "b", [GRANT])  # GET /v1/: same methods as the first one
    routes = routes_of(edit.text, "b")
    assert len(routes) == 2
    assert routes[0].path_allowlist == ["/v0/", "/v1/"] and routes[0].methods == ["GET"]
    assert "# old API" in edit.text
    post = add_routes(text, "b", [GRANT.model_copy(update={"methods": ["PUT"]})])
    assert [r.methods for r in routes_of(post.text, "b")] == [["GET"], ["POST", "PUT"]]
    assert removed_lines(text, post.text) == ["          methods: [POST]"]


def test_a_route_with_a_credential_is_never_widened() -> None:
    text = """\
bottles:
  b:
    egress:
      routes:
        - host: api.example.test
          port: 8443
          path_allowlist: [/v0/]
          methods: [GET]
          auth: {scheme: Bearer, token_ref: TOKEN}
agents:
  a: {bottle: b}
"""
    routes = routes_of(add_routes(text, "b", [GRANT]).text, "b")
    assert routes[0].path_allowlist == ["/v0/"] and routes[0].auth is not None
    assert routes[1] == GRANT


def test_an_invalid_result_is_refused() -> None:
    full = "bottles:\n  b:\n    egress:\n      routes:\n" + "".join(
        f"        - host: h{i}.test\n" for i in range(LIMITS["routes"])
    ) + "agents:\n  a: {bottle: b}\n"  # fmt: skip
    with pytest.raises(ManifestError, match="nothing was written"):
        add_routes(full, "b", [GRANT])
    with pytest.raises(ManifestError, match="no bottle named 'nope'"):
        add_routes(STARTER, "nope", [GRANT])
    bad = "bottles:\n  b:\n    egress:\n      routes:\n"  # null routes: refused, not guessed
    with pytest.raises(ManifestError):
        add_routes(bad + "agents:\n  a: {bottle: b}\n", "b", [GRANT])


def test_hostile_values_stay_values() -> None:
    """A path from the agent is quoted as YAML needs; it cannot add a key or a line."""
    for path in ("/x:{a,[b]}&'\"", "/x: 1\n  auth: {scheme: Bearer, token_ref: T} #"):
        sneaky = RouteSpec(host="api.example.test", path_allowlist=[path])
        edit = add_routes(STARTER, "dev", [sneaky])
        assert routes_of(edit.text, "dev")[-1] == sneaky
        assert all(r.auth is None for r in routes_of(edit.text, "dev"))
