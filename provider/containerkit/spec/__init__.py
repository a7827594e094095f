"""The runtime-neutral container task description. See :class:`ContainerSpec`.

Import-light on purpose (no ``kubernetes`` or ``docker`` import): DAG files build specs at parse time.
"""

from containerkit.spec.container import BASE_CONTAINER, Container, ContainerSpec
from containerkit.spec.env import EnvVar
from containerkit.spec.extension import PodExtension
from containerkit.spec.image import ImageRef, parse_image
from containerkit.spec.key_refs import ConfigMapRef, SecretRef
from containerkit.spec.logs import LogRotation
from containerkit.spec.probes import Probe, Probes
from containerkit.spec.resources import DEFAULT_PRESET, RESOURCE_PRESETS, Resources
from containerkit.spec.scheduling import (
    NodeRequirement,
    PodAntiAffinity,
    Scheduling,
    Toleration,
    TopologySpread,
)
from containerkit.spec.security import SecurityProfile
from containerkit.spec.volumes import (
    ConfigMapVolume,
    EmptyDir,
    PersistentVolumeClaimVolume,
    ProjectedVolume,
    SecretVolume,
    ServiceAccountToken,
    Volume,
    VolumeMount,
)

__all__ = [
    "BASE_CONTAINER",
    "DEFAULT_PRESET",
    "RESOURCE_PRESETS",
    "ConfigMapRef",
    "ConfigMapVolume",
    "Container",
    "ContainerSpec",
    "EmptyDir",
    "EnvVar",
    "ImageRef",
    "LogRotation",
    "NodeRequirement",
    "PersistentVolumeClaimVolume",
    "PodAntiAffinity",
    "PodExtension",
    "Probe",
    "Probes",
    "ProjectedVolume",
    "Resources",
    "Scheduling",
    "SecretRef",
    "SecretVolume",
    "SecurityProfile",
    "ServiceAccountToken",
    "Toleration",
    "TopologySpread",
    "Volume",
    "VolumeMount",
    "parse_image",
]
