"""GCP managed instance groups, moved by the MIG updater (rolling, canary) or a second MIG (blue-green)."""
