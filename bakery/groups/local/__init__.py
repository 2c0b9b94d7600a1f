"""Local groups: QEMU VMs on copy-on-write overlays behind a real HAProxy on 127.0.0.1."""
