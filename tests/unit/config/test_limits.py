"""Cloud limits as validate applies them: at the edge accepted, one past it refused, at the right key."""

from __future__ import annotations

from typing import Any

import pytest

from bakery.config import limits
from bakery.config.models import Image
from bakery.core import provenance


def image(**fields: Any) -> Image:
    return Image.model_validate({"version": "1.0", "source": {"aws": {"ami": "ami-0123456789abcdef0"}}, **fields})


def problems(img: Image, kind: str, name: str = "web") -> list[tuple[tuple[str | int, ...], str]]:
    return limits.image_problems(name, img, {kind: kind})


def test_budgets_follow_provenance():
    budgets = (limits.AWS_USER_TAGS_MAX, limits.AWS_DESCRIPTION_ROOM, limits.GCP_USER_LABELS_MAX)
    assert budgets == (
        50 - provenance.AWS_RESERVED_TAGS,
        provenance.AWS_DESCRIPTION_MAX - provenance.AWS_MARK_LENGTH,
        64 - len(provenance.STAMP_FIELDS) - 5,
    )


@pytest.mark.parametrize("kind", ["aws", "gcp"])
def test_an_ordinary_image_passes(kind):
    assert problems(image(description="nginx", tags={"team": "platform", "service": "web"}), kind) == []


def test_no_checks_for_local_targets():
    assert problems(image(description="d" * 1000, tags={"aws:x": "v" * 1000}), "local") == []


@pytest.mark.parametrize(
    ("tags", "at", "says"),
    [
        ({"k" * 128: "v" * 256}, None, None),
        ({"k" * 129: "v"}, "k" * 129, "AWS tag keys are at most 128 characters; this one has 129"),
        ({"k": "v" * 257}, "k", "AWS tag values are at most 256 characters; this one has 257"),
        ({"aws:team": "v"}, "aws:team", "keys starting with 'aws:' are reserved by AWS"),
        ({"Aws:team": "v"}, "Aws:team", "keys starting with 'aws:' are reserved by AWS"),
        ({"bakery:image": "v"}, "bakery:image", "keys starting with 'bakery:' are bakery's own"),
        ({"awsome": "v", "bakery-x": "v"}, None, None),
    ],
)
def test_aws_tag_keys_and_values(tags, at, says):
    found = problems(image(tags=tags), "aws")
    assert found == ([] if at is None else [(("images", "web", "tags", at), found[0][1])])
    if says:
        assert says in found[0][1]


def test_aws_tag_count_counts_overrides():
    at_limit = {f"t{i}": "x" for i in range(limits.AWS_USER_TAGS_MAX)}
    assert problems(image(tags=at_limit), "aws") == []
    over = problems(image(tags=at_limit, overrides={"aws": {"tags": {"one-more": "x"}}}), "aws")
    assert over == [
        (
            ("images", "web", "overrides", "aws", "tags"),
            f"{limits.AWS_USER_TAGS_MAX + 1} tags on target 'aws': an AMI holds 50 tags and bakery's provenance "
            f"needs {provenance.AWS_RESERVED_TAGS}, which leaves {limits.AWS_USER_TAGS_MAX}",
        )
    ]
    # an override that replaces a value adds no tag
    assert problems(image(tags=at_limit, overrides={"aws": {"tags": {"t0": "y"}}}), "aws") == []


def test_an_override_for_another_target_does_not_count():
    tags = {f"t{i}": "x" for i in range(limits.AWS_USER_TAGS_MAX)}
    img = image(tags=tags, overrides={"gcp": {"tags": {"aws:x": "y", "more": "z"}}})
    assert limits.image_problems("web", img, {"eu": "aws"}) == []


def test_aws_description_room_for_bakerys_mark():
    assert problems(image(description="d" * limits.AWS_DESCRIPTION_ROOM), "aws") == []
    assert problems(image(description="d" * (limits.AWS_DESCRIPTION_ROOM + 1)), "aws")[0][0] == (
        "images",
        "web",
        "description",
    )
    mark = provenance.aws_description("d" * limits.AWS_DESCRIPTION_ROOM, "0123456789ab")
    assert len(mark) == provenance.AWS_DESCRIPTION_MAX  # the room is exactly what the mark leaves


def test_ami_name_keeps_room_for_a_six_digit_patch():
    # web-VERSION.PATCH-TARGET-BAKE: the target's name and the bake's 12-character id are in it too
    version = "1." + "1" * (128 - len("web-1.") - len(".999999") - len("-aws-") - 12)
    assert problems(image(version=version), "aws") == []
    too_long = problems(image(version=version + "1"), "aws")
    assert too_long[0][0] == ("images", "web", "version")
    assert "129 characters with a 6-digit PATCH; AWS allows 128" in too_long[0][1]


@pytest.mark.parametrize(
    ("tags", "at", "says"),
    [
        ({"k" * 63: "v" * 63, "city": "é" * 10 + "abc"}, None, None),
        ({"k" * 64: "v"}, "k" * 64, "is 64 characters as a GCP label (limit 63)"),
        ({"city": "é" * 11}, "city", "is 66 characters as a GCP label (limit 63)"),
        ({"Team": "x"}, "Team", "must start with a lowercase letter"),
        ({"2fa": "x"}, "2fa", "must start with a lowercase letter"),
        ({"bakery-image": "x"}, "bakery-image", "GCP label keys starting with 'bakery-' are bakery's own"),
    ],
)
def test_gcp_labels_after_encoding(tags, at, says):
    found = problems(image(tags=tags), "gcp")
    assert [loc for loc, _ in found] == ([] if at is None else [("images", "web", "tags", at)])
    if says:
        assert says in found[0][1]


def test_gcp_label_count():
    at_limit = {f"t{i}": "x" for i in range(limits.GCP_USER_LABELS_MAX)}
    assert problems(image(tags=at_limit), "gcp") == []
    over = problems(image(tags={**at_limit, "more": "x"}), "gcp")
    assert [loc for loc, _ in over] == [("images", "web", "tags")]
    assert f"{limits.GCP_USER_LABELS_MAX + 1} tags on target 'gcp'" in over[0][1]


def test_gcp_image_name_and_family():
    version = "1." + "1" * (63 - len("web-1-") - len("-999999"))
    assert problems(image(version=version), "gcp") == []
    assert [loc for loc, _ in problems(image(version=version + "1"), "gcp")] == [("images", "web", "version")]
    assert [loc for loc, _ in problems(image(), "gcp", name="web-")] == [("images", "web-")]


def test_the_same_problem_on_two_targets_is_reported_once():
    img = image(tags={"aws:x": "y"})
    assert len(limits.image_problems("web", img, {"eu": "aws", "us": "aws"})) == 1
