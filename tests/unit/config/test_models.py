"""The models on their own: sizes, strict numbers and booleans, and the defaults a recipe starts with."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bakery.config.models import LocalSource, LocalTarget, Strategy, parse_size_mib


@pytest.mark.parametrize(
    ("value", "mib"),
    [
        (4096, 4096),
        (2.0, 2),
        ("4096", 4096),
        ("512M", 512),
        ("512MiB", 512),
        ("4G", 4096),
        ("4gib", 4096),
        ("1gb", 1024),
    ],
)
def test_sizes_in_mib(value, mib):
    assert parse_size_mib(value) == mib


@pytest.mark.parametrize("value", [True, 2.5, "", "0x10", "4 G", " 4G", "4G ", "4T", "1.5G", "\u0664G", None, [4]])
def test_what_is_not_a_size(value):
    with pytest.raises(ValueError, match="expected a size such as 4096"):
        parse_size_mib(value)


def test_numbers_and_booleans_are_strict_but_whole_floats_are_numbers():
    assert LocalTarget.model_validate({"kind": "local", "cpus": 2.0, "memory": "1G"}).cpus == 2
    for wrong in ({"cpus": "2"}, {"cpus": True}, {"cpus": 2.5}, {"memory": 0}):
        with pytest.raises(ValidationError):
            LocalTarget.model_validate({"kind": "local", **wrong})
    assert Strategy.model_validate({"batch_size": 3.0}).batch_size == 3
    assert Strategy.model_validate({"batch_size": "100%"}).batch_size == "100%"


def test_a_recipe_names_no_mirror_by_default():
    # None: the build machine's apt source (bakery.aptsource), resolved when the base disk is made.
    assert LocalSource().mirror is None
    assert LocalSource().suite == "bookworm"
