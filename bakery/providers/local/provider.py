"""Local target: QEMU images made from bakery base disks, kept in the local catalog."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bakery import runner
from bakery.config.models import Prune
from bakery.config.secrets import SCAN_MIN_BYTES, leaked, needles, search
from bakery.config.targets.local import LocalSource, LocalTarget
from bakery.core.catalog import ImageRecord
from bakery.core.debris import Leftover, Owner
from bakery.core.provenance import Dependency, stamp_of
from bakery.errors import BuildError, ProviderError, UsageError
from bakery.progress import Reporter
from bakery.providers.base import BakeRequest, BuildMarks, Claim, ClientFactory, PackageDb, Prepared, Usage
from bakery.providers.local.basedisk import ensure_base, file_sha256, overlay_dir, recipe_digest
from bakery.providers.local.packages import read_package_db
from bakery.providers.local.qemu import BOOT_FILES, KERNEL_CMDLINE, KVM_PROBE_SECONDS, QEMU, image_files, kvm_probe_argv
from bakery.providers.local.store import LocalStore
from bakery.providers.local.variables import LocalPrepared
from bakery.providers.local.variables import packer_variables as packer_variables  # the kind's Packer variables
from bakery.providers.local.variables import preview as preview  # an offline render's stand-ins
from bakery.steps import Journal, Step
from bakery.workspace import Workspace, remove_tree


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> LocalProvider:
    return LocalProvider(workspace, reporter)


class LocalProvider:
    kind = "local"

    def __init__(self, workspace: Workspace, reporter: Reporter) -> None:
        self.ws = workspace
        self.reporter = reporter
        self.store = LocalStore(workspace.catalog_db, workspace.images)

    def bind(self, target: str, spec: Any) -> None:
        pass  # local targets keep no per-target state

    # --- before the build ---------------------------------------------------------------------

    def resolve(self, request: BakeRequest) -> Prepared:
        """The base this bake would start from: the parent's image, or the cached base disk."""
        if request.parent is not None:
            return Prepared(base=request.parent.ref, base_dependency=None, parent=request.parent)
        source = request.project.config.images[request.eff.name].source
        recipe = (source.of("local", LocalSource) if source else None) or LocalSource()
        digest = recipe_digest(recipe, overlay_dir(request.project.root))
        cached = self.ws.base_cache / digest.removeprefix("sha256:")[:32] / "disk.sha256"
        base = "sha256:" + cached.read_text().strip() if cached.is_file() else f"unbuilt:{digest}"
        return Prepared(base=base, base_dependency=None, parent=None)

    # A local bake creates nothing outside its work directory (removed on any failure) until the
    # store records the version in one transaction: there is never anything of it left behind.
    def marked(
        self, target: str, name: str, *, version: str | None = None, invocation: str | None = None
    ) -> list[Leftover]:
        return []

    def heartbeat(self, target: str, name: str, owner: Owner) -> None:
        pass

    def remove(self, leftover: Leftover) -> list[str]:
        return []

    def prepare(self, request: BakeRequest) -> Prepared:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        spec = request.project.config.targets[request.eff.target]
        if not isinstance(spec, LocalTarget):
            raise UsageError(f"target '{request.eff.target}' is {spec.kind}, not local")
        log_path = request.log_path or request.workdir / "bake.log"
        if request.parent is not None:
            start = Path(request.parent.locations[0])
            disk, kernel, initrd = start / "disk.qcow2", start / "vmlinuz", start / "initrd.img"
            base = f"{request.parent.ref}"
            dependency = None  # the parent is listed as a dependency of its own
        else:
            source = request.project.config.images[request.eff.name].source
            recipe = (source.of("local", LocalSource) if source else None) or LocalSource()
            made, reused = ensure_base(
                recipe,
                cache=self.ws.base_cache,
                project_root=request.project.root,
                reporter=self.reporter,
                log_path=log_path,
            )
            self.reporter.note(("reused cached" if reused else "made") + f" base disk {made.directory.name}")
            disk, kernel, initrd = made.disk, made.kernel, made.initrd
            base = "sha256:" + made.sha256
            dependency = Dependency(
                name=f"base-disk:debian-{recipe.suite}",
                uri=made.recipe.mirror,
                digest={"sha256": made.sha256},
                annotations={"recipeDigest": made.recipe_digest},
            )
        # A key for this bake alone; its public half reaches the VM on the kernel command line.
        key = Ed25519PrivateKey.generate()
        private = request.workdir / "build-key"
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        # Created 0600: the key is never readable by anyone else, not even for a moment.
        with os.fdopen(os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(pem)
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        token = base64.b64encode(public + b" bakery-build\n").decode()
        return LocalPrepared(
            base_disk=str(disk),
            kernel=str(kernel),
            initrd=str(initrd),
            kernel_cmdline=f"{KERNEL_CMDLINE} bakery.ssh_key={token}",
            ssh_private_key_file=str(private),
            accelerator=self.accelerator(spec.accelerator, kernel, initrd),
            output_directory=str(request.workdir / "output"),
            base=base,
            base_dependency=dependency,
            parent=request.parent,
        )

    def accelerator(self, requested: str, kernel: Path, initrd: Path) -> str:
        """kvm only where a probe booted a kernel with it; the verdict is cached per host."""
        if requested != "auto":
            return requested
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return "tcg"
        cache = self.ws.probes / "accelerator.json"
        host = f"{os.uname().release}|{shutil.which(QEMU)}"
        if cache.is_file():
            seen = json.loads(cache.read_text())
            if seen.get("host") == host:
                return str(seen["accelerator"])
        self.reporter.phase("probe", "checking whether KVM can boot a guest here")
        result = runner.run(kvm_probe_argv(kernel, initrd), what="kvm probe", timeout=KVM_PROBE_SECONDS, check=False)
        booted = "Linux version" in result.output and (
            "Kernel panic" in result.output or "Attempted to kill init" in result.output
        )
        verdict = "kvm" if booted else "tcg"
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"host": host, "accelerator": verdict}))
        self.reporter.note(f"accelerator: {verdict}" + ("" if booted else " (KVM did not boot a guest here)"))
        return verdict

    # --- after the build ----------------------------------------------------------------------

    def before_build(self, request: BakeRequest, skeleton: dict[str, Any]) -> BuildMarks:
        return BuildMarks()

    def scan(self, request: BakeRequest, secrets: Mapping[str, str]) -> None:
        """Search every file of the built image for each secret's value, byte for byte; raise
        BuildError naming the first secret found (never its value).

        The qcow2 is read as it is: the template leaves it uncompressed, so what the guest wrote,
        deleted files' blocks included, is in it as written (a value split across two clusters
        that are not adjacent in the file is the one it would miss).
        """
        wanted, short = needles(secrets)
        for name in short:
            self.reporter.note(f"secret '{name}' is under {SCAN_MIN_BYTES} bytes: too short to search the image for")
        if not wanted:
            return
        built = (
            ("disk", request.workdir / "output" / "disk.qcow2"),
            ("kernel", request.workdir / "output-vmlinuz"),
            ("initrd", request.workdir / "output-initrd.img"),
        )
        for what, path in built:
            found = search(path, wanted) if path.is_file() else None
            if found is not None:
                raise leaked(request.eff, found, what, log_path=str(request.log_path or ""))
        self.reporter.note(f"searched the image for {len(wanted)} secret(s): none found")

    def package_db(self, request: BakeRequest) -> PackageDb:
        """Read from the finished disk, never booted or mounted (debugfs on a raw copy)."""
        disk = request.workdir / "output" / "disk.qcow2"
        return read_package_db(disk, request.workdir / "sbom", log_path=request.log_path)

    def subject(self, request: BakeRequest, artifacts: list[str]) -> tuple[str, dict[str, str]]:
        disk = request.workdir / "output" / "disk.qcow2"
        if not disk.is_file():
            raise BuildError(
                "Packer finished without producing output/disk.qcow2", log_path=str(request.log_path or "")
            )
        return f"{request.eff.name}-{request.version}.qcow2", {"sha256": file_sha256(disk)}

    def publish(
        self,
        request: BakeRequest,
        prepared: Prepared,
        provenance: dict[str, Any],
        inputs_digest: str,
        artifacts: list[str],
        attestation: str | None = None,
    ) -> ImageRecord:
        out = request.workdir / "output"
        staged = request.workdir / "image"
        staged.mkdir()
        for produced, name in (
            (out / "disk.qcow2", "disk.qcow2"),
            (request.workdir / "output-vmlinuz", "vmlinuz"),
            (request.workdir / "output-initrd.img", "initrd.img"),
        ):
            if not produced.is_file():
                raise BuildError(f"the build did not produce {produced.name}", log_path=str(request.log_path or ""))
            os.replace(produced, staged / name)
        (staged / "provenance.json").write_text(
            json.dumps(provenance, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        subject = provenance["subject"][0]["digest"]["sha256"]
        record = ImageRecord(
            name=request.eff.name,
            version=request.version,
            target=request.eff.target,
            kind="local",
            inputs_digest=inputs_digest,
            created=provenance["predicate"]["runDetails"]["metadata"]["finishedOn"],
            base=prepared.base,
            parent=prepared.parent.ref if prepared.parent else None,
            subject_sha256=subject,
        )
        self.store.record(record, staged, attestation=attestation, stamp=stamp_of(provenance, state="complete"))
        recorded = self.store.entry(record)
        assert recorded is not None, "an entry just recorded"
        return recorded

    # --- reading ------------------------------------------------------------------------------

    def images(self, target: str, name: str | None = None) -> list[ImageRecord]:
        return self.store.list(target=target, name=name)

    def provenance(self, record: ImageRecord) -> dict[str, Any]:
        return dict(self.store.provenance(record))

    def boot_files(self, record: ImageRecord) -> tuple[Path, Path, Path]:
        return image_files(Path(record.locations[0]))

    # --- trust --------------------------------------------------------------------------------

    def more_subjects(self, request: BakeRequest) -> list[tuple[str, dict[str, str]]]:
        """The kernel and initrd a local VM boots with (-kernel/-initrd): signed with the disk."""
        produced = {"vmlinuz": "output-vmlinuz", "initrd.img": "output-initrd.img"}
        return [
            (name, {"sha256": file_sha256(request.workdir / found)})
            for name, found in produced.items()
            if (request.workdir / found).is_file()  # publish refuses a bake without them
        ]

    def descriptor(self, record: ImageRecord) -> dict[str, Any]:
        """The disk hashed again (its sha256 is the provenance subject's), and the kernel and
        initrd beside it."""
        directory = Path(record.locations[0])
        missing = [name for name in BOOT_FILES if not (directory / name).is_file()]
        if missing:
            raise ProviderError(f"{record.ref}: {', '.join(missing)} gone from {directory}")
        return {
            "kind": "local",
            "sha256": file_sha256(directory / "disk.qcow2"),
            "files": {name: file_sha256(directory / name) for name in ("vmlinuz", "initrd.img")},
        }

    def claims(self, record: ImageRecord) -> list[Claim]:
        return [self.store.claim(record)]

    def mark_revoked(self, record: ImageRecord, *, at: str, reason: str, replacement: ImageRecord | None) -> str:
        self.store.revoke(record, {"at": at, "reason": reason, "replacement": replacement.ref if replacement else None})
        return f"local: catalog entry {record.ref} on {record.target} marked revoked from {at}"

    # --- prune --------------------------------------------------------------------------------

    def usage(self, records: Sequence[ImageRecord]) -> list[Usage]:
        return [Usage() for _ in records]  # only local groups run local images: the prune service reads those

    def prune_steps(
        self, record: ImageRecord, *, replacement: ImageRecord | None, now: str, policy: Prune
    ) -> Sequence[Step]:
        """Remove the catalog entry first (the image is then gone for every reader), then its
        directory, whose path the journal holds for a rerun."""

        def remove(journal: Journal) -> None:
            journal.put("destroying", True)
            if journal.get("directory") is None:
                journal.put("directory", str(self.store.directory(record.target, record.name, record.version)))
            self.store.forget(record)
            directory = Path(journal.get("directory"))
            if not directory.resolve().is_relative_to(self.store.images.resolve()):
                raise ProviderError(f"{record.ref}: {directory} is not inside the catalog's {self.store.images}")
            remove_tree(directory)
            journal.put("removed", [f"catalog entry {record.ref} on {record.target} and {directory}"])

        return [Step("remove", remove, f"removing {record.ref} from the local catalog")]

    def prune_next(self, record: ImageRecord, *, replacement: ImageRecord | None, now: str) -> str | None:
        return None

    def prune_restore(self, record: ImageRecord, *, act: bool) -> str | None:
        return None

    def prune_abandon(self, record: ImageRecord) -> list[str]:
        return []

    def unmark_revoked(self, record: ImageRecord) -> str:
        self.store.revoke(record, None)
        return f"local: catalog entry {record.ref} on {record.target} no longer marked revoked"
