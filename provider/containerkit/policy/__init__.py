"""Policy engine: rules run on rendered objects (pods, run settings, Dockerfiles, compose, Helm values)."""
