"""The offline vulnerability gate: an image's SBOM matched against a feed the user names."""
