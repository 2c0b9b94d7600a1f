"""A request loop against a group's front port (tests, `make demo` and bench/): which version
served each request, and every request that failed. Loopback only."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections import Counter

VERSION = re.compile(r'id="version">([^<]+)<')


def page_version(port: int) -> str:
    """The version named by the page served on 127.0.0.1:`port` ("?" when it names none)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=15) as answer:
        found = VERSION.search(answer.read().decode())
    return found.group(1) if found else "?"


class Traffic:
    """GET / on a group's front port, ten a second, while the block runs: the versions served,
    and every request that failed (refused, reset, timed out, an error status, a page without a
    version). Ten a second lands several requests in every drain and swap (each takes seconds);
    more would only keep the emulated VMs busy serving them."""

    PAUSE = 0.1

    def __init__(self, port: int) -> None:
        self.port = port
        self.served: Counter[str] = Counter()
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                version = page_version(self.port)
            except Exception as exc:  # every failed request counts (IncompleteRead is no OSError)
                self.failed.append(repr(exc))
                time.sleep(self.PAUSE)
                continue
            if version == "?":
                self.failed.append("a page without a version")
            else:
                self.served[version] += 1
            time.sleep(self.PAUSE)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if not self.served and not self.failed:
            raise AssertionError(f"no request reached 127.0.0.1:{self.port} while the loop ran")
