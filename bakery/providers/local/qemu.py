"""QEMU command lines for local images, built apart from running them (pure, tested by equality):
the KVM probe, a VM's boot from kernel and initrd, a copy-on-write overlay; and the files a
catalog image boots from."""

from __future__ import annotations

from pathlib import Path

from bakery.errors import UsageError

QEMU = "qemu-system-x86_64"
KVM_PROBE_SECONDS = 20
KERNEL_CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"


def kvm_probe_argv(kernel: Path, initrd: Path) -> list[str]:
    """Boot the kernel under KVM into an init that exits at once: a panic proves KVM runs guests."""
    return [
        QEMU,
        "-accel",
        "kvm",
        "-m",
        "256",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-nodefaults",
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-append",
        "console=ttyS0 panic=-1 rdinit=/bin/false",
    ]


def boot_argv(
    *,
    disk: Path,
    kernel: Path,
    initrd: Path,
    accelerator: str,
    memory: int,
    cpus: int,
    forwards: dict[int, int],
    serial_log: Path,
) -> list[str]:
    """QEMU command line that boots a local image, with host ports (127.0.0.1 only) forwarded in."""
    fwd = "".join(f",hostfwd=tcp:127.0.0.1:{host}-:{guest}" for host, guest in sorted(forwards.items()))
    return [
        QEMU,
        "-accel",
        accelerator,
        "-m",
        str(memory),
        "-smp",
        str(cpus),
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{serial_log}",
        "-no-reboot",
        "-drive",
        f"file={disk},if=virtio,format=qcow2",
        "-netdev",
        f"user,id=net0{fwd}",
        "-device",
        "virtio-net,netdev=net0",
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-append",
        KERNEL_CMDLINE,
    ]


BOOT_FILES = ("disk.qcow2", "vmlinuz", "initrd.img")


def image_files(image_dir: Path) -> tuple[Path, Path, Path]:
    """disk, kernel, initrd of a catalog image. UsageError when the directory lost them."""
    files = tuple(image_dir / name for name in BOOT_FILES)
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise UsageError(
            f"the image directory {image_dir} lacks {', '.join(missing)}",
            hint="bake the image again (`bakery build`), or roll the group to another version",
        )
    disk, kernel, initrd = files
    return disk, kernel, initrd


def overlay_argv(disk: Path, overlay: Path) -> list[str]:
    """A copy-on-write overlay on a read-only catalog disk: the VM writes there, never to the image."""
    return ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(disk), str(overlay)]
