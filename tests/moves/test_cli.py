"""``cloudmgr moves`` in this process against the simulated clouds."""

from __future__ import annotations

import re

from cloudmgr.runtime import set_runtime
from tests.journey_fixtures import Journey
from tests.moves.conftest import provider_of, provision
from tests.test_cli import run_in_process

BAD_INPUT = [
    (("moves", "live", "nope", "--cloud", "education", "--reason", "x"), "no server nope"),
    (("moves", "confirm", "999"), "no move 999"),
    (("moves", "drain", "sim-host-9", "--cloud", "education", "--reason", "x"), "no compute host sim-host-9"),
    (("moves", "cross-cloud", "nope", "--cloud", "education", "--to", "atlantis", "--reason", "x"), "no cloud"),
    (("moves", "live", "nope", "--cloud", "education"), "Missing option '--reason'"),
]


def _bad_input_gets_a_message_and_non_zero_exit(journey: Journey) -> None:
    for args, message in BAD_INPUT:
        try:
            result = run_in_process(journey.rt, *args)
        finally:
            set_runtime(journey.rt)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)


def test_moves_commands_migrate_confirm_list_and_refuse_bad_input(journey: Journey) -> None:
    (server,) = provision(journey)
    server_id = server.server_id or ""
    rt = journey.rt
    try:
        live = run_in_process(rt, "moves", "live", server_id, "--cloud", "education", "--reason", "cli", "--now")
        assert live.exit_code == 0, live.output
        assert re.search(r"move #\d+ live on education: done", live.output)
        assert "1. migrate         done" in live.output
        cold = run_in_process(rt, "moves", "cold", server_id, "--cloud", "education", "--reason", "cli", "--now")
        assert cold.exit_code == 0, cold.output
        assert "awaiting_confirm" in cold.output
        move_id = re.search(r"move #(\d+) cold", cold.output)
        assert move_id is not None
        confirmed = run_in_process(rt, "moves", "confirm", move_id.group(1), "--reason", "ok", "--now")
        assert confirmed.exit_code == 0, confirmed.output
        assert f"move #{move_id.group(1)} cold on education: done" in confirmed.output
        listed = run_in_process(rt, "moves", "list")
        assert listed.exit_code == 0 and listed.output.count(server.name) == 2
        assert provider_of(journey, "education").get_server(server_id).status == "ACTIVE"
        _bad_input_gets_a_message_and_non_zero_exit(journey)
    finally:
        set_runtime(rt)
