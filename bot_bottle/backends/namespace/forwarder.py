"""In-bottle init: expose sidecar Unix sockets on loopback, then exec the agent.

Runs inside the sandbox as `python3 -I -S forwarder.py PORT=SOCKET ... [exec FD] -- ARGV`.
It binds every listener *before* exec'ing the agent, so the agent can never race
a proxy that is not there yet (no sleeps, no polling). A forked child pumps bytes;
when the agent exits, bwrap tears down the PID namespace and the child with it.
If a sidecar is dead, connecting to its socket fails and the agent's connection
is closed: the bottle has no other route out (its network namespace has only lo).

An `exec FD` pair of arguments (namespace bottles) hands it a listening Unix socket whose path
only the host can reach: `bot-bottle exec` connects there and sends a command with the
ends of a pty or of pipes (SCM_RIGHTS), and this process forks and runs it. A child of
a process already inside the sandbox has exactly what the agent has (namespaces, uid,
no capabilities, no-new-privs, both seccomp filters, environment, working directory),
by construction, and the host never enters the sandbox to get it there.

Standard library only: it runs with no site dir on the host's /usr/bin/python3 in a
namespace bottle, and on the image's python3 as a Docker bottle's main process (there
as the launcher's uid, which owns the sockets; the agent runs beside it).
"""

import os
import signal
import socket
import sys

# The agent's start waits on this process: only what binding the listeners and exec'ing
# the agent need is imported up front; the rest (json pulls in `re`) only in the forked
# child that pumps bytes and serves `exec`, after the agent is already on its way.

# A burst of new connections (an agent's HTTP client opening 200 at once) must queue, not
# overflow: a SYN to a full accept queue is dropped, and the client retries it only after
# 1, 3, 7, 15, 31 ... s, which is a request hung for half a minute. The kernel caps this
# at net.core.somaxconn (4096 by default).
BACKLOG = 4096


def _pump(src: socket.socket, dst: socket.socket) -> None:
    import contextlib

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
    import threading

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
    import threading

    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(client, path), daemon=True).start()


def _default_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across
    exec: give the programs it starts the defaults they expect (`yes | head` ends)."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)


def _exec_child(argv: list[str], fds: list[int], tty: bool, term: str) -> None:
    """In the forked child: a session of its own, the pty as its controlling terminal
    (or the pipes as stdio), nothing else of this process's descriptors, then exec."""
    import contextlib
    import fcntl
    import termios

    try:
        os.setsid()
        std = [fds[0]] * 3 if tty else fds[:3]
        if tty:
            fcntl.ioctl(fds[0], termios.TIOCSCTTY, 0)
        for i, fd in enumerate(std):
            os.dup2(fd, i)
        os.closerange(3, 1 << 16)  # the listeners, the connection, the received ends
        _default_signals()
        env = dict(os.environ)
        if term:
            env["TERM"] = term
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.write(2, f"bot-bottle exec: cannot run {argv[0]}: {e.strerror}\n".encode())
        os._exit(127 if isinstance(e, FileNotFoundError) else 126)
    os._exit(126)


def _serve_exec(conn: socket.socket) -> None:
    """One `bot-bottle exec`: run the command it sent, answer `started`, then `exit N`.
    The host closing the connection early hangs the command's session up."""
    import contextlib
    import json
    import threading

    fds: list[int] = []
    try:
        msg, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
        req = json.loads(msg)
        argv = [str(a) for a in req["argv"]] or [os.environ.get("SHELL") or "/bin/sh"]
        tty = bool(req.get("tty"))
        if len(fds) != (1 if tty else 3):
            return
        pid = os.fork()
        if pid == 0:
            _exec_child(argv, fds, tty, str(req.get("term") or ""))
        conn.sendall(b"started\n")
        done = threading.Event()

        def hang_up() -> None:
            with contextlib.suppress(OSError):
                while conn.recv(1024):
                    pass
            if not done.is_set():  # never a reaped pid that may since be someone else's
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGHUP)

        threading.Thread(target=hang_up, daemon=True).start()
        _, status = os.waitpid(pid, 0)
        done.set()
        code = os.waitstatus_to_exitcode(status)
        conn.sendall(f"exit {128 - code if code < 0 else code}\n".encode())
    except (OSError, ValueError, KeyError, TypeError):
        pass
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        conn.close()


def _exec_loop(listener: socket.socket) -> None:
    import threading

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_exec, args=(conn,), daemon=True).start()


def main(args: list[str]) -> None:
    sep = args.index("--")
    pairs, argv = args[:sep], args[sep + 1 :]
    listeners = []
    exec_listener = None
    tokens = iter(pairs)
    for pair in tokens:
        if pair == "exec":  # `exec FD`: the listening socket of `bot-bottle exec`
            fd = int(next(tokens))
            os.set_inheritable(fd, False)  # the agent never holds it
            exec_listener = socket.socket(fileno=fd)
            continue
        port, path = pair.split("=", 1)
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", int(port)))
        ls.listen(BACKLOG)
        listeners.append((ls, path))
    if (listeners or exec_listener) and os.fork() == 0:
        import threading

        os.setsid()  # out of the agent's process group: terminal ^C is for the agent
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        threads = [threading.Thread(target=_accept_loop, args=lp, daemon=True) for lp in listeners]
        if exec_listener is not None:
            threads.append(threading.Thread(target=_exec_loop, args=(exec_listener,), daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        os._exit(0)
    for ls, _ in listeners:
        ls.close()
    if exec_listener is not None:
        exec_listener.close()
    _default_signals()
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
