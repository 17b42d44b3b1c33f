"""nova-compute for the lab: Nova's own command, with the lab's virt driver.

Nova loads ``compute_driver`` from the ``nova.virt`` package only; this entry
point (``cloudmgr-lab-nova-compute``) makes ``cloudmgr_lab_ml2.virt``
available there as ``nova.virt.cloudmgr_lab`` and runs nova-compute, so that
``compute_driver = cloudmgr_lab.LabFakeDriver`` works.
"""

import sys


def main():
    # nova.cmd.compute applies Nova's concurrency set-up at import: first
    from nova.cmd import compute
    import nova.virt

    from cloudmgr_lab_ml2 import virt
    sys.modules["nova.virt.cloudmgr_lab"] = virt
    nova.virt.cloudmgr_lab = virt
    return compute.main()


if __name__ == "__main__":
    sys.exit(main())
