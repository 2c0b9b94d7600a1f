"""The command line: parse arguments, call a service, render its result as text or JSON. Nothing else."""
