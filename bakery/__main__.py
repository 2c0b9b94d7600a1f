from __future__ import annotations

from bakery.cli.app import main

main()
