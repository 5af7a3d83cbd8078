"""The launcher's lifeline to its Docker bottle: a Unix socket the launcher listens on and
never accepts from, in the (bind-mounted) sockets directory. The container's main
process connects to it before it reports ready and blocks reading it; when the launcher
dies, however it dies (SIGKILL and the OOM killer run no cleanup), the kernel closes the
listener, the main process reads EOF and exits, and Docker stops the container with
every process the agent started in it. Without this, `docker exec`'d agents outlived a
killed launcher, with their network (the sidecars run in their own sessions), while
`bot-bottle ls` called the bottle exited.

The namespace backend needs none of this: bwrap's `--die-with-parent` and PID namespace
take the sandbox down with the launcher.
"""

from __future__ import annotations

import socket
from pathlib import Path

from bot_bottle import unix_socket

NAME = "launcher.sock"
# The container's main process after the forwarder: connect, say ready, wait for EOF.
HOLD = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_UNIX)\n"
    "s.connect(sys.argv[1])\n"
    "print(sys.argv[2],flush=True)\n"
    "try:\n s.recv(1)\n"
    "except OSError:\n pass\n"  # ECONNRESET: a never-accepted connection is reset
)


def listen(directory: Path) -> socket.socket:
    """Listen on `directory`/NAME (replacing a stale one), for the life of this process."""
    return unix_socket.listen(directory / NAME)
