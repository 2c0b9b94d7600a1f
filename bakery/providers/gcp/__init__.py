"""GCP: Compute Engine images baked by Packer's googlecompute builder, labelled with provenance."""
