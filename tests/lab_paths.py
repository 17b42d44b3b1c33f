"""Where the lab OpenStack keeps the bytes of servers and volumes (vagrant/lab), per cloud.

The lab runs two independent clouds: ``cloudmgr-lab`` (the province's, state in ``.lab``) and
``cloudmgr-lab-city`` (a city's, state in ``.lab/city``) (vagrant/lab/common.sh).  In each, the
fake Nova driver keeps a server's disk in ``data/disks/<server id>.img`` (written from its image
at boot, uploaded by a snapshot: cloudmgr_lab_ml2/virt.py) and the fake Cinder driver a volume's
bytes in ``data/cinder/lab-volumes/volume-<volume id>`` (cloudmgr_lab_ml2/volume.py).  A test
writes there what a guest would write, and reads it back on the other cloud after a move.
``vagrant/lab/lab_admin.py disk-path|volume-path ID`` prints the same paths.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROVINCE = "cloudmgr-lab"
CITY = "cloudmgr-lab-city"
#: Both lab clouds, as clouds.yaml names them.
LAB_CLOUDS = (PROVINCE, CITY)


def lab_dir() -> Path:
    return Path(os.environ.get("CLOUDMGR_LAB_DIR", str(REPO / ".lab")))


def cloud_dir(cloud: str) -> Path:
    """The state dir of one lab cloud."""
    if cloud == PROVINCE:
        return lab_dir()
    if cloud == CITY:
        return lab_dir() / "city"
    raise ValueError(f"not a lab cloud: {cloud!r} (one of {LAB_CLOUDS})")


def volumes_dir(cloud: str) -> Path:
    return cloud_dir(cloud) / "data" / "cinder" / "lab-volumes"


def volume_file(cloud: str, volume_id: str) -> Path:
    return volumes_dir(cloud) / f"volume-{volume_id}"


def disk_file(cloud: str, server_id: str) -> Path:
    return cloud_dir(cloud) / "data" / "disks" / f"{server_id}.img"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
