"""Group drivers behind groups.base.GroupDriver, one folder per target kind, with the pure rollout
strategy and the health gates beside the interface."""
