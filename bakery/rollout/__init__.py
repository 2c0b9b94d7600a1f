"""The rollout service: pick the image, plan, hold the group, run the driver's steps, status."""
