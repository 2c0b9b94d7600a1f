# Local QEMU image from a bakery base disk, provisioned with Ansible over SSH.
# The VM boots the disk's own kernel directly (-kernel/-initrd); the bake's public key travels
# on the kernel command line and is removed by the hygiene step.

variable "base_disk" {
  type        = string
  description = "qcow2 disk the build starts from (a bakery base disk or a parent image)."
}
variable "kernel" { type = string }
variable "initrd" { type = string }
variable "kernel_cmdline" { type = string }
variable "ssh_private_key_file" { type = string }
variable "accelerator" {
  type        = string
  default     = "tcg"
  description = "kvm or tcg; bakery picks kvm only where a probe booted a kernel with it."
}
variable "memory" {
  type    = number
  default = 1024
}
variable "cpus" {
  type    = number
  default = 1
}
variable "disk_size" {
  type        = number
  default     = 3072
  description = "MiB."
}
variable "ssh_timeout" {
  type    = string
  default = "20m"
}
variable "output_directory" {
  type    = string
  default = "output"
}

source "qemu" "image" {
  iso_url          = var.base_disk
  iso_checksum     = "none"
  disk_image       = true
  use_backing_file = false
  format           = "qcow2"
  disk_size        = "${var.disk_size}M"
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  accelerator      = var.accelerator
  memory           = var.memory
  cpus             = var.cpus
  headless         = true
  vnc_bind_address = "127.0.0.1"
  host_port_min    = 2222
  host_port_max    = 4444
  boot_wait        = "1s"
  qemuargs = [
    ["-kernel", var.kernel],
    ["-initrd", var.initrd],
    ["-append", var.kernel_cmdline],
    ["-serial", "file:${var.output_directory}-serial.log"],
  ]

  communicator         = "ssh"
  ssh_host             = "127.0.0.1"
  ssh_username         = "root"
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = var.ssh_timeout
  # --check-inhibitors=no: minbase has no D-Bus for logind to answer on.
  shutdown_command = "systemctl poweroff --check-inhibitors=no"

  output_directory = var.output_directory
  vm_name          = "disk.qcow2"
}

build {
  sources = ["source.qemu.image"]

  provisioner "ansible" {
    playbook_file = "${path.root}/ansible/site.yml"
    user          = "root"
    use_proxy     = false
    galaxy_file   = var.galaxy_file == "" ? "" : "${path.root}/ansible/${var.galaxy_file}"
    extra_arguments = [
      "--extra-vars", "ansible_python_interpreter=/usr/bin/python3",
      "--extra-vars", var.ansible_extra_vars,
      # Secrets: names only; values come from ansible-playbook's environment (BAKERY_SECRET_*).
      "--extra-vars", "@${path.root}/ansible/bakery-secrets.yml",
    ]
    # Pipelining: a module and its arguments (a secret a task uses) reach the VM on stdin, not in a file.
    ansible_env_vars = ["ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_NOCOLOR=1", "ANSIBLE_PIPELINING=True"]
  }

  provisioner "shell" {
    script = "${path.root}/scripts/stage-boot.sh"
  }

  provisioner "file" {
    direction   = "download"
    source      = "/run/bakery-boot/vmlinuz"
    destination = "${var.output_directory}-vmlinuz"
  }

  provisioner "file" {
    direction   = "download"
    source      = "/run/bakery-boot/initrd.img"
    destination = "${var.output_directory}-initrd.img"
  }

  provisioner "shell" {
    script = "${path.root}/scripts/hygiene.sh"
  }
}
