"""`bakery prune`: remove image versions nothing uses, by each image's policy (decide.py, pure),
from facts read live (facts.py), with a journal per removal so an interrupted prune finishes on
rerun (service.py)."""
