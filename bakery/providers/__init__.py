"""Image providers: one folder per target kind (aws, gcp, local) behind providers.base.Provider."""
