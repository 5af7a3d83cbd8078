"""Every rule a policy check can deny by, in one table: stable id -> what it guards ->
how the operator allows what it denied.

The id is what the audit log and the 403 body name (a stable reference, as pip's
`DiagnosticPipError.reference`); a `Decision` may carry a more precise hint of its
own (the exact route, port or path), and otherwise the 403 body says the rule's.
A test holds the code to the table: every id a `Decision` is made with is here.
"""

from __future__ import annotations

from dataclasses import dataclass

BUG = "report this as a bot-bottle bug (the check failed closed)"


@dataclass(frozen=True)
class Rule:
    id: str
    guards: str
    hint: str


_TABLE = (
    # egress: which destination
    Rule("connect", "a CONNECT names a host no route declares",
         "add a route for this host to the bottle's egress.routes"),
    Rule("route", "a request names a host no route declares",
         "add a route for this host to the bottle's egress.routes"),
    Rule("port", "the host has routes, but none on this port or scheme",
         "declare the port (and `scheme: http` for cleartext) on the host's route"),
    Rule("path", "the route does not list this path prefix",
         "add this path prefix to the route's paths"),
    Rule("path-rejected", "a path that cannot be normalized without guessing how the "
         "upstream reads it (`..`, encoded `/` or `.`, controls)",
         "send the path in its plain form: no `..` segments, no %2e, %2f or %5c"),
    Rule("method", "the route does not list this method, or it is not an HTTP token",
         "add this method to the route's methods"),
    Rule("host-mismatch", "the SNI, Host or :authority disagree with the CONNECT",
         "send the request to the same host you CONNECTed to (no domain fronting)"),
    Rule("resolve", "the host name did not resolve",
         "check the name; a host the sidecar's DNS cannot see goes in egress.hosts (name: IP)"),
    Rule("ssrf", "the address is private, loopback, link-local or metadata",
         "add the address to egress.ssrf_ip_allowlist if it really is intended"),
    Rule("local-client", "a connection that did not come through the bottle's socket",
         "connect through the bottle's egress proxy (HTTPS_PROXY)"),
    # egress: what is sent
    Rule("dlp", "a secret in what the agent sends",
         "remove the secret from the request; credentials are injected by the sidecar"),
    Rule("canary", "a decoy credential planted in the bottle",
         "none: a decoy credential planted in the bottle was sent out"),
    Rule("encoding", "a body the DLP scan cannot decode",
         "send the body uncompressed or as gzip, deflate, br or zstd"),
    Rule("header", "a header or request line the upstream could read differently",
         "send well-formed HTTP: header names are lowercase tokens, values have no controls"),
    Rule("protocol", "traffic the egress does not inspect (non-HTTP, unknown upgrades)",
         "use HTTP(S) through the proxy, or a tls_passthrough route"),
    Rule("git-push", "a git push over HTTPS, around the git gate",
         "push through the git gate (the bottle's git remote), not over HTTPS"),
    Rule("credential", "a route whose credential the sidecar does not hold",
         "give the launcher the host credential this route's token_ref names"),
    # supervise: the agent asking its operator
    Rule("supervise", "a request to the supervise endpoint that was malformed, too large "
         "or over the rate limit", "see the endpoint's error; `bot-bottle requests` lists "
         "what is waiting"),
    Rule("audit", "the audit log cannot take the request's record (disk full, file size "
         "limit, a write failed): nothing leaves unrecorded",
         "free space where the bottle's state lives (its audit.jsonl); requests pass again "
         "once it can be written, and `bot-bottle logs --verify SLUG` checks the log"),
    # git gate: ref rules
    Rule("git-ref-invalid", "a ref name git itself would refuse",
         "push to a valid ref name (see `git check-ref-format`)"),
    Rule("git-ref-not-allowed", "a ref outside the remote's allowed_refs",
         "add the ref (or a pattern) to git.remotes[].allowed_refs"),
    Rule("git-protected-delete", "deleting a protected ref", "delete it upstream, by hand"),
    Rule("git-protected-force", "a non-fast-forward push to a protected ref",
         "fetch, rebase or merge onto the remote branch, then push without --force"),
    # a check that raised: fail closed
    Rule("policy-error", "the route decision raised", BUG),
    Rule("internal", "a check raised", BUG),
)  # fmt: skip

RULES: dict[str, Rule] = {r.id: r for r in _TABLE}


def hint_for(rule: str) -> str:
    """How to allow what `rule` denied; an unknown id is a bot-bottle bug."""
    return RULES[rule].hint if rule in RULES else BUG
