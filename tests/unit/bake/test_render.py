"""render: a Project and one image on one target -> a Packer build directory (no packer run)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from bakery import packer
from bakery.bake import hcl, render
from bakery.config import kinds
from bakery.core.provenance import decode_label
from bakery.errors import ConfigError

BASE = {
    "targets": {
        "aws": {"kind": "aws", "region": "eu-west-1", "copy_to": ["eu-central-1"]},
        "gcp": {"kind": "gcp", "project": "bakery-demo", "zone": "europe-west1-b"},
    },
    "images": {
        "web": {
            "description": "the web image",
            "version": "1.0",
            "source": {
                "aws": {"ami": "ami-0123456789abcdef0"},
                "gcp": {"family": "debian-12", "project": "debian-cloud"},
            },
            "playbooks": ["playbooks/base.yml", "playbooks/web.yml"],
            "vars": {"page_title": "Hello"},
            "tags": {"team": "platform"},
        }
    },
}
BUILDER_FILE = {"aws": "amazon-ebs.pkr.hcl", "gcp": "googlecompute.pkr.hcl"}


def write_project(project_dir, **image: object):
    data = copy.deepcopy(BASE)
    data["images"]["web"].update(image)
    project_dir.write(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return project_dir.load()


def do_render(project, target: str, out: Path, packer_version: str = "1.11.0", version: str = "1.0.0"):
    return render.render(
        project, project.effective("web", target), version=version, packer_version=packer_version, out=out
    )


def read_vars(out: Path) -> dict:
    return hcl.loads_values((out / render.VARS_FILE).read_text(encoding="utf-8"))


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_render_writes_a_complete_build_directory(project_dir, tmp_path, target):
    project = write_project(project_dir)
    out = tmp_path / "out"
    result = do_render(project, target, out)
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert {
        "common-variables.pkr.hcl",
        BUILDER_FILE[target],
        "bakery.auto.pkrvars.hcl",
        "plugins.pkr.hcl",
        "ansible/site.yml",
        "ansible/playbooks/base.yml",
        "ansible/playbooks/web.yml",
        "ansible/playbooks/roles/image_identity/tasks/main.yml",
        "ansible/playbooks/roles/nginx_page/tasks/main.yml",
        "ansible/playbooks/roles/nginx_page/templates/index.html.j2",
        "scripts/hygiene.sh",
        "scripts/stage-boot.sh",
    } <= written
    other = BUILDER_FILE["gcp" if target == "aws" else "aws"]
    assert other not in written and "qemu.pkr.hcl" not in written
    assert result.builder == BUILDER_FILE[target].removesuffix(".pkr.hcl")
    hygiene = (project_dir.root / "templates/scripts/hygiene.sh").read_bytes()
    assert (out / "scripts/hygiene.sh").read_bytes() == hygiene
    role = "playbooks/roles/nginx_page/templates/index.html.j2"
    assert (out / "ansible" / role).read_bytes() == (project_dir.root / role).read_bytes()
    # files: every written file but the vars file, with its sha256
    assert set(result.files) == written - {"bakery.auto.pkrvars.hcl"}
    assert result.files["scripts/hygiene.sh"] == hashlib.sha256(hygiene).hexdigest()


def test_site_yml_imports_the_playbooks_in_order(project_dir, tmp_path):
    project = write_project(project_dir, playbooks=["playbooks/web.yml", "playbooks/base.yml"])
    out = tmp_path / "out"
    do_render(project, "aws", out)
    site = yaml.safe_load((out / "ansible/site.yml").read_text())
    assert site == [{"import_playbook": "playbooks/web.yml"}, {"import_playbook": "playbooks/base.yml"}]


def test_image_without_playbooks_gets_a_no_op_site(project_dir, tmp_path):
    project = write_project(project_dir, playbooks=[])
    out = tmp_path / "out"
    do_render(project, "aws", out)
    site = yaml.safe_load((out / "ansible/site.yml").read_text())
    assert site == [{"name": "no playbooks", "hosts": "all", "gather_facts": False, "tasks": []}]


def test_galaxy_requirements_travel_with_the_playbooks(project_dir, tmp_path):
    (project_dir.root / "playbooks/requirements.yml").write_text("collections: [community.general]\n")
    project = write_project(project_dir)
    out = tmp_path / "out"
    do_render(project, "aws", out)
    assert read_vars(out)["galaxy_file"] == "playbooks/requirements.yml"
    assert (out / "ansible/playbooks/requirements.yml").read_text() == "collections: [community.general]\n"


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_pkrvars_parse_back_to_the_variables(project_dir, tmp_path, target):
    project = write_project(project_dir)
    out = tmp_path / "out"
    result = do_render(project, target, out, version="1.0.7")
    parsed = read_vars(out)
    expected = render.variables(project, project.effective("web", target), "1.0.7").as_dict()
    assert parsed == expected == result.variables.as_dict()
    assert parsed["image_name"] == "web"
    assert parsed["image_version"] == "1.0.7"
    assert parsed["image_description"] == "the web image"
    assert json.loads(parsed["ansible_extra_vars"]) == {
        "page_title": "Hello",
        "bakery_image": "web",
        "bakery_version": "1.0.7",
        "bakery_target": target,
        "bakery_description": "the web image",
    }


def test_aws_variables(project_dir, tmp_path):
    out = tmp_path / "out"
    do_render(write_project(project_dir), "aws", out)
    parsed = read_vars(out)
    assert parsed["region"] == "eu-west-1"
    assert parsed["source_ami"] == "ami-0123456789abcdef0"
    assert parsed["source_ami_filter_name"] == ""
    assert parsed["ami_regions"] == ["eu-central-1"]
    assert parsed["encrypt_boot"] is True
    assert parsed["volume_size"] == 8
    assert parsed["image_tags"] == {"team": "platform"}


def test_aws_filter_source(project_dir, tmp_path):
    source = copy.deepcopy(BASE["images"]["web"]["source"])
    source["aws"] = {"filter": {"owners": ["136693071363"], "name": "debian-12-amd64-*"}}
    out = tmp_path / "out"
    do_render(write_project(project_dir, source=source), "aws", out)
    parsed = read_vars(out)
    assert parsed["source_ami"] == ""
    assert parsed["source_ami_filter_name"] == "debian-12-amd64-*"
    assert parsed["source_ami_filter_owners"] == ["136693071363"]
    assert parsed["source_ami_most_recent"] is True


def test_gcp_variables(project_dir, tmp_path):
    out = tmp_path / "out"
    do_render(
        write_project(project_dir, tags={"team": "platform", "cost-center": "Web Shop"}), "gcp", out, version="1.0.12"
    )
    parsed = read_vars(out)
    assert parsed["project_id"] == "bakery-demo"
    assert parsed["source_image"] == ""
    assert parsed["source_image_family"] == "debian-12"
    assert parsed["source_image_project_id"] == ["debian-cloud"]
    assert parsed["gcp_image_name"] == "web-1-0-12"
    assert parsed["image_family"] == "web"
    assert {decode_label(k): decode_label(v) for k, v in parsed["image_tags"].items()} == {
        "team": "platform",
        "cost-center": "Web Shop",
    }
    assert all(set(v) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-") for v in parsed["image_tags"].values())


HOSTILE = [
    ("quote", 'say "hi"'),
    ("backslash", "C:\\path\\n"),
    ("interpolation", "${x}"),
    ("directive", "%{ if y }"),
    ("escaped-interpolation", "$${z}"),
    ("newline-tab", "a\nb\tc"),
    ("control-char", "bell\x01"),
    ("non-ascii", "é ✓"),
    ("emoji", "🍞 bread"),
    ("quoted-interpolation", 'echo "${HOME}"'),
]


@pytest.mark.parametrize("value", [h[1] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_values_arrive_literally_on_aws(project_dir, tmp_path, value):
    project = write_project(project_dir, description=value, vars={"page_title": value}, tags={"team": value})
    out = tmp_path / "out"
    do_render(project, "aws", out)
    parsed = read_vars(out)
    assert parsed["image_description"] == value
    assert parsed["image_tags"] == {"team": value}
    extra = json.loads(parsed["ansible_extra_vars"])
    assert extra["page_title"] == value
    assert extra["bakery_description"] == value


@pytest.mark.parametrize("value", [h[1] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_values_arrive_literally_on_gcp(project_dir, tmp_path, value):
    project = write_project(project_dir, description=value, vars={"page_title": value}, tags={"team": value})
    out = tmp_path / "out"
    do_render(project, "gcp", out)
    parsed = read_vars(out)
    assert parsed["image_description"] == value
    assert {k: decode_label(v) for k, v in parsed["image_tags"].items()} == {"team": value}
    assert json.loads(parsed["ansible_extra_vars"])["page_title"] == value


@pytest.mark.parametrize("target", ["aws", "gcp", "local"])
def test_secrets_are_never_rendered(project_dir, tmp_path, monkeypatch, target):
    """Only their names: the values reach ansible-playbook through its environment."""
    monkeypatch.setenv("WEB_API_TOKEN", "s3cr3t-value")
    data = copy.deepcopy(BASE)
    data["targets"]["local"] = {"kind": "local"}
    data["images"]["web"]["source"]["local"] = {}
    data["images"]["web"]["secrets"] = {"api_token": "WEB_API_TOKEN"}
    project_dir.write(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    do_render(project_dir.load(), target, out)
    for path in out.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-value" not in path.read_bytes(), path
            assert b"ansible_secret_vars" not in path.read_bytes(), path
    assert "api_token" not in json.loads(read_vars(out)["ansible_extra_vars"])
    extra = yaml.safe_load((out / "ansible" / "bakery-secrets.yml").read_text())
    assert list(extra) == ["api_token"]
    assert "lookup('ansible.builtin.env', 'BAKERY_SECRET_api_token'" in extra["api_token"]
    builder = (out / f"{kinds.get(target).builder}.pkr.hcl").read_text()
    assert '"--extra-vars", "@${path.root}/ansible/bakery-secrets.yml",' in builder
    assert '"ANSIBLE_PIPELINING=True"' in builder  # module arguments reach the VM on stdin, not in a file


def test_an_image_without_secrets_gets_an_empty_secrets_file(project_dir, tmp_path):
    out = tmp_path / "out"
    do_render(write_project(project_dir), "aws", out)
    assert yaml.safe_load((out / "ansible" / "bakery-secrets.yml").read_text()) == {}


# --- Packer versions ---------------------------------------------------------------------------


@pytest.mark.parametrize(("packer_version", "wanted"), [("1.6.6", False), ("1.7.0", True), ("1.10.3", True)])
def test_plugins_file_only_for_packer_1_7_and_later(project_dir, tmp_path, packer_version, wanted):
    out = tmp_path / "out"
    result = do_render(write_project(project_dir), "aws", out, packer_version=packer_version)
    plugins = out / "plugins.pkr.hcl"
    assert plugins.is_file() is wanted
    assert ("plugins.pkr.hcl" in result.files) is wanted
    if wanted:
        text = plugins.read_text()
        assert '"github.com/hashicorp/amazon"' in text
        assert '"github.com/hashicorp/ansible"' in text
        assert "googlecompute" not in text and "qemu" not in text


def test_plugins_file_names_the_gcp_plugin(project_dir, tmp_path):
    out = tmp_path / "out"
    do_render(write_project(project_dir), "gcp", out, packer_version="1.10.3")
    text = (out / "plugins.pkr.hcl").read_text()
    assert '"github.com/hashicorp/googlecompute"' in text
    assert "amazon" not in text


@pytest.mark.parametrize(("packer_version", "present"), [("1.6.6", False), ("1.7.0", True), ("1.11.0", True)])
def test_gated_section_follows_the_packer_version(project_dir, tmp_path, packer_version, present):
    out = tmp_path / "out"
    do_render(write_project(project_dir), "aws", out, packer_version=packer_version)
    text = (out / "amazon-ebs.pkr.hcl").read_text()
    assert ("metadata_options {" in text) is present
    assert ('imds_support = "v2.0"' in text) is present
    assert "bakery:packer" not in text and "bakery:end" not in text
    assert "launch_block_device_mappings {" in text  # what follows the section is always kept


def test_gate_compares_versions_numerically():
    template = "a\n# bakery:packer>=1.9 new things\nb\n# bakery:end\nc\n"
    assert render.gate_sections(template, "1.10.0") == "a\nb\nc\n"
    assert render.gate_sections(template, "1.9.0") == "a\nb\nc\n"
    assert render.gate_sections(template, "1.8.9") == "a\nc\n"
    assert render.gate_sections(template, "2.0.0") == "a\nb\nc\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.6.6", (1, 6, 6)),
        ("1.10.0", (1, 10, 0)),
        ("Packer v1.11.2", (1, 11, 2)),
        ("Packer v1.9.4\n\nYour version of Packer is out of date! The latest version\nis 1.11.2.", (1, 9, 4)),
    ],
)
def test_parse_version(text, expected):
    assert packer.parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "packer", "1.10", "v1"])
def test_parse_version_refuses_text_without_a_version(text):
    with pytest.raises(ValueError, match="no version"):
        packer.parse_version(text)


def test_wants_required_plugins_compares_numerically():
    assert packer.wants_required_plugins("1.6.6") is False
    assert packer.wants_required_plugins("1.7.0") is True
    assert packer.wants_required_plugins("1.10.0") is True


# --- refusing, and the inputs of a bake ---------------------------------------------------------


def test_render_refuses_a_directory_that_holds_a_packer_build(project_dir, tmp_path):
    project = write_project(project_dir)
    out = tmp_path / "out"
    out.mkdir()
    (out / "main.pkr.hcl").write_text("# someone else's build\n")
    with pytest.raises(ConfigError, match="already holds a Packer build") as exc:
        do_render(project, "aws", out)
    assert exc.value.exit_code == 2
    assert sorted(p.name for p in out.iterdir()) == ["main.pkr.hcl"]
    assert (out / "main.pkr.hcl").read_text() == "# someone else's build\n"


def test_render_into_an_empty_existing_directory(project_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    do_render(write_project(project_dir), "aws", out)
    assert (out / "amazon-ebs.pkr.hcl").is_file()


def test_input_files_name_templates_playbooks_and_roles(project_dir):
    project = write_project(project_dir)
    files = render.input_files(project, project.effective("web", "aws"))
    assert {
        "templates/common-variables.pkr.hcl",
        "templates/amazon-ebs.pkr.hcl",
        "templates/scripts/hygiene.sh",
        "playbooks/base.yml",
        "playbooks/web.yml",
        "playbooks/roles/nginx_page/tasks/main.yml",
    } <= set(files)
    assert "templates/googlecompute.pkr.hcl" not in files
    role = project_dir.root / "playbooks/roles/nginx_page/tasks/main.yml"
    assert files["playbooks/roles/nginx_page/tasks/main.yml"] == hashlib.sha256(role.read_bytes()).hexdigest()


def test_input_files_change_when_a_role_file_changes(project_dir):
    project = write_project(project_dir)
    eff = project.effective("web", "aws")
    before = render.input_files(project, eff)
    role = project_dir.root / "playbooks/roles/nginx_page/templates/index.html.j2"
    role.write_text(role.read_text() + "<!-- changed -->\n")
    after = render.input_files(project, eff)
    assert after != before
    changed = {k for k in before if before[k] != after.get(k)}
    assert changed == {"playbooks/roles/nginx_page/templates/index.html.j2"}


def test_input_files_change_when_a_role_file_is_added(project_dir):
    project = write_project(project_dir)
    eff = project.effective("web", "aws")
    before = render.input_files(project, eff)
    (project_dir.root / "playbooks/roles/nginx_page/files").mkdir()
    (project_dir.root / "playbooks/roles/nginx_page/files/extra.conf").write_text("x\n")
    after = render.input_files(project, eff)
    assert set(after) - set(before) == {"playbooks/roles/nginx_page/files/extra.conf"}


def test_input_files_ignore_an_unrelated_playbook_elsewhere(project_dir):
    other = project_dir.root / "other"
    (other / "roles/thing/tasks").mkdir(parents=True)
    (other / "unrelated.yml").write_text("- hosts: all\n")
    (other / "roles/thing/tasks/main.yml").write_text("- debug: msg=one\n")
    project = write_project(project_dir)
    eff = project.effective("web", "aws")
    before = render.input_files(project, eff)
    (other / "unrelated.yml").write_text("- hosts: all\n  tasks: []\n")
    (other / "roles/thing/tasks/main.yml").write_text("- debug: msg=two\n")
    assert render.input_files(project, eff) == before
    assert not any(name.startswith("other/") for name in before)


def test_input_files_ignore_hidden_files_in_roles(project_dir):
    project = write_project(project_dir)
    eff = project.effective("web", "aws")
    before = render.input_files(project, eff)
    (project_dir.root / "playbooks/roles/nginx_page/.notes.swp").write_text("editor state\n")
    assert render.input_files(project, eff) == before


def test_pkrvars_hold_each_value_as_its_escaped_literal(project_dir, tmp_path):
    # A var whose value starts with ${ puts `"${` into the JSON of ansible_extra_vars.
    project = write_project(project_dir, vars={"greeting": "${HOME}", "plain": "x"})
    out = tmp_path / "out"
    result = do_render(project, "aws", out)
    text = (out / render.VARS_FILE).read_text(encoding="utf-8")
    for name in ("image_description", "ansible_extra_vars"):
        literal = hcl.literal(result.variables.as_dict()[name])
        assert re.search(rf"^{name} +={' '}{re.escape(literal)}$", text, re.MULTILINE), name  # aligned as packer fmt


def test_bake_key_of_a_target_ignores_other_targets_sources(project_dir):
    """Changing the gcp source must not rebake the image on local or aws."""
    import yaml

    from bakery.bake import inputs
    from bakery.config import load as config

    def entries() -> dict[str, object]:
        project = config.load(project_dir.root / "images.yaml")
        return {t: inputs.resolved_entry(project, project.effective("web", t)) for t in ("local", "aws", "gcp")}

    before = entries()
    data = yaml.safe_load((project_dir.root / "images.yaml").read_text())
    data["images"]["web"]["source"]["gcp"] = {"family": "debian-13", "project": "debian-cloud"}
    (project_dir.root / "images.yaml").write_text(yaml.safe_dump(data))
    after = entries()
    assert after["local"] == before["local"] and after["aws"] == before["aws"]
    assert after["gcp"] != before["gcp"]
