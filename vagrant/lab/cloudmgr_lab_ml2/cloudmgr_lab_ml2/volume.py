"""Cinder volume driver for the lab: the upstream fake driver with a data path.

``cinder.tests.fake_driver.FakeLoggingVolumeDriver`` (shipped in the cinder
wheel; the lab pins cinder's version) accepts every volume operation but hands
out iSCSI connection info with no target, so nothing that reads or writes a
volume's bytes works: backups, restores, volume from image, upload to image.
Here each volume and snapshot is a sparse file under
``$state_path/lab-volumes`` and connections are os-brick ``local``
(``device_path`` = that file), which needs no root helper, iSCSI or LVM.
Nova's fake virt driver ignores the connection info, so attach and detach
work unchanged. Used as
``volume_driver = cloudmgr_lab_ml2.volume.LabFakeVolumeDriver``.
"""

import os
import subprocess

from cinder.tests import fake_driver
from oslo_config import cfg

CONF = cfg.CONF
GIB = 1024 ** 3
# smoke.py writes and compares volume bytes there
VOLUMES_DIR = "lab-volumes"


def _sparse_copy(src, dst):
    # a volume of zeros stays sparse: no disk used, copied in milliseconds
    subprocess.run(["cp", "--sparse=always", src, dst], check=True)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class LabFakeVolumeDriver(fake_driver.FakeLoggingVolumeDriver):

    def _file(self, name):
        folder = os.path.join(CONF.state_path, VOLUMES_DIR)
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, name)

    def _snapshot_file(self, snapshot):
        return self._file(f"snapshot-{snapshot.id}")

    def local_path(self, volume, vg=None):
        return self._file(f"volume-{volume.id}")

    @staticmethod
    def _grow(path, size_gb):
        # grows only: a file restored or cloned into a bigger volume keeps
        # its bytes; Cinder never shrinks a volume
        with open(path, "ab") as fh:
            if fh.tell() < int(size_gb) * GIB:
                fh.truncate(int(size_gb) * GIB)

    def create_volume(self, volume):
        update = super().create_volume(volume)
        self._grow(self.local_path(volume), volume.size)
        return update

    def delete_volume(self, volume):
        super().delete_volume(volume)
        _unlink(self.local_path(volume))

    def extend_volume(self, volume, new_size):
        super().extend_volume(volume, new_size)
        self._grow(self.local_path(volume), new_size)

    def create_snapshot(self, snapshot):
        super().create_snapshot(snapshot)
        _sparse_copy(self.local_path(snapshot.volume),
                     self._snapshot_file(snapshot))

    def delete_snapshot(self, snapshot):
        super().delete_snapshot(snapshot)
        _unlink(self._snapshot_file(snapshot))

    def create_volume_from_snapshot(self, volume, snapshot):
        super().create_volume_from_snapshot(volume, snapshot)
        path = self.local_path(volume)
        _sparse_copy(self._snapshot_file(snapshot), path)
        self._grow(path, volume.size)

    def create_cloned_volume(self, volume, src_vref):
        super().create_cloned_volume(volume, src_vref)
        path = self.local_path(volume)
        _sparse_copy(self.local_path(src_vref), path)
        self._grow(path, volume.size)

    def clone_image(self, context, volume, image_location, image_meta,
                    image_service):
        # Cinder calls this instead of create_volume. Its generic path
        # (download, then qemu-img through sudo) cannot run here: the image's
        # raw bytes become the start of the volume, and cloned=True makes
        # Cinder skip that path.
        path = self.local_path(volume)
        with open(path, "wb") as fh:
            image_service.download(context, image_meta["id"], fh)
        self._grow(path, volume.size)
        return {}, True

    def validate_connector(self, connector):
        # the LVM/iSCSI parent insists on connector['initiator']; a 'local'
        # connection needs nothing from the connector
        pass

    def initialize_connection(self, volume, connector):
        info = super().initialize_connection(volume, connector)
        info["driver_volume_type"] = "local"
        info["data"]["device_path"] = self.local_path(volume)
        info["data"]["access_mode"] = "rw"
        return info

    def initialize_connection_snapshot(self, snapshot, connector, **kwargs):
        return {"driver_volume_type": "local",
                "data": {"device_path": self._snapshot_file(snapshot),
                         "access_mode": "ro"}}
