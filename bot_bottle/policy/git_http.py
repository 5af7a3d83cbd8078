"""Git smart-HTTP push detection.

Pushes must go through the git gate, which scans the commits before forwarding
them with the host's credentials; egress denies a push sent straight to a git
host, whatever spelling the agent gives it.
"""

from __future__ import annotations

from urllib.parse import unquote

_SERVICE = "git-receive-pack"


def is_git_receive_pack(method: str, path: str, query: str) -> bool:
    """True for the two requests of a smart-HTTP push.

    `POST .../git-receive-pack` sends the pack (any method on that path is treated
    as a push); `GET .../info/refs?service=git-receive-pack` starts it.
    Matching is on the fully percent-decoded, case-folded form, because servers
    differ in how much they decode and fold; a false positive only costs a read
    that was never a push.
    """
    # Any method counts for the pack endpoint: only POST pushes, but nothing legitimate
    # uses that path, and servers that route on the path alone would accept a push.
    del method
    segments = [seg.split(";", 1)[0].strip() for seg in _fold(path).split("/")]
    if _SERVICE in segments:
        return True
    if "refs" in segments and "info" in segments:
        return _SERVICE in _fold(query)
    return False


def _fold(text: str) -> str:
    """Decode percent-escapes until stable (double encoding included) and lowercase."""
    prev = None
    out = text
    for _ in range(8):
        if out == prev:
            break
        prev, out = out, unquote(out)
    return out.replace("\\", "/").lower()
