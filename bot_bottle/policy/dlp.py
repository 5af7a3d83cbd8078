"""Secret detectors: one library for egress DLP and the git gate's commit scanner.

A `Scanner` finds known values (sidecar-held tokens, protected host env values,
canaries) in their common encodings, and well-known credential formats. It
reports a fingerprint of what it found, never the secret itself, so findings are
safe to log and to put in a 403 body.

Speed comes from anchoring: every built-in detector starts with a literal, and one
Hyperscan pass over the input finds all of those anchors and every encoded form
of every known value at once. The precise checks (the detector's regex, entropy,
JWT header decoding) then run only at those candidate offsets.

Longer than 300 lines: the anchor pass and the precise checks share the candidate
offsets and the known values' forms; the detectors themselves are in `detectors.py`.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

# Why a C automaton: the egress sidecar scans every request body before it is
# forwarded, so the scan is on the upload path and must cost a fraction of what
# mitmproxy itself spends per MiB (~13 ms). One `re`/`bytes.find` pass per anchor
# and per encoded value (the former design) ran at ~110 MB/s; pure-Python
# multi-pattern search is slower still, and pyahocorasick (~80 MB/s) and RE2
# (~600 MB/s, a byte-at-a-time DFA) were measured too. Hyperscan matches a set of
# literals and small regexes in one SIMD pass at a few GB/s, with case-insensitive
# literals and start offsets built in; it has wheels for Linux and macOS.
import hyperscan

from bot_bottle.policy.decoding import (
    DECODERS,
    MAX_DEPTH,
    MAX_SIGNS,
    QP_SIGN,
    REPEATABLE,
    WINDOW,
    EncodedAnchor,
    PercentSigns,
    b64_forms,
    encoded_anchors,
    json_sign,
    run_views,
    sign_codes,
    windows,
)
from bot_bottle.policy.detectors import ALNUM, BUILTIN, Detector
from bot_bottle.policy.patterns import flags as pattern_flags
from bot_bottle.policy.patterns import pattern_error

# Values shorter than this are ignored: short strings ("admin", "1234") occur in
# ordinary traffic, so matching them would block legitimate requests, and a 48-bit
# fingerprint of a short value could be brute-forced back out of the audit log.
MIN_EXACT_LEN = 8


@dataclass(frozen=True)
class Finding:
    """One secret found: which detector, a log-safe fingerprint, and where (in the input's units)."""

    detector: str
    fingerprint: str
    start: int
    end: int


def fingerprint(secret: bytes) -> str:
    """First 12 hex digits of sha256: enough to correlate findings, not to recover a secret."""
    return hashlib.sha256(secret).hexdigest()[:12]


def _b64_cores(value: bytes) -> set[bytes]:
    """Base64 substrings that appear wherever `value` is embedded in a base64 stream.

    The value can start at any of three byte alignments (`user:token` in a Basic
    header shifts it), so each alignment yields the characters that depend only on
    the value; the mixed characters at either end are dropped.
    """
    return b64_forms(value, MIN_EXACT_LEN)


@dataclass(frozen=True)
class _Exact:
    """One searchable form of a known value; `caseless` forms are matched in any letter case."""

    detector: str
    needle: bytes
    caseless: bool
    fingerprint: str


@dataclass(frozen=True)
class _Custom:
    """An operator pattern (compiled by Hyperscan: linear time whatever the pattern)."""

    detector: str
    expr: bytes


@dataclass(frozen=True)
class _Sign:
    """A sign that the text around it is percent-, JSON- or QP-encoded."""

    kind: str
    expr: bytes
    caseless: bool


def _exact_forms(detector: str, value: str) -> list[_Exact]:
    raw = value.encode("utf-8", "surrogatepass")
    fp = fingerprint(raw)
    plain = {raw, raw.replace(b"/", b"\\/")} | _b64_cores(raw)
    # Percent-escape and hex digits may come in either case, so these match in any case.
    pct = {quote(value, safe="").encode().lower(), quote_plus(value, safe="").encode().lower()}
    pct.add(binascii.hexlify(raw))
    forms = [_Exact(detector, n, False, fp) for n in sorted(plain)]
    forms += [_Exact(detector, n, True, fp) for n in sorted(pct - {raw.lower()})]
    return forms


def _literal(needle: bytes) -> bytes:
    """`needle` as a Hyperscan expression: letters and digits as is, every other byte as `\\xHH`."""
    return b"".join(bytes((c,)) if c in ALNUM else b"\\x%02x" % c for c in needle)


_Target = _Exact | Detector | _Custom | _Sign | EncodedAnchor


@dataclass
class _Found:
    """What one Hyperscan pass found: candidates by start offset, then signs of encodings."""

    candidates: list[tuple[int, int, _Target]]
    signs: dict[str, list[tuple[int, int]] | None]
    encoded: list[tuple[int, int, EncodedAnchor]]


class _Anchors:
    """One compiled Hyperscan database: every anchor of every target, found in one pass."""

    def __init__(self, targets: Sequence[_Target]) -> None:
        exprs: list[bytes] = []
        flags: list[int] = []
        ids: list[_Target] = []
        for t in targets:
            if isinstance(t, _Exact | EncodedAnchor):
                pairs = [(_literal(t.needle), t.caseless)]
            elif isinstance(t, _Custom):
                pairs = [(t.expr, False)]
            elif isinstance(t, _Sign):
                pairs = [(t.expr, t.caseless)]
            else:
                pairs = [(a, t.caseless) for a in t.anchors]
            for expr, caseless in pairs:
                exprs.append(expr)
                if isinstance(t, _Custom):
                    flags.append(pattern_flags())
                else:
                    flags.append(
                        hyperscan.HS_FLAG_SOM_LEFTMOST
                        | (hyperscan.HS_FLAG_CASELESS if caseless else 0)
                    )
                ids.append(t)
        self._targets = tuple(ids)
        self._db: hyperscan.Database | None = None
        if exprs:
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self._db.compile(
                expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags
            )

    def find(self, buf: bytes, *, stop_at_exact: bool) -> _Found:
        """Candidates in order of start offset; stops early at a known value if asked."""
        found = _Found([], {}, [])
        if self._db is None or not buf:
            return found
        targets = self._targets
        candidates, signs, encoded = found.candidates, found.signs, found.encoded

        def on_match(i: int, start: int, end: int, flags: int, ctx: object) -> bool:
            target = targets[i]
            if isinstance(target, _Sign):
                at = signs.setdefault(target.kind, [])
                if at is not None:
                    at.append((start, end))
                    if len(at) > MAX_SIGNS:
                        signs[target.kind] = None  # too many: decode the whole buffer
                return False
            if isinstance(target, EncodedAnchor):
                encoded.append((start, end, target))
                return False
            candidates.append((start, end, target))
            return stop_at_exact and isinstance(target, _Exact | _Custom)

        # A callback returning True ends the scan by raising ScanTerminated.
        with contextlib.suppress(hyperscan.ScanTerminated):
            self._db.scan(buf, match_event_handler=on_match)
        candidates.sort(key=lambda c: c[0])
        return found


class Scanner:
    """Finds secrets in bytes or text. Built once per policy; `scan`/`first` are pure.

    Text that looks percent-, JSON-, quoted-printable-, base64- or hex-encoded is
    decoded (around where it looks so, up to `MAX_DEPTH` layers deep) and scanned
    again; a finding inside a decoded view is reported at the span it was decoded from.
    """

    def __init__(
        self,
        *,
        exact: Mapping[str, str] = {},
        canaries: Sequence[str] = (),
        patterns: Sequence[str] = (),
        builtin: bool = True,
    ) -> None:
        values = [(label, v) for label, v in exact.items()] + [("canary", c) for c in canaries]
        kept = [v for _, v in values if isinstance(v, str) and len(v) >= MIN_EXACT_LEN]
        exact_forms = [
            form
            for label, v in values
            if isinstance(v, str) and len(v) >= MIN_EXACT_LEN
            for form in _exact_forms(label, v)
        ]
        for i, p in enumerate(patterns):
            error = pattern_error(p)
            if error is not None:
                raise ValueError(f"dlp.patterns[{i}]: {error}")
        custom = [_Custom(f"custom:{i}", p.encode("utf-8")) for i, p in enumerate(patterns)]
        detectors = BUILTIN if builtin else ()
        literal = [a for d in detectors if not d.caseless for a in d.anchors]
        codes = sign_codes(v.encode("utf-8", "surrogatepass") for v in kept)
        self._percent = PercentSigns.build(codes)
        found_signs = [_Sign("json", json_sign(codes), True), _Sign("qp", QP_SIGN, True)]
        self._anchors = _Anchors(
            [*exact_forms, *detectors, *custom, *found_signs, *encoded_anchors(literal)]
        )
        # A known value percent-encodes to at most three times its length.
        longest = max((len(v.encode("utf-8", "surrogatepass")) for v in kept), default=0)
        self._width = max(WINDOW, 3 * longest + 8)

    def scan(self, data: bytes | str) -> list[Finding]:
        """Every finding, ordered by position."""
        buf = _as_bytes(data)
        found = sorted(
            set(self._search(buf, stop_at_first=False, depth=0)), key=lambda f: (f.start, f.end)
        )
        return [_to_text_offsets(data, buf, f) for f in found] if isinstance(data, str) else found

    def first(self, data: bytes | str) -> Finding | None:
        """Some finding, or None: stops at the first hit (known values are checked first)."""
        buf = _as_bytes(data)
        for f in self._search(buf, stop_at_first=True, depth=0):
            return _to_text_offsets(data, buf, f) if isinstance(data, str) else f
        return None

    def _search(
        self, buf: bytes, *, stop_at_first: bool, depth: int, undone: frozenset[str] = frozenset()
    ) -> list[Finding]:
        found = self._anchors.find(buf, stop_at_exact=stop_at_first)
        out = self._confirm(buf, found.candidates, stop_at_first)
        if (out and stop_at_first) or depth >= MAX_DEPTH:
            return out
        for kind, lo, hi, view in self._views(buf, found, undone - REPEATABLE):
            chain = undone | {kind}
            for f in self._search(view, stop_at_first=stop_at_first, depth=depth + 1, undone=chain):
                out.append(Finding(f.detector, f.fingerprint, lo, hi))
                if stop_at_first:
                    return out
        return out

    def _confirm(
        self, buf: bytes, candidates: list[tuple[int, int, _Target]], stop_at_first: bool
    ) -> list[Finding]:
        out: list[Finding] = []
        if stop_at_first:
            # A known value or operator pattern is the more precise report: it wins.
            for s, _, t in candidates:
                if isinstance(t, _Exact):
                    return [Finding(t.detector, t.fingerprint, s, s + len(t.needle))]
            for s, e, t in candidates:
                if isinstance(t, _Custom):
                    return [Finding(t.detector, fingerprint(buf[s:e]), s, e)]
        seen_custom: set[tuple[str, int]] = set()
        for start, end, target in candidates:
            if isinstance(target, _Exact):
                out.append(
                    Finding(target.detector, target.fingerprint, start, start + len(target.needle))
                )
                continue
            if isinstance(target, _Custom):
                # Hyperscan reports every end of a match; the first one names the secret.
                if (target.detector, start) not in seen_custom:
                    seen_custom.add((target.detector, start))
                    out.append(Finding(target.detector, fingerprint(buf[start:end]), start, end))
                continue
            if not isinstance(target, Detector):
                continue
            m = target.regex.match(buf, start)
            hit = target.verify(buf, m) if m is not None else None
            if hit is not None:
                name, s, e = hit
                out.append(Finding(name, fingerprint(buf[s:e]), s, e))
                if stop_at_first:
                    return out
        return out

    def _views(
        self, buf: bytes, found: _Found, skip: frozenset[str]
    ) -> Iterator[tuple[str, int, int, bytes]]:
        """(kind, lo, hi, decoded bytes of buf[lo:hi]) wherever an encoding was seen."""
        signs: dict[str, list[tuple[int, int]] | None] = dict(found.signs)
        at = self._percent.find(buf)
        if at != []:
            signs["percent"] = at
        for kind, at in signs.items():
            if kind in skip:
                continue
            decode = DECODERS[kind]
            # None: a sign without positions (qp), or too many to decode one by one.
            spans = [(0, len(buf))] if at is None else windows(at, len(buf), self._width)
            if sum(h - lo for lo, h in spans) > len(buf) // 2:
                spans = [(0, len(buf))]
            for lo, hi in spans:
                view = decode(buf[lo:hi])
                if view != buf[lo:hi]:
                    yield kind, lo, hi, view
        runs: list[tuple[int, int]] = []
        for s, e, anchor in found.encoded:
            if anchor.kind in skip or any(lo <= s and e <= hi for lo, hi in runs):
                continue  # that run is decoded already
            lo, hi, views = run_views(anchor.kind, buf, s, e)
            runs.append((lo, hi))
            for view in views:
                yield anchor.kind, lo, hi, view


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)


def _to_text_offsets(text: str, buf: bytes, f: Finding) -> Finding:
    if len(buf) == len(text):  # ASCII: byte and character offsets agree
        return f

    def char_at(i: int) -> int:
        return len(buf[:i].decode("utf-8", "ignore"))

    return Finding(f.detector, f.fingerprint, char_at(f.start), char_at(f.end))
