"""The trust rooms' world (a signed project baked against the fake cloud) serves the SBOM tests too."""

from tests.unit.trust.conftest import world as world  # the fixture, by its name
