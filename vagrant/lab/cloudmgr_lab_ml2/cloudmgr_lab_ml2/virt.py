"""Nova virt driver of the lab: Nova's own fake driver, restart-proof.

``nova.virt.fake.FakeDriverWithoutFakeNodes`` keeps its node identity across
restarts, but its guests live in process memory only: after the lab restarts,
servers that Nova still lists as ACTIVE are unknown to the driver and every
action on them (stop, reboot, migrate...) fails with InstanceNotFound.

At start-up nova-compute calls ``plug_vifs`` for each of its instances; this
subclass uses that call to take them back, in the power state Nova recorded.
Everything else is the upstream fake driver. Run by
``cloudmgr-lab-nova-compute`` (compute.py) with
``compute_driver = cloudmgr_lab.LabFakeDriver``.
"""

from nova.compute import power_state
from nova.virt import fake


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
