"""bakery: golden VM images baked with Packer and Ansible, with provenance."""

from __future__ import annotations

__version__ = "0.1.0"
