"""The bake service: plan what is stale, render Packer HCL, run the bake's steps, rebuild in order."""
