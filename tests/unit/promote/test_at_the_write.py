"""What can change between a promotion's gates and its write is checked again where the move is
written: a revocation that lands meanwhile, or the channel it comes from no longer saying it was
its head, refuses the promotion (exit 1, an audit event) and nothing is written."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from bakery.promote.gates import Gates
from bakery.trust.revoke import Revoker
from tests.unit.promote.conftest import json_of
from tests.unit.promote.test_gates import audit_of
from tests.unit.promote.test_promote import promote, refused_gates, trust_of
from tests.unit.trust.conftest import World


def meanwhile(monkeypatch: pytest.MonkeyPatch, then: Any) -> None:
    """`then()` happens once every gate has been checked, before the move is written (another
    machine, in between)."""
    checked = Gates.check

    def check(self: Gates, *args: Any, **kwargs: Any) -> Any:
        found = checked(self, *args, **kwargs)
        then()
        return found

    monkeypatch.setattr(Gates, "check", check)


def test_a_revocation_landing_after_the_gates_refuses_the_promotion_and_writes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = world.bake()
    revoker = Revoker(world.project_dir.load(), trust_of(world), lambda _target: world.fake)
    meanwhile(monkeypatch, lambda: revoker.revoke(ref, reason="CVE-2026-5", target="aws"))
    result = promote(world, ref, "testing")
    gates = refused_gates(result)
    assert (
        f"error: refusing to promote {ref} on aws to testing: revocation failed, checked again as the move was "
        "written (nothing was written)" in result.stderr
    )
    assert list(gates) == ["revocation"] and gates["revocation"].startswith(f"{ref} is revoked since")
    refusal = audit_of(world, "promote")[-1]
    assert (refusal["result"], refusal["details"]["at"]) == ("refused", "the write")
    assert json_of(world.run("channels", "--json"))["channels"] == []


def test_promote_from_no_longer_holding_at_the_write_refuses_the_promotion(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = world.project_dir.config.read_text()
    world.project_dir.write(text[: text.index("  stable:\n")] + "  stable: {promote_from: testing}\n")
    ref = world.bake()
    assert promote(world, ref, "testing").exit_code == 0
    path = Path(world.project_dir.home) / "registry" / "channels" / "testing" / "aws" / "web.json"

    def tamper() -> None:
        doc = json.loads(path.read_text())
        statement = json.loads(base64.b64decode(doc["entries"][0]["payload"]))
        statement["predicate"]["by"] = "someone else"
        doc["entries"][0]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        path.write_text(json.dumps(doc))

    meanwhile(monkeypatch, tamper)
    result = promote(world, ref, "stable")
    gates = refused_gates(result)
    assert "promote_from failed, checked again as the move was written (nothing was written)" in result.stderr
    assert list(gates) == ["promote_from"]
    assert "channels/testing/aws/web.json in " in gates["promote_from"]
    assert "is not a channel history bakery can trust: entry 1 does not verify" in gates["promote_from"]
    assert audit_of(world, "promote")[-1]["result"] == "refused"
    assert not (Path(world.project_dir.home) / "registry" / "channels" / "stable").exists()
