"""Running git as values: one repository, one environment, argv in, bytes out."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class GitFailed(Exception):
    """A git command exited non-zero; `stderr` is git's own words."""

    def __init__(self, argv: tuple[str, ...], code: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv[:4])}... exited {code}: {stderr.strip()}")
        self.argv, self.code, self.stderr = argv, code, stderr


class ObjectTooLarge(Exception):
    """An object bigger than the caller is prepared to hold in memory."""

    def __init__(self, oid: str, size: int, limit: int) -> None:
        super().__init__(
            f"object {oid[:12]} is {size:,} bytes, over the {limit:,} the gate reads whole"
        )


@dataclass(frozen=True)
class Git:
    """`git` against one repository (`GIT_DIR`) with an explicit environment."""

    repo: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def argv(self, *args: str) -> tuple[str, ...]:
        return ("git", "--git-dir", str(self.repo), *args)

    def run(
        self, *args: str, check: bool = True, stdin: bytes | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[bytes]:
        argv = self.argv(*args)
        p = subprocess.run(
            argv, env=dict(self.env), input=stdin, capture_output=True, timeout=timeout
        )
        if check and p.returncode != 0:
            raise GitFailed(argv, p.returncode, p.stderr.decode(errors="replace"))
        return p

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.decode(errors="replace").strip()

    def ok(self, *args: str) -> bool:
        return self.run(*args, check=False).returncode == 0

    def stream(self, *args: str) -> subprocess.Popen[bytes]:
        """Start git with stdout piped (for `git log -p` over many commits)."""
        return subprocess.Popen(
            self.argv(*args), env=dict(self.env), stdout=subprocess.PIPE, bufsize=1 << 16
        )

    def objects(
        self, oids: Sequence[str], max_size: int | None = None
    ) -> Iterator[tuple[str, str, bytes]]:
        """(oid, type, raw content) of each object, in order, from one
        `git cat-file --batch`; raises `GitFailed` for a missing object and
        `ObjectTooLarge` for one over `max_size` bytes (before reading it)."""
        argv = self.argv("cat-file", "--batch")
        p = subprocess.Popen(
            argv, env=dict(self.env), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert p.stdin is not None and p.stdout is not None
        stdin, stdout = p.stdin, p.stdout

        def feed() -> None:  # a thread, so a long list cannot deadlock against the output
            try:
                stdin.write(b"".join(oid.encode("ascii") + b"\n" for oid in oids))
            except BrokenPipeError:
                pass
            finally:
                stdin.close()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            for oid in oids:
                header = stdout.readline().split()
                if len(header) != 3:
                    raise GitFailed(
                        argv, -1, f"{oid}: {b' '.join(header).decode(errors='replace')}"
                    )
                size = int(header[2])
                if max_size is not None and size > max_size:
                    raise ObjectTooLarge(oid, size, max_size)
                data = stdout.read(size)
                stdout.read(1)
                yield header[0].decode("ascii"), header[1].decode("ascii"), data
        finally:
            stdout.close()
            p.kill()
            p.wait()
            writer.join()
