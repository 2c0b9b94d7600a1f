"""A Launcher that keeps the promises of bakery.imagetest.base.Launcher without booting anything:
its "instances" are entries in a dict, reached at whatever `reach` a test gives (a stand-in HTTP
server on 127.0.0.1, Ansible's local connection).

`leftovers` are what the next sweep() says it removed (instances of killed runs).
Faults: `fail("launch")` makes a method raise ProviderError; `on("alive", action)` runs an action
when the method is called (a signal sent to this process, as Ctrl-C or `kill` while bakery waits
for the instance). Every call is logged in `calls`; `running` says what was never cleaned up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bakery.errors import ProviderError
from bakery.imagetest.base import Launched, LaunchRequest, Reach


@dataclass
class FakeLauncher:
    reach: Reach
    alive_answer: bool = True
    console_text: str = ""
    running: dict[str, LaunchRequest] = field(default_factory=dict)  # run id -> its request
    leftovers: list[str] = field(default_factory=list)  # what the next sweep removes
    calls: list[str] = field(default_factory=list)
    _fail: dict[str, str] = field(default_factory=dict)
    _on: dict[str, Callable[[], None]] = field(default_factory=dict)

    def fail(self, method: str, message: str = "the cloud refused") -> None:
        self._fail[method] = message

    def on(self, method: str, action: Callable[[], None]) -> None:
        self._on[method] = action

    def _call(self, method: str) -> None:
        self.calls.append(method)
        action = self._on.get(method)
        if action is not None:
            action()
        if method in self._fail:
            raise ProviderError(f"fake: {method}: {self._fail[method]}")

    def launch(self, request: LaunchRequest) -> Launched:
        # As a cloud does: the instance exists from the request on, even if the answer is lost.
        self.running[request.run] = request
        self._call("launch")
        return Launched(request.name, "in the fake cloud", self.reach)

    def alive(self, launched: Launched) -> bool:
        self._call("alive")
        return self.alive_answer

    def cleanup(self, request: LaunchRequest) -> list[str]:
        self._call("cleanup")
        gone = self.running.pop(request.run, None)
        return [f"instance {gone.name}"] if gone is not None else []

    def sweep(self, request: LaunchRequest) -> list[str]:
        self._call("sweep")
        removed, self.leftovers = self.leftovers, []
        return removed

    def console(self, launched: Launched) -> str:
        return self.console_text
