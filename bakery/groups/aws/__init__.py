"""AWS Auto Scaling groups, moved by instance refresh (rolling, canary) or a second ASG (blue-green)."""
