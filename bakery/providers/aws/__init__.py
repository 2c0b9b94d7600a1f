"""AWS: AMIs baked by Packer's amazon-ebs builder, tagged with provenance, with their copies."""
