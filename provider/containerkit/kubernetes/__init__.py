"""Kubernetes renderers: :mod:`~containerkit.kubernetes.pod` (spec -> ``V1Pod``), sidecar and init-container
factories, RBAC, and the manifest dumper. Everything is built from ``kubernetes.client`` models."""
