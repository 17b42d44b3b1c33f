"""Nova virt driver of the lab: Nova's own fake driver, restart-proof, with disks.

``nova.virt.fake.FakeDriverWithoutFakeNodes`` keeps its node identity across
restarts, but its guests live in process memory only: after the lab restarts,
servers that Nova still lists as ACTIVE are unknown to the driver and every
action on them (stop, reboot, migrate...) fails with InstanceNotFound.

At start-up nova-compute calls ``plug_vifs`` for each of its instances; this
subclass uses that call to take them back, in the power state Nova recorded.

Each server booted from an image has a disk: a file
``[cloudmgr_lab] disks_dir/<server id>.img`` (nova.conf; ``.lab/data/disks``
for the province cloud, ``.lab/city/data/disks`` for the city's) written
from the image's bytes at spawn (downloaded from Glance, zeros left as holes),
read back by ``snapshot`` and uploaded to Glance as the snapshot's bytes the
way the libvirt driver uploads a real disk, and removed when the server is
deleted. Both computes of a cloud share the folder: a migrated or resized
server keeps its disk. A test may write into the file as a guest would write
to its disk (``lab_admin.py disk-path SERVER_ID``).

Everything else is the upstream fake driver. Run by
``cloudmgr-lab-nova-compute`` (compute.py) with
``compute_driver = cloudmgr_lab.LabFakeDriver``.

``ScaleFakeDriver`` (``compute_driver = cloudmgr_lab.ScaleFakeDriver``) is
the same driver serving many nodes from one nova-compute: the scale cloud's
200 hypervisors cost one process (~170 MB) instead of 200.
"""

import os
import uuid

import nova.virt.node

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova.image import glance
from nova.virt import fake
from oslo_config import cfg
from oslo_log import log as logging

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
CONF.register_opts(
    [cfg.StrOpt("disks_dir", help="Folder of the lab servers' disk files"),
     cfg.IntOpt("scale_nodes", default=200,
                help="ScaleFakeDriver: how many nodes (hypervisors) the "
                     "compute serves"),
     cfg.IntOpt("scale_node_vcpus", default=32),
     cfg.IntOpt("scale_node_ram_mb", default=262144),
     cfg.IntOpt("scale_node_disk_gb", default=4096)],
    group="cloudmgr_lab")
# Node UUIDs are derived from host and node name: the same across restarts.
SCALE_NODE_NAMESPACE = uuid.UUID("6f1c2a52-3b7e-4f7e-9a43-5c1c0de5ca1e")

CHUNK = 1024 * 1024
# A server whose disk was never written (booted before disks existed, or from
# a volume): its snapshot is the guest's name repeated to 64 KiB, as before.
PLACEHOLDER_BYTES = 64 * 1024


def disk_path(instance_uuid):
    folder = CONF.cloudmgr_lab.disks_dir or os.path.join(
        CONF.state_path, "disks")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{instance_uuid}.img")


def _write_sparse(chunks, path):
    """Writes the chunks to path, leaving all-zero chunks as holes (a lab
    image of zeros costs no disk); returns the size written."""
    tmp = f"{path}.part"
    size = 0
    with open(tmp, "wb") as fh:
        for chunk in chunks:
            if not chunk:
                continue
            if chunk.count(0) == len(chunk):
                fh.seek(len(chunk), os.SEEK_CUR)
            else:
                fh.write(chunk)
            size += len(chunk)
        fh.truncate(size)
    os.replace(tmp, path)
    return size


def _file_chunks(path):
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                return
            yield chunk


class LabFakeDriver(fake.FakeDriverWithoutFakeNodes):

    def plug_vifs(self, instance, network_info):
        if instance.uuid in self.instances:
            return
        for vif in network_info or []:
            self._interfaces[vif["id"]] = vif
        state = instance.power_state
        if state is None:
            state = power_state.NOSTATE
        flavor = instance.flavor
        self.resources.claim(vcpus=flavor.vcpus, mem=flavor.memory_mb,
                             disk=flavor.root_gb)
        self.instances[instance.uuid] = fake.FakeInstance(
            instance.name, state, instance.uuid)

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        super().spawn(context, instance, image_meta, injected_files,
                      admin_password, allocations, network_info=network_info,
                      block_device_info=block_device_info, power_on=power_on,
                      accel_info=accel_info)
        # a server booted from a volume has no image_ref and no disk here
        if (instance.image_ref and image_meta is not None
                and image_meta.obj_attr_is_set("id") and image_meta.id):
            self._write_disk(context, instance, image_meta.id)

    def _write_disk(self, context, instance, image_id):
        # the image as is: lab images are small, and zeros stay holes
        chunks = glance.API().download(context, image_id)
        size = _write_sparse(chunks, disk_path(instance.uuid))
        LOG.info("disk %s: %d bytes from image %s",
                 disk_path(instance.uuid), size, image_id, instance=instance)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        super().destroy(context, instance, network_info,
                        block_device_info=block_device_info,
                        destroy_disks=destroy_disks,
                        destroy_secrets=destroy_secrets)
        # Only a deleted server loses its disk: Nova also destroys the guest
        # on one compute when a resize is reverted or a migration rolled back,
        # and the disk file is the other compute's too.
        deleting = (instance.task_state == task_states.DELETING
                    or instance.vm_state == vm_states.DELETED)
        if destroy_disks and deleting:
            try:
                os.unlink(disk_path(instance.uuid))
            except FileNotFoundError:
                pass

    def snapshot(self, context, instance, image_id, update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        image_api = glance.API()
        snapshot = image_api.get(context, image_id)
        path = disk_path(instance.uuid)
        if not os.path.exists(path):
            seed = ("%s:%s\n" % (instance.uuid, instance.name)).encode()
            data = (seed * (PLACEHOLDER_BYTES // len(seed) + 1))
            _write_sparse([data[:PLACEHOLDER_BYTES]], path)
        metadata = {
            "status": "active",
            "name": snapshot["name"],
            "disk_format": "raw",
            "container_format": "bare",
            "properties": {
                "image_location": "snapshot",
                "image_state": "available",
                "owner_id": instance.project_id,
            },
        }
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        # streamed from the file (a snapshot of the disk as it is now)
        with open(path, "rb") as fh:
            image_api.update(context, image_id, metadata, data=fh,
                             purge_props=False)


class ScaleFakeDriver(LabFakeDriver):
    """Many nodes per nova-compute, named <host>-n000, <host>-n001...

    Upstream's multi-node ``FakeDriver`` names its node UUIDs from
    ``uuidsentinel`` (new ones in every process, so a restarted compute would
    not find its nodes again) and writes no local node identity file (so Nova
    refuses the restart): both are fixed here. Servers get no disk file: the
    scale cloud measures Nova's paths, not bytes.
    """

    def init_host(self, host):
        self._host = host
        opts = CONF.cloudmgr_lab
        # each node reports these totals (Placement keeps each node's usage; the
        # driver's own "used" counters are one pool, which Nova does not read)
        self.resources = fake.Resources(vcpus=opts.scale_node_vcpus,
                                        memory_mb=opts.scale_node_ram_mb,
                                        local_gb=opts.scale_node_disk_gb)
        self._set_nodes(["%s-n%03d" % (host, i)
                         for i in range(opts.scale_nodes)])
        # writes the identity file on the first start, reads it after
        nova.virt.node.get_local_node_uuid()

    def _node_uuid(self, nodename):
        return str(uuid.uuid5(SCALE_NODE_NAMESPACE,
                              "%s/%s" % (self._host, nodename)))

    def get_available_resource(self, nodename):
        resources = fake.FakeDriver.get_available_resource(self, nodename)
        if resources:
            resources["uuid"] = self._node_uuid(nodename)
        return resources

    def get_nodenames_by_uuid(self, refresh=False):
        return {self._node_uuid(n): n for n in self.get_available_nodes()}

    def _write_disk(self, context, instance, image_id):
        pass
