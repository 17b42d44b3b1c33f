"""`cloudmgr clouds sync` with one cloud down (issue 17): the other clouds are synced (each
department's project on every cloud it uses), the exit code is non-zero and the output names the
cloud that could not be reached; `clouds list` says since when; once it is back, it syncs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOWN = "ts-gov"


def _cloudmgr(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloudmgr.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_sync_goes_on_past_a_cloud_that_is_down_and_says_which(tmp_path: Path, database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDMGR_")}
    instance = tmp_path / "instance"
    env.update(
        CLOUDMGR_INSTANCE_PATH=str(instance), CLOUDMGR_DATABASE_URL=database_url, CLOUDMGR_CLOUD_PROVIDER="simulated"
    )
    for command in (("db", "upgrade"), ("seed-demo",)):
        done = _cloudmgr(env, *command)
        assert done.returncode == 0, done.stdout + done.stderr
    # The simulated cloud's outage: a file beside its state (SimulatedProvider.set_unreachable).
    clouds = instance / "simulated-clouds"
    clouds.mkdir(parents=True, exist_ok=True)
    (clouds / f"{DOWN}.unreachable").write_text("connection refused", encoding="utf-8")

    synced = _cloudmgr(env, "clouds", "sync")
    assert synced.returncode != 0
    assert synced.stdout.count(" ok: ") == 17
    down_line = next(line for line in synced.stdout.splitlines() if line.startswith(DOWN))
    assert "UNREACHABLE: 0 projects" in down_line
    assert f"1 cloud(s) could not be synced: {DOWN} (unreachable)" in synced.stderr
    listed = _cloudmgr(env, "clouds", "list")
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "UNREACHABLE since" in lines[DOWN]
    assert all("UNREACHABLE" not in line for key, line in lines.items() if key != DOWN)

    (clouds / f"{DOWN}.unreachable").unlink()
    again = _cloudmgr(env, "clouds", "sync", "--cloud", DOWN)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith(DOWN) and " ok: " in again.stdout
    listed = _cloudmgr(env, "clouds", "list")
    assert "UNREACHABLE" not in listed.stdout
