"""A target kind that lives entirely under tests/: bakery learns it through its public registry
(bakery.config.kinds.register), as a plugin outside bakery would teach it a new cloud.

models.py   its images.yaml blocks: `kind: toy` targets, `source.toy`, `groups.<name>.toy`
provider.py a provider over an in-memory cloud whose images the stand-in packer drops in a
            directory (tests/fakes), and the kind's Packer variables
driver.py   a group driver that runs instances in memory
toy.pkr.hcl the kind's Packer template (the stand-in packer does not read it; `validate` wants it)
kind.py     the one registration: TOY, and `registered()` for tests
"""
