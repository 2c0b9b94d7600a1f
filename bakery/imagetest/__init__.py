"""Image tests: boot a finished image, test it, remove the instance, sign what was found.

    service.py   `bakery test` and the tests after each bake (Tester)
    base.py      the Launcher interface (one per target kind), Reach, the test's SSH key
    ansible.py   test playbooks through ansible-runner; results per task and host from its events
    http.py      waiting for the instance; HTTP checks
    local.py     QEMU VMs on this machine;  aws.py  EC2 instances;  gcp.py  GCE instances
    cloud.py     what aws.py and gcp.py share (their making, the cleanup's second look)
    lifetime.py  the bound on a cloud test instance's life, which the cloud enforces

The signed result's format is in bakery/trust/testresults.py.
"""
