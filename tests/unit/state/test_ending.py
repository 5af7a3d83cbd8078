"""`explain`: the sentence and exit code a session ends with (issue 12, item 1)."""

from __future__ import annotations

from bot_bottle.state.ending import STOPPED_CODE, StopRequest, explain


def test_stopped_from_another_terminal_exits_143_on_every_backend() -> None:
    for agent_code in (0, 143, 137):  # Docker's exec client, bwrap, a killed agent
        e = explain("a-b-1", agent_code, StopRequest("rm", 1, ""))
        assert e.exit_code == STOPPED_CODE == 143
        assert "stopped by `bot-bottle rm` from another terminal" in e.reason
        assert e.agent_code is None


def test_agent_exit_is_its_own_code_with_the_signal_named() -> None:
    assert explain("s", 3, None).reason == "the agent exited with code 3"
    assert explain("s", 3, None).exit_code == 3
    assert explain("s", 137, None).reason == "the agent exited with code 137 (SIGKILL)"
    assert explain("s", 0, None).sentence() == "bottle s ended: the agent exited with code 0"


def test_a_dead_sidecar_is_named() -> None:
    e = explain("s", 1, None, ("egress",))
    assert "the egress sidecar had died" in e.reason and e.exit_code == 1


def test_stop_request_round_trips_through_metadata() -> None:
    req = StopRequest.now("stop")
    assert StopRequest.from_extra({"stop_request": req.to_json()}) == req
    assert StopRequest.from_extra({"stop_request": None}) is None
