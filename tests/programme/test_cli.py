"""`cloudmgr waves …` and `cloudmgr programme …`, in process on the test database."""

from __future__ import annotations

from click.testing import CliRunner

from cloudmgr.cli import main
from cloudmgr.runtime import get_runtime, set_runtime
from tests.programme.conftest import Env, Inventory


def test_waves_and_programme_commands(journey: Env, inventory: Inventory) -> None:
    inventory.system("edu-cli-a", complexity=20)
    inventory.system("edu-cli-b", complexity=2)
    inventory.system("edu-cli-secret", classification="classified")
    settings = journey.rt.settings
    env = {
        "CLOUDMGR_DATABASE_URL": settings.database_url,
        "CLOUDMGR_INSTANCE_PATH": str(settings.instance_path),
        "CLOUDMGR_CLOUD_PROVIDER": "simulated",
        "CLOUDMGR_SECRET_KEY": "test",
    }
    runner = CliRunner(env=env)
    try:

        def run(*args: str) -> tuple[int, str]:
            result = runner.invoke(main, list(args), catch_exceptions=False)
            return result.exit_code, result.output

        code, out = run(
            "waves", "create", "CLI 批次", "--cloud", "education", "--zone", "extranet",
            "--start", "2026-12-05", "--end", "2026-12-06",
        )  # fmt: skip
        assert code == 0, out
        assert out.startswith("wave #1 CLI 批次: draft on education/extranet")
        code, out = run("waves", "add", "1", "edu-cli-secret")
        assert code == 1 and "classified" in out
        code, out = run("waves", "add", "1", "edu-cli-a", "edu-cli-b")
        assert code == 0, out
        assert out.index("edu-cli-b") < out.index("edu-cli-a")  # easy to hard
        code, out = run("waves", "start", "1")
        assert code == 1 and "must be checked" in out
        code, out = run("waves", "check", "1")
        assert code == 0 and "fits" in out, out
        code, out = run("waves", "start", "1")
        assert code == 0 and "running" in out
        code, out = run("waves", "list")
        assert code == 0 and "running" in out and "2 systems" in out
        code, out = run("programme", "show", "--today", "2026-11-28")
        assert code == 0 and "0 of 2 in-scope systems done" in out and "2 overdue" in out
        code, out = run("waves", "show", "99")
        assert code == 1 and "no migration wave 99" in out
    finally:
        cli_runtime = get_runtime()
        if cli_runtime is not journey.rt:
            cli_runtime.db.dispose()
        set_runtime(journey.rt)
