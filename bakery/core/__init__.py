"""Values every room shares: image records and versions, the provenance statement and its encodings,
canonical JSON, the bake key's digest, who is acting, retries, and what a stopped bake leaves behind."""
