"""What is inside every image: its packages as a signed CycloneDX SBOM, and the difference between two images."""
