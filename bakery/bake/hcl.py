"""Values -> HCL through python-hcl2. No user value is ever spliced into HCL text by hand.

python-hcl2's dict form holds HCL *expressions*: a string value must already be a quoted,
escaped HCL literal. `literal` makes one; `to_hcl` applies it recursively and hands the
dict to `hcl2.dumps`. `from_hcl` is the inverse, for tests and for reading renders back.
"""

from __future__ import annotations

import json
import re
from typing import Any

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# A quote right before ${ is written \u0022: python-hcl2's writer mangles \" followed by $${.
_NEEDS_ESCAPE = re.compile(r'"(?=\$\{)|[\\"\n\r\t\x00-\x1f\x7f]|\$\{|%\{')
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _escape(match: re.Match[str]) -> str:
    text = match.group(0)
    if text == '"' and match.string.startswith("${", match.end()):
        return "\\u0022"
    if text in ("${", "%{"):
        # HCL template sequences are escaped by doubling the sigil: $${ and %%{.
        return text[0] + text
    return _ESCAPES.get(text) or f"\\u{ord(text):04x}"


def literal(value: str) -> str:
    """A Python string as a quoted HCL string literal that evaluates to exactly that string."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'


def value(data: Any) -> Any:
    """Python data -> python-hcl2 expression form (strings quoted, keys quoted where needed)."""
    if isinstance(data, bool) or data is None:
        return {True: "true", False: "false", None: "null"}[data]
    if isinstance(data, (int, float)):
        return data
    if isinstance(data, str):
        return literal(data)
    if isinstance(data, (list, tuple)):
        return [value(item) for item in data]
    if isinstance(data, dict):
        return {literal(str(k)): value(v) for k, v in data.items()}
    raise TypeError(f"cannot express {type(data).__name__} in HCL")


def dumps_assignments(assignments: dict[str, Any]) -> str:
    """A .pkrvars.hcl body: `name = <value>` per entry. Names must be HCL identifiers."""
    import hcl2  # python-hcl2 pulls in lark; import it only when rendering

    for name in assignments:
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"not an HCL identifier: {name!r}")
    return aligned(str(hcl2.dumps({name: value(v) for name, v in assignments.items()})))


_ATTRIBUTE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*) += (.*)$")


def aligned(text: str) -> str:
    """`text` with the `=` of each run of one-line top-level attributes aligned, as `packer fmt`
    writes them (an attribute whose value spans lines ends a run and is left as it is)."""
    lines = text.split("\n")
    out: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(name) for name, _ in run), default=0)
        out.extend(f"{name.ljust(width)} = {rest}" for name, rest in run)
        run.clear()

    for line in lines:
        found = _ATTRIBUTE.match(line)
        if found and not found.group(2).rstrip().endswith(("{", "[", "(")):
            run.append((found.group(1), found.group(2)))
            continue
        flush()
        out.append(line)
    flush()
    return "\n".join(out)


def dumps_body(body: dict[str, Any]) -> str:
    """An HCL document from hcl2.Builder output (blocks already marked)."""
    import hcl2

    return str(hcl2.dumps(body))


def unliteral(expr: Any) -> Any:
    """Inverse of `value` for what python-hcl2's loads returns."""
    if isinstance(expr, str):
        if expr in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[expr]
        if len(expr) >= 2 and expr[0] == expr[-1] == '"':
            body = expr[1:-1].replace("$${", "\x00D").replace("%%{", "\x00P")
            text = json.loads('"' + body.replace("\x00D", "${").replace("\x00P", "%{") + '"')
            return str(text)
        return expr
    if isinstance(expr, list):
        return [unliteral(item) for item in expr]
    if isinstance(expr, dict):
        return {unliteral(k): unliteral(v) for k, v in expr.items() if k != "__is_block__"}
    return expr


def loads_values(text: str) -> dict[str, Any]:
    """Parse HCL assignments back to Python values (python-hcl2 + unliteral)."""
    import hcl2

    parsed = hcl2.loads(text)
    return {k: unliteral(v) for k, v in parsed.items() if not k.startswith("__")}
