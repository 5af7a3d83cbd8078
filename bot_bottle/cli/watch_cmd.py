"""`bot-bottle watch`: the operator's live view, with keys to answer requests.

A rich `Live` screen redrawn every second, at once after a key, and on SIGWINCH (a
self-pipe wakes the key loop, so a resize redraws at the new size right away). Keys
are read unbuffered (cbreak mode) and restored on any exit. Grants and denials go
through the same functions as `bot-bottle grant` and `deny`.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import signal
import sys
import termios
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass

import click
from rich.console import RenderableType

from bot_bottle.cli.supervise_cmds import deny_request, grant_request, parse_duration
from bot_bottle.cli.watch_view import Snapshot, collect, render
from bot_bottle.errors import BotBottleError
from bot_bottle.state.store import StateStore

UP, DOWN, ENTER, ESC, BACKSPACE = "<up>", "<down>", "<enter>", "<esc>", "<backspace>"
_SEQUENCES = {"\x1b[A": UP, "\x1bOA": UP, "\x1b[B": DOWN, "\x1bOB": DOWN,
              "\r": ENTER, "\n": ENTER, "\x7f": BACKSPACE, "\x08": BACKSPACE}  # fmt: skip


def keys_of(text: str) -> Iterator[str]:
    """Split what the terminal sent into keys: arrows and Enter by name, other escape
    sequences dropped, a lone ESC as ESC, anything else one character at a time."""
    i = 0
    while i < len(text):
        for seq, name in _SEQUENCES.items():
            if text.startswith(seq, i):
                yield name
                i += len(seq)
                break
        else:
            if text[i] == "\x1b":
                j = i + 1
                if j < len(text) and text[j] in "[O":  # an unknown sequence: skip it whole
                    j += 1
                    while j < len(text) and not ("@" <= text[j] <= "~"):
                        j += 1
                    i = j + 1
                    continue
                yield ESC
                i += 1
                continue
            yield text[i]
            i += 1


@dataclass(frozen=True)
class Prompt:
    """A line being typed for the selected request: `what` is reply, reason or for."""

    what: str
    rid: str
    text: str = ""

    def label(self) -> str:
        ask = {"reply": "reply to", "reason": "deny", "for": "grant"}[self.what]
        tail = {"reply": "reply: ", "reason": "reason: ", "for": "for (e.g. 30m): "}[self.what]
        return f"{ask} {self.rid} {tail}{self.text}▏  (Enter to send, Esc to cancel)"


class Watch:
    """The screen's state and what each key does to it."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.snap: Snapshot = collect(store)
        self.selected_id = ""
        self.prompt: Prompt | None = None
        self.message = ""

    def refresh(self) -> None:
        try:
            self.snap = collect(self.store)
        except OSError as e:  # a bottle removed mid-read, say: keep the last screen
            self.message = f"refresh failed ({e}); retrying"

    def index(self) -> int:
        """The selected request's place in the list; -1 once the selected one was
        answered or went away: the selection never falls to another request by itself,
        or a second `g` would grant one the operator never chose (the agent can keep
        its own at the top)."""
        ids = [r.id for _, r in self.snap.pending]
        if self.selected_id in ids:
            return ids.index(self.selected_id)
        if self.selected_id or not ids:
            return -1
        self.selected_id = ids[0]  # the first screen: shown selected before any key
        return 0

    def screen(self) -> RenderableType:
        footer = self.prompt.label() if self.prompt else self.message
        return render(self.snap, self.index(), footer)

    def key(self, k: str) -> bool:
        """Apply one key; False when it is time to quit."""
        if self.prompt is not None:
            self._prompt_key(k)
            return True
        ids = [r.id for _, r in self.snap.pending]
        i = self.index()
        if k == "q":
            return False
        if k in (UP, "k") and ids:
            self.selected_id = ids[max(0, i - 1)]
        elif k in (DOWN, "j") and ids:
            self.selected_id = ids[min(len(ids) - 1, i + 1)]
        elif k.isdigit() and 0 < int(k) <= len(ids):
            self.selected_id = ids[int(k) - 1]
        elif k in ("g", "t", "d"):
            if not ids:
                self.message = "no request waiting"
                return True
            if i < 0:
                self.message = "select a request first (↑↓ or its number)"
                return True
            rec = self.snap.pending[i][1]
            if k == "d":
                self.prompt = Prompt("reason", rec.id)
            elif k == "t" and rec.ask.kind == "route":
                self.prompt = Prompt("for", rec.id)
            elif rec.ask.kind == "question":
                self.prompt = Prompt("reply", rec.id)
            else:
                self._answer(Prompt("for", rec.id))
        return True

    def _prompt_key(self, k: str) -> None:
        assert self.prompt is not None
        if k == ESC:
            self.prompt, self.message = None, "cancelled"
        elif k == ENTER:
            prompt, self.prompt = self.prompt, None
            self._answer(prompt)
        elif k == BACKSPACE:
            self.prompt = Prompt(self.prompt.what, self.prompt.rid, self.prompt.text[:-1])
        elif len(k) == 1 and k.isprintable():
            self.prompt = Prompt(self.prompt.what, self.prompt.rid, self.prompt.text + k)

    def _answer(self, p: Prompt) -> None:
        try:
            if p.what == "reason":
                found, rec = deny_request(self.store, p.rid, p.text)
                self.message = f"denied {rec.id} ({found.slug})"
            else:
                seconds = parse_duration(p.text) if p.what == "for" and p.text else 0.0
                reply = p.text if p.what == "reply" else None
                g = grant_request(self.store, p.rid, seconds, reply)
                until = f" for {p.text}" if seconds else " until the bottle ends"
                what = g.rec.ask.summary() + until if g.rec.ask.kind == "route" else "answered"
                lent = f", with the credential of {g.lender.label}" if g.lender else ""
                self.message = f"granted {g.rec.id} ({g.found.slug}): {what}{lent}"
        except BotBottleError as e:
            self.message = f"error: {e.message}"
        except click.ClickException as e:
            self.message = f"error: {e.format_message()}"
        self.refresh()


@contextlib.contextmanager
def _terminal(fd: int) -> Iterator[int]:
    """cbreak mode on `fd`, and a pipe that becomes readable on SIGWINCH; both undone
    on the way out, whatever ends the loop."""
    saved = termios.tcgetattr(fd)
    r, w = os.pipe()
    os.set_blocking(w, False)
    old = signal.signal(signal.SIGWINCH, lambda *_: _poke(w))
    try:
        tty.setcbreak(fd)
        yield r
    finally:
        signal.signal(signal.SIGWINCH, old)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        os.close(r)
        os.close(w)


def _poke(w: int) -> None:
    with contextlib.suppress(BlockingIOError):
        os.write(w, b"!")


@click.command()
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between refreshes.")  # fmt: skip
def watch(interval: float) -> None:
    """A live view of bottles, their recent requests and denials, and pending requests
    to grant (g, or t for a time) or deny (d); q quits."""
    from rich.console import Console
    from rich.live import Live

    if not sys.stdin.isatty() or not sys.stdout.isatty():
        raise BotBottleError("`watch` needs a terminal",
                             "in scripts use `bot-bottle requests --json`")  # fmt: skip
    view = Watch(StateStore())
    fd = sys.stdin.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    console = Console(highlight=False)
    with _terminal(fd) as resized, contextlib.suppress(KeyboardInterrupt), Live(
        view.screen(), console=console, screen=True, auto_refresh=False,
        redirect_stdout=False, redirect_stderr=False,
    ) as live:  # fmt: skip
        due = time.monotonic() + interval
        while True:
            ready, _, _ = select.select([fd, resized], [], [], max(0.0, due - time.monotonic()))
            if resized in ready:
                os.read(resized, 256)
                console.clear()
            if fd in ready:
                text = decoder.decode(os.read(fd, 1024))
                if not all(view.key(k) for k in keys_of(text)):
                    break
            if time.monotonic() >= due:
                view.refresh()
                due = time.monotonic() + interval
            live.update(view.screen(), refresh=True)
