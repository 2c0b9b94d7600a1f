from __future__ import annotations

from bakery.cli import main

main()
