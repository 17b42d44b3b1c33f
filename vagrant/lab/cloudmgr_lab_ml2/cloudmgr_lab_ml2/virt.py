"""Nova virt driver of the lab: Nova's own fake driver, restart-proof.

``nova.virt.fake.FakeDriverWithoutFakeNodes`` keeps its node identity across
restarts, but its guests live in process memory only: after the lab restarts,
servers that Nova still lists as ACTIVE are unknown to the driver and every
action on them (stop, reboot, migrate...) fails with InstanceNotFound.

At start-up nova-compute calls ``plug_vifs`` for each of its instances; this
subclass uses that call to take them back, in the power state Nova recorded.
The upstream fake driver's snapshot uploads nothing, so the image never
becomes active; ``snapshot`` here uploads a small made-up disk to Glance the
way the libvirt driver uploads a real one, so snapshots (and the cross-cloud
moves built on them) can be tested end to end.

Everything else is the upstream fake driver. Run by
``cloudmgr-lab-nova-compute`` (compute.py) with
``compute_driver = cloudmgr_lab.LabFakeDriver``.
"""

import io

from nova.compute import power_state
from nova.compute import task_states
from nova import exception
from nova.image import glance
from nova.virt import fake

# A recognisable, small "disk": the guest's name repeated to 64 KiB.
SNAPSHOT_BYTES = 64 * 1024


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

    def snapshot(self, context, instance, image_id, update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        image_api = glance.API()
        snapshot = image_api.get(context, image_id)
        seed = ("%s:%s\n" % (instance.uuid, instance.name)).encode()
        data = (seed * (SNAPSHOT_BYTES // len(seed) + 1))[:SNAPSHOT_BYTES]
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
        image_api.update(context, image_id, metadata, data=io.BytesIO(data),
                         purge_props=False)
