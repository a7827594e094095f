"""Hooks over container registries (OCI distribution API) and the Docker Engine.

Import-light on purpose: the submodules pull in ``requests`` and ``docker`` only when used.
``registry`` (RegistryHook), ``image`` (ImageHook), ``mirror`` (air-gapped copies),
``preflight`` (``pin_image`` for the operators).
"""
