"""Signing, keys (files and KMS), attestations, verify, the rollout gate, revocation and the audit log."""
