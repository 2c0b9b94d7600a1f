"""QEMU command lines of the local provider (no qemu runs)."""

from __future__ import annotations

from pathlib import Path

from bakery.providers.local.qemu import KERNEL_CMDLINE, boot_argv, kvm_probe_argv


def test_boot_argv():
    argv = boot_argv(
        disk=Path("/i/disk.qcow2"),
        kernel=Path("/i/vmlinuz"),
        initrd=Path("/i/initrd.img"),
        accelerator="kvm",
        memory=2048,
        cpus=2,
        forwards={8080: 80, 2222: 22},
        serial_log=Path("/i/serial.log"),
    )
    assert argv == [
        "qemu-system-x86_64",
        "-accel",
        "kvm",
        "-m",
        "2048",
        "-smp",
        "2",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "file:/i/serial.log",
        "-no-reboot",
        "-drive",
        "file=/i/disk.qcow2,if=virtio,format=qcow2",
        "-netdev",
        "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:8080-:80",
        "-device",
        "virtio-net,netdev=net0",
        "-kernel",
        "/i/vmlinuz",
        "-initrd",
        "/i/initrd.img",
        "-append",
        "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet",
    ]
    assert KERNEL_CMDLINE == "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"


def test_boot_argv_forwards_only_to_loopback():
    argv = boot_argv(
        disk=Path("d"),
        kernel=Path("k"),
        initrd=Path("i"),
        accelerator="tcg",
        memory=512,
        cpus=1,
        forwards={40001: 80, 40002: 443, 40003: 22},
        serial_log=Path("s"),
    )
    netdev = argv[argv.index("-netdev") + 1]
    forwards = netdev.split(",")[2:]
    assert forwards == [
        "hostfwd=tcp:127.0.0.1:40001-:80",
        "hostfwd=tcp:127.0.0.1:40002-:443",
        "hostfwd=tcp:127.0.0.1:40003-:22",
    ]
    assert "0.0.0.0" not in " ".join(argv)


def test_boot_argv_without_forwards():
    argv = boot_argv(
        disk=Path("d"),
        kernel=Path("k"),
        initrd=Path("i"),
        accelerator="tcg",
        memory=512,
        cpus=1,
        forwards={},
        serial_log=Path("s"),
    )
    assert argv[argv.index("-netdev") + 1] == "user,id=net0"


def test_kvm_probe_argv():
    assert kvm_probe_argv(Path("/b/vmlinuz"), Path("/b/initrd.img")) == [
        "qemu-system-x86_64",
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
        "/b/vmlinuz",
        "-initrd",
        "/b/initrd.img",
        "-append",
        "console=ttyS0 panic=-1 rdinit=/bin/false",
    ]
