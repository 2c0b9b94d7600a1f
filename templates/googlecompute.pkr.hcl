# Google Compute Engine image, provisioned with Ansible.

variable "project_id" { type = string }
variable "zone" { type = string }
variable "machine_type" { type = string }
variable "source_image" {
  type    = string
  default = ""
}
variable "source_image_family" {
  type    = string
  default = ""
}
variable "source_image_project_id" {
  type    = list(string)
  default = []
}
variable "gcp_image_name" {
  type        = string
  description = "GCP image name: lowercase, digits and '-', at most 63 characters."
}
variable "image_family" { type = string }
variable "network" {
  type    = string
  default = ""
}
variable "subnetwork" {
  type    = string
  default = ""
}
variable "service_account_email" {
  type    = string
  default = ""
}
variable "disk_size" {
  type    = number
  default = 10
}
variable "ssh_username" {
  type    = string
  default = "packer"
}
variable "use_internal_ip" {
  type    = bool
  default = false
}
variable "network_tags" {
  type    = list(string)
  default = []
}
variable "gcp_build_labels" {
  type        = map(string)
  default     = {}
  description = "bakery's labels while a bake is under way (state = pending); final labels come after."
}

source "googlecompute" "image" {
  project_id              = var.project_id
  zone                    = var.zone
  machine_type            = var.machine_type
  source_image            = var.source_image
  source_image_family     = var.source_image_family
  source_image_project_id = var.source_image_project_id
  network                 = var.network
  subnetwork              = var.subnetwork
  service_account_email   = var.service_account_email
  disk_size               = var.disk_size
  ssh_username            = var.ssh_username
  use_internal_ip         = var.use_internal_ip
  tags                    = var.network_tags

  image_name        = var.gcp_image_name
  image_family      = var.image_family
  image_description = var.image_description
  image_labels      = merge(var.image_tags, var.gcp_build_labels)
  labels            = { bakery-build = var.image_name }
}

build {
  sources = ["source.googlecompute.image"]

  provisioner "ansible" {
    playbook_file = "${path.root}/ansible/site.yml"
    user          = var.ssh_username
    use_proxy     = false
    galaxy_file   = var.galaxy_file == "" ? "" : "${path.root}/ansible/${var.galaxy_file}"
    extra_arguments = [
      "--extra-vars", var.ansible_extra_vars,
      # Secrets: names only; values come from ansible-playbook's environment (BAKERY_SECRET_*).
      "--extra-vars", "@${path.root}/ansible/bakery-secrets.yml",
    ]
    # Pipelining: a module and its arguments (a secret a task uses) reach the VM on stdin, not in a file.
    ansible_env_vars = ["ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_NOCOLOR=1", "ANSIBLE_PIPELINING=True"]
  }

  # The package database, for the image's SBOM (bakery sbom): read after Ansible, before the image is made.
  provisioner "file" {
    direction   = "download"
    source      = "/var/lib/dpkg/status"
    destination = "${path.root}/sbom-dpkg-status"
  }

  provisioner "file" {
    direction   = "download"
    source      = "/etc/os-release"
    destination = "${path.root}/sbom-os-release"
  }

  provisioner "shell" {
    execute_command = "sudo -S sh -eu '{{ .Path }}'"
    script          = "${path.root}/scripts/hygiene.sh"
  }

  post-processor "manifest" {
    output = "${path.root}/packer-manifest.json"
  }
}
