"""images.yaml -> typed, frozen models; every error carries file:line:col and the key path."""
