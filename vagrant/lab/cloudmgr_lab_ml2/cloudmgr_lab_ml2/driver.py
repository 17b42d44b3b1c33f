"""Binds every port of VNIC type 'normal' on any host, with no L2 agent.

The lab runs Nova with a fake virt driver and no Neutron agents; without a
mechanism driver that can bind, every port ends in 'binding_failed' and Nova
refuses to boot. This driver binds the first segment offered (flat, vlan or
any other type), reports VIF type 'ovs' and marks the port ACTIVE, which is
what a real agent would do once the wiring is done.
"""

from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api
from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class LabMechanismDriver(api.MechanismDriver):

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def initialize(self):
        LOG.info("cloudmgr lab ML2 mechanism driver initialized")

    def bind_port(self, context):
        port = context.current
        vnic_type = port.get(portbindings.VNIC_TYPE, portbindings.VNIC_NORMAL)
        if vnic_type != portbindings.VNIC_NORMAL:
            LOG.debug("not binding port %s of vnic_type %s", port["id"], vnic_type)
            return
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True,
                 portbindings.OVS_HYBRID_PLUG: False},
                status=constants.PORT_STATUS_ACTIVE)
            LOG.debug("bound port %s on host %s to segment %s",
                      port["id"], context.host, segment[api.ID])
            return
