"""The YAML reader: what it makes of a file, where it says each key is, and what it refuses."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from bakery.config import yamlload
from bakery.errors import ConfigError


def read(tmp_path: Path, text: str | bytes):
    path = tmp_path / "images.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return yamlload.read(path)


def refusal(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(ConfigError) as exc:
        read(tmp_path, text)
    assert exc.value.exit_code == 2
    return exc.value.message.removeprefix(f"{tmp_path / 'images.yaml'}:")


def test_plain_data_and_the_position_of_every_key(tmp_path):
    data, marks = read(tmp_path, "a:\n  b: [1, x]\n  c: {d: true}\n")
    assert data == {"a": {"b": [1, "x"], "c": {"d": True}}}
    assert marks[("a",)] == (1, 1)
    assert marks[("a", "b")] == (2, 3)
    assert marks[("a", "b", 1)] == (2, 10)
    assert marks[("a", "c", "d")] == (3, 7)


def test_dates_and_yaml_1_1_oddities_stay_text(tmp_path):
    data, _ = read(tmp_path, "released: 2024-01-10\nat: 2024-01-10 12:00:00\neq: =\nmerge: <<\n")
    assert data == {"released": "2024-01-10", "at": "2024-01-10 12:00:00", "eq": "=", "merge": "<<"}


def test_a_byte_order_mark_is_fine(tmp_path):
    assert read(tmp_path, "\ufeffa: 1\n")[0] == {"a": 1}


def test_merge_keys_follow_yaml_merge(tmp_path):
    text = (
        "base: &base {a: 1, b: 1, c: 1}\n"
        "more: &more {b: 2, d: 2, <<: *base}\n"  # nested merge: its own b wins over base's
        "one:\n  <<: [*more, *base]\n  c: 3\n"  # earlier mapping wins; explicit key wins wherever it is
        "two:\n  c: 3\n  <<: *base\n"
    )
    data, marks = read(tmp_path, text)
    assert data["more"] == {"b": 2, "d": 2, "a": 1, "c": 1}
    assert data["one"] == {"b": 2, "d": 2, "a": 1, "c": 3}
    assert data["two"] == {"c": 3, "a": 1, "b": 1}
    assert marks[("one", "a")] == (1, 14)  # where the merged value is written: in the anchor
    assert marks[("one", "c")] == (5, 3)  # an explicit key: where it is


def test_quoted_merge_key_is_an_ordinary_key(tmp_path):
    assert read(tmp_path, "x: &x {a: 1}\ny: {'<<': *x}\n")[0]["y"] == {"<<": {"a": 1}}


def test_anchors_shared_between_entries_are_copied(tmp_path):
    data, _ = read(tmp_path, "a: &v [1, 2]\nb: *v\n")
    assert data["a"] == data["b"] == [1, 2]
    assert data["a"] is not data["b"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a: !Ref x\n", "1:4: YAML tag !Ref is not allowed"),
        ("a: !!str 1\n", "1:4: YAML tag !!str is not allowed"),
        ("a: ! 1\n", "1:4: YAML tag ! is not allowed"),
        ("!!map {a: 1}\n", "1:1: YAML tag !!map is not allowed"),
        ("a: !!binary aGk=\n", "1:4: YAML tag !!binary is not allowed"),
        ("a:\n  - !<tag:example.com,2024:x> 1\n", "2:5: YAML tag tag:example.com,2024:x is not allowed"),
        ("? !!python/name:os.system\n: 1\n", "1:3: YAML tag !!python/name:os.system is not allowed"),
    ],
)
def test_tags_are_refused_naming_the_tag_and_its_line(tmp_path, text, says):
    assert refusal(tmp_path, text).startswith(says)


def test_a_recursive_alias_is_refused_where_the_alias_is(tmp_path):
    message = refusal(tmp_path, "a: 1\nb: &b\n  c: [1, *b]\n")
    assert message.startswith("3:10: alias *b is inside the node it names (&b on line 2)")


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path):
    lines = ['l0: &l0 "lol"'] + [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 10)]
    tracemalloc.start()
    try:
        message = refusal(tmp_path, "\n".join(lines) + "\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.startswith("6:5: aliases expand this value to more than")  # l5: 111111 nodes
    assert peak < 20 * 2**20, f"{peak} bytes: the bomb was expanded"


def test_many_merges_of_a_block_of_defaults_are_fine(tmp_path):
    # 300 images each merging 10 keys: the expansion stays proportionate to the text.
    defaults = "x-defaults: &d {" + ", ".join(f"k{i}: v" for i in range(10)) + "}\n"
    images = "".join(f"i{n}: {{<<: *d, name: i{n}}}\n" for n in range(300))
    data, _ = read(tmp_path, defaults + images)
    assert len(data) == 301 and data["i299"]["k9"] == "v"


def test_nesting_is_bounded(tmp_path):
    assert refusal(tmp_path, "[" * 200).startswith(f"1:{yamlload.MAX_DEPTH + 1}: nesting deeper than")
    data, _ = read(tmp_path, "[" * 40 + "]" * 40)
    assert data is not None


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"a: 1\nb: \xc3\x28\n", "2:4: byte 0xc3 is not UTF-8 text"),
        (b"a: 1\nb: \xe9t\xe9\n", "2:4: byte 0xe9 is not UTF-8 text"),
        (b"a: 1\nb: caf\xc3\xa9 \xff\n", "2:9: byte 0xff is not UTF-8 text"),  # columns count characters
        (b"a: 1\n\x00", "2:1: character U+0000 is not allowed"),
        (b"a: \x07\n", "1:4: character U+0007 is not allowed"),
    ],
)
def test_bytes_that_are_not_yaml_text_are_located(tmp_path, raw, says):
    assert refusal(tmp_path, raw).startswith(says)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a: 1\na: 2\n", "2:1: a: key 'a' appears twice"),
        ("a: {true: 1}\n", "1:5: a: key 'true' is read as bool"),
        ("a: {null: 1}\n", "1:5: a: key 'null' is read as NoneType"),
        ("a: {1.5: 1}\n", "1:5: a: key '1.5' is read as float"),
        ("a: {[1]: 1}\n", "1:5: a: key [...] is read as a collection"),
        ("a: {<<: 1}\n", "1:5: a: a merge key '<<' takes a mapping"),
        ("a: {<<: [{b: 1}, 2]}\n", "1:5: a: a merge key '<<' takes a mapping"),
        ("a: [1\n", "2:1: not valid YAML: while parsing a flow sequence"),
        ("a: *nope\n", "1:4: not valid YAML: found undefined alias 'nope'"),
        ("", "1:1: the file is empty"),
    ],
)
def test_other_refusals_are_located(tmp_path, text, says):
    assert refusal(tmp_path, text).startswith(says)


def test_integer_keys_become_text(tmp_path):
    assert read(tmp_path, "1: a\n0x10: b\n")[0] == {"1": "a", "16": "b"}


def test_key_path():
    assert yamlload.key_path(("images", "web", "playbooks", 1)) == "images.web.playbooks[1]"
    assert yamlload.key_path(()) == "(top level)"
