"""In-bottle init: expose sidecar Unix sockets on loopback, then exec the agent.

Runs inside the sandbox as `python3 -I -S forwarder.py PORT=SOCKET ... -- ARGV`.
It binds every listener *before* exec'ing the agent, so the agent can never race
a proxy that is not there yet (no sleeps, no polling). A forked child pumps bytes;
when the agent exits, bwrap tears down the PID namespace and the child with it.
If a sidecar is dead, connecting to its socket fails and the agent's connection
is closed: the bottle has no other route out (its network namespace has only lo).

Standard library only: it runs with no site dir on the host's /usr/bin/python3 in a
namespace bottle, and on the image's python3 as a Docker bottle's main process (there
as the launcher's uid, which owns the sockets; the agent runs beside it).
"""

import contextlib
import os
import socket
import sys
import threading

# A burst of new connections (an agent's HTTP client opening 200 at once) must queue, not
# overflow: a SYN to a full accept queue is dropped, and the client retries it only after
# 1, 3, 7, 15, 31 ... s, which is a request hung for half a minute. The kernel caps this
# at net.core.somaxconn (4096 by default).
BACKLOG = 4096


def _pump(src: socket.socket, dst: socket.socket) -> None:
    # recv(64 KiB) + sendall measured cheapest here (0.7 CPU s per GiB): reads above
    # malloc's mmap threshold, recv_into a reused buffer and splice(2) through a pipe
    # all cost more.
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _serve_one(client: socket.socket, path: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        client.close()
        upstream.close()
        return
    t = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    t.start()
    _pump(client, upstream)
    t.join()
    client.close()
    upstream.close()


def _accept_loop(listener: socket.socket, path: str) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(client, path), daemon=True).start()


def main(args: list[str]) -> None:
    sep = args.index("--")
    pairs, argv = args[:sep], args[sep + 1 :]
    listeners = []
    for pair in pairs:
        port, path = pair.split("=", 1)
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", int(port)))
        ls.listen(BACKLOG)
        listeners.append((ls, path))
    if listeners and os.fork() == 0:
        os.setsid()  # out of the agent's process group: terminal ^C is for the agent
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        threads = [threading.Thread(target=_accept_loop, args=lp, daemon=True) for lp in listeners]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        os._exit(0)
    for ls, _ in listeners:
        ls.close()
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        sys.stderr.write(
            f"bot-bottle: cannot run {argv[0]} inside the bottle: {e.strerror} (the bottle sees"
            " the host's /usr and the CLIs from `bot-bottle agents install`)\n"
        )
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
