"""The kinds bakery ships: one registration line each (bakery.config.kinds reads this module first).

Each kind's images.yaml blocks and checks are in bakery/config/targets/<kind>.py, its provider in
bakery/providers/<kind>/, its group driver in bakery/groups/<kind>/.
"""

from __future__ import annotations

from bakery.config.kinds import register
from bakery.config.targets import aws, gcp, local

register(local.KIND)
register(aws.KIND)
register(gcp.KIND)
