"""Values -> HCL -> values: every hostile string survives python-hcl2 exactly."""

from __future__ import annotations

import pytest

from bakery.bake import hcl

HOSTILE = [
    ("double-quote", '"'),
    ("quoted-word", 'say "hi"'),
    ("backslash", "\\"),
    ("backslash-n-literally", "\\n"),
    ("backslash-quote", '\\"'),
    ("interpolation", "${x}"),
    ("directive", "%{y}"),
    ("escaped-interpolation", "$${z}"),
    ("escaped-directive", "%%{w}"),
    ("backslash-before-interpolation", "\\${x}"),
    ("interpolation-inside-text", "a ${b} c %{ if d } e"),
    ("lone-sigils", "$ % $$ %% { }"),
    ("newline", "line one\nline two"),
    ("carriage-return", "a\r\nb"),
    ("tab", "a\tb"),
    ("control-char", "\x01"),
    ("nul", "\x00"),
    ("delete", "\x7f"),
    ("non-ascii", "é ✓"),
    ("emoji", "🍞🥐"),
    ("line-separator", "a\u2028b"),
    ("comment-like", "# not a comment // nor /* this */"),
    ("heredoc-like", "<<EOF\nx\nEOF"),
    ("hcl-syntax", 'x = "y" }\n{'),
    ("empty", ""),
    ("quote-then-interpolation", '"${x}"'),
    ("quote-then-interpolation-in-text", 'run "${cmd}" now'),
    ("quote-then-directive", '"%{y}"'),
    ("json-of-interpolation", '{"k": "${x}"}'),
]


@pytest.mark.parametrize("text", [h[1] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_string_round_trips(text):
    written = hcl.dumps_assignments({"value": text})
    assert hcl.loads_values(written) == {"value": text}


@pytest.mark.parametrize("text", [h[1] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_written_text_is_the_escaped_literal(text):
    # What Packer reads: python-hcl2's writer must not alter the literal bakery made.
    assert hcl.dumps_assignments({"value": text}) == f"value = {hcl.literal(text)}\n"


@pytest.mark.parametrize("text", [h[1] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_string_round_trips_as_map_key_and_list_item(text):
    data = {"tags": {text: text, "plain": "x"}, "items": [text, "x", text]}
    assert hcl.loads_values(hcl.dumps_assignments(data)) == data


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", '"plain"'),
        ("${x}", '"$${x}"'),
        ("%{y}", '"%%{y}"'),
        ("$${z}", '"$$${z}"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("a\nb\tc\rd", '"a\\nb\\tc\\rd"'),
        ("\x01\x7f", '"\\u0001\\u007f"'),
        ("é ✓ 🍞", '"é ✓ 🍞"'),
    ],
)
def test_literal_is_an_escaped_hcl_string(text, expected):
    assert hcl.literal(text) == expected


def test_assignments_are_written_one_per_line():
    written = hcl.dumps_assignments({"name": "web", "count": 2, "on": True})
    assert written == 'name  = "web"\ncount = 2\non    = true\n'  # aligned as `packer fmt` writes them


@pytest.mark.parametrize("key", ["a b", "c:d", "with.dot", "a/b", "x=y", "1abc", "Name", "", 'k"q', "${k}"])
def test_map_keys_that_are_not_identifiers_round_trip(key):
    data = {"tags": {key: "v", "other": "w"}}
    assert hcl.loads_values(hcl.dumps_assignments(data)) == data


@pytest.mark.parametrize(
    "data",
    [
        True,
        False,
        None,
        0,
        1,
        -2,
        4096,
        10**20,
        3.5,
        -0.25,
        [],
        {},
        ["a", 1, True, None],
        [["nested"], {"k": [1, 2]}],
        {"outer": {"inner": {"leaf": ["x", "y"]}}},
    ],
    ids=repr,
)
def test_scalars_lists_and_maps_round_trip(data):
    assert hcl.loads_values(hcl.dumps_assignments({"v": data})) == {"v": data}


def test_tuples_are_written_as_lists():
    assert hcl.loads_values(hcl.dumps_assignments({"v": ("a", "b")})) == {"v": ["a", "b"]}


def test_value_refuses_what_hcl_cannot_express():
    with pytest.raises(TypeError, match="cannot express set"):
        hcl.value({"a"})


@pytest.mark.parametrize("name", ["image_name", "a-b", "_x", "X1"])
def test_identifier_names_are_accepted(name):
    assert hcl.loads_values(hcl.dumps_assignments({name: 1})) == {name: 1}


@pytest.mark.parametrize(
    "name",
    ["1a", "a b", "", "a.b", "a=b", "é", 'a"', "a\n", "a\nb = 1\nc"],
    ids=["digit-first", "space", "empty", "dot", "equals", "non-ascii", "quote", "trailing-newline", "injected-line"],
)
def test_non_identifier_names_are_rejected(name):
    with pytest.raises(ValueError, match="not an HCL identifier"):
        hcl.dumps_assignments({name: 1})
