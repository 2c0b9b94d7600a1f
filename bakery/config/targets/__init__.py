"""The kinds bakery ships, one module each: its images.yaml blocks, its checks and its `KIND`
(registered by bakery.config.builtin)."""
