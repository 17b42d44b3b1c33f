"""Cross-cloud image transfer: cloudmgr's checked transfer against a plain Glance download and
upload made with openstacksdk, between the lab's city cloud and the province's (issue 17).

An image of ``--mb`` MB of random bytes is made on the city cloud.  Each side then carries
it to the province cloud in a process of its own (so each reports its own peak RSS):

* ``cloudmgr``: :func:`cloudmgr.moves.transfer.download_verified` and
  :func:`~cloudmgr.moves.transfer.upload_verified`, the calls a cross-cloud move makes
  (streamed download digested as it comes, SHA-256 and Glance's algorithm, compared with the
  source's hash; streamed upload; the target Glance's hash compared with the file's);
* ``raw``: ``conn.image.download_image(output=file)`` (openstacksdk checks Glance's hash
  itself) and ``conn.image.create_image(filename=file, wait=True)``.

Both through a file in a temporary folder, as a move does.  Printed: MB/s of each (the
image's size over download + upload), the ratio cloudmgr/raw (goal >= 0.9) and the peak RSS
of each process (ru_maxrss) against its RSS before the transfer (goal: flat, not the image's
size).  Rounds alternate the sides; the best round of each counts.

    .venv/bin/python benchmarks/cross_cloud_transfer.py [--mb 256] [--rounds 2]
    .venv/bin/python benchmarks/cross_cloud_transfer.py --mb 2048 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import openstack.config  # noqa: E402
import openstack.connection  # noqa: E402

from cloudmgr.cloud.openstack import OpenStackProvider  # noqa: E402
from cloudmgr.moves.transfer import SNAPSHOT, download_verified, upload_verified  # noqa: E402

CLOUDS_YAML = REPO / ".lab" / "clouds.yaml"
SOURCE_CLOUD = "cloudmgr-lab-city"
TARGET_CLOUD = "cloudmgr-lab"
MB = 1024 * 1024


def connection(cloud: str) -> Any:
    region = openstack.config.OpenStackConfig(config_files=[str(CLOUDS_YAML)]).get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)


def provider(cloud: str) -> OpenStackProvider:
    return OpenStackProvider(cloud=cloud, config_files=[str(CLOUDS_YAML)], retries=1, poll_interval=0.5)


def rss_mb() -> float:
    """The process's resident set now (MB)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MB


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def make_image(mb: int, folder: Path, tag: str) -> str:
    """An image of ``mb`` MB of random bytes on the city cloud (written and sent a MB at a time)."""
    path = folder / "source.raw"
    with open(path, "wb") as out:
        for _ in range(mb):
            out.write(os.urandom(MB))
    image = provider(SOURCE_CLOUD).upload_image(f"bench-xfer-{tag}", path, disk_format="raw")
    path.unlink()
    return image.id


def side_cloudmgr(image_id: str, folder: Path, name: str) -> dict[str, Any]:
    source, target = provider(SOURCE_CLOUD), provider(TARGET_CLOUD)
    path = folder / "cloudmgr.img"
    what = SNAPSHOT  # as the move says it: the image carried
    started = time.perf_counter()
    record = download_verified(source, image_id, path, what=what)
    downloaded = time.perf_counter()
    made, checked = upload_verified(target, name, path, record, what=what, disk_format="raw", project_id="")
    finished = time.perf_counter()
    path.unlink()
    target.delete_image(made.id)
    return {
        "bytes": record["bytes"],
        "download_s": downloaded - started,
        "upload_s": finished - downloaded,
        "verified": bool(checked["source_verified"] and checked["target_verified"]),
    }


def side_raw(image_id: str, folder: Path, name: str) -> dict[str, Any]:
    source, target = connection(SOURCE_CLOUD), connection(TARGET_CLOUD)
    path = folder / "raw.img"
    started = time.perf_counter()
    with open(path, "wb") as out:
        source.image.download_image(image_id, stream=True, output=out)
    downloaded = time.perf_counter()
    made = target.image.create_image(
        name, filename=str(path), disk_format="raw", container_format="bare", allow_duplicates=True, wait=True
    )
    finished = time.perf_counter()
    size = path.stat().st_size
    path.unlink()
    target.image.delete_image(made.id, ignore_missing=True)
    return {"bytes": size, "download_s": downloaded - started, "upload_s": finished - downloaded, "verified": None}


def child(side: str, image_id: str, folder: str, name: str) -> None:
    """One side in this process: what it did, and its RSS before and its peak."""
    before = rss_mb()
    result = (side_cloudmgr if side == "cloudmgr" else side_raw)(image_id, Path(folder), name)
    result.update(rss_before_mb=before, peak_rss_mb=peak_rss_mb())
    print(json.dumps(result))


def run_side(side: str, image_id: str, folder: Path, tag: str, round_no: int) -> dict[str, Any]:
    name = f"bench-xfer-{tag}-{side}-{round_no}"
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, "--image", image_id, "--folder", str(folder), "--name", name],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = result["download_s"] + result["upload_s"]
    result["mb_s"] = result["bytes"] / MB / seconds
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=256, help="image size in MB (e.g. 256, 2048)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["cloudmgr", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.image, args.folder, args.name)
        return
    if args.mb < 1 or args.rounds < 1:
        parser.error("--mb and --rounds must be at least 1")
    tag = secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="cloudmgr-xfer-") as tmp:
        folder = Path(tmp)
        print(f"making a {args.mb} MB image on {SOURCE_CLOUD} ...", flush=True)
        image_id = make_image(args.mb, folder, tag)
        best: dict[str, dict[str, Any]] = {}
        try:
            for round_no in range(1, args.rounds + 1):
                for side in ("raw", "cloudmgr") if round_no % 2 else ("cloudmgr", "raw"):
                    result = run_side(side, image_id, folder, tag, round_no)
                    took = f"download {result['download_s']:.1f} s, upload {result['upload_s']:.1f} s"
                    memory = f"RSS {result['rss_before_mb']:.0f} MB before, peak {result['peak_rss_mb']:.0f} MB"
                    checked = "  checksums verified" if result["verified"] else ""
                    speed = f"{result['mb_s']:7.1f} MB/s"
                    print(f"round {round_no} {side:<8} {speed}  ({took})  {memory}{checked}", flush=True)
                    if side not in best or result["mb_s"] > best[side]["mb_s"]:
                        best[side] = result
        finally:
            provider(SOURCE_CLOUD).delete_image(image_id)
    ratio = best["cloudmgr"]["mb_s"] / best["raw"]["mb_s"]
    print(
        f"\n{args.mb} MB {SOURCE_CLOUD} -> {TARGET_CLOUD}: cloudmgr {best['cloudmgr']['mb_s']:.1f} MB/s, "
        f"raw openstacksdk {best['raw']['mb_s']:.1f} MB/s, ratio {ratio:.2f} (goal >= 0.90); peak RSS "
        f"cloudmgr {best['cloudmgr']['peak_rss_mb']:.0f} MB, raw {best['raw']['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
