"""Where a pod may run: node selector, node affinity, pod anti-affinity, tolerations, topology spread,
priority and runtime class. Plain data, rendered to the Kubernetes models by the renderer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from containerkit.errors import SpecError
from containerkit.spec.names import check_dns_subdomain, check_label_key, check_labels

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


@dataclass(frozen=True)
class NodeRequirement:
    """A node-affinity match expression: ``key operator values``; ``weight`` > 0 makes it preferred."""

    key: str
    operator: str = "In"
    values: tuple[str, ...] = ()
    weight: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        check_label_key("scheduling.node_affinity.key", self.key)
        if self.operator not in _OPERATORS:
            raise SpecError(
                "scheduling.node_affinity.operator", self.operator, "unknown operator", "use In/NotIn/..."
            )
        needs_values = self.operator in ("In", "NotIn", "Gt", "Lt")
        if needs_values != bool(self.values):
            raise SpecError(
                "scheduling.node_affinity.values",
                self.values,
                f"{self.operator} {'needs' if needs_values else 'takes no'} values",
                "fix the values for the operator",
            )
        if not 0 <= self.weight <= 100:
            raise SpecError(
                "scheduling.node_affinity.weight", self.weight, "weight must be 0..100", "use 1..100"
            )


@dataclass(frozen=True)
class PodAntiAffinity:
    """Keep pods with ``match_labels`` apart per ``topology_key``; ``required=False`` is a preference."""

    match_labels: Mapping[str, str]
    topology_key: str = "kubernetes.io/hostname"
    required: bool = False
    weight: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "match_labels", check_labels("scheduling.anti_affinity", self.match_labels))
        check_label_key("scheduling.anti_affinity.topology_key", self.topology_key)
        if not self.match_labels:
            raise SpecError(
                "scheduling.anti_affinity.match_labels", {}, "needs labels", "e.g. {'app': 'etl'}"
            )


@dataclass(frozen=True)
class Toleration:
    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.key is not None:
            check_label_key("scheduling.tolerations.key", self.key)
        if self.operator not in ("Equal", "Exists"):
            raise SpecError(
                "scheduling.tolerations.operator", self.operator, "unknown operator", "use Equal/Exists"
            )
        if self.operator == "Exists" and self.value:
            raise SpecError("scheduling.tolerations.value", self.value, "Exists takes no value", "drop value")
        if self.key is None and self.operator != "Exists":
            raise SpecError(
                "scheduling.tolerations.key", None, "an empty key needs operator Exists", "set a key"
            )
        if self.effect not in (None, "NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise SpecError("scheduling.tolerations.effect", self.effect, "unknown effect", "use NoSchedule")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise SpecError(
                "scheduling.tolerations.toleration_seconds",
                self.toleration_seconds,
                "only NoExecute tolerations take seconds",
                "set effect='NoExecute' or drop it",
            )


@dataclass(frozen=True)
class TopologySpread:
    match_labels: Mapping[str, str]
    topology_key: str = "topology.kubernetes.io/zone"
    max_skew: int = 1
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = "ScheduleAnyway"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "match_labels", check_labels("scheduling.topology_spread", self.match_labels)
        )
        check_label_key("scheduling.topology_spread.topology_key", self.topology_key)
        if isinstance(self.max_skew, bool) or not isinstance(self.max_skew, int) or self.max_skew < 1:
            raise SpecError("scheduling.topology_spread.max_skew", self.max_skew, "must be >= 1", "use 1")
        if self.when_unsatisfiable not in ("DoNotSchedule", "ScheduleAnyway"):
            raise SpecError(
                "scheduling.topology_spread.when_unsatisfiable",
                self.when_unsatisfiable,
                "unknown value",
                "use DoNotSchedule or ScheduleAnyway",
            )


@dataclass(frozen=True)
class Scheduling:
    node_selector: Mapping[str, str] = field(default_factory=dict)
    node_affinity: tuple[NodeRequirement, ...] = ()
    anti_affinity: tuple[PodAntiAffinity, ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    topology_spread: tuple[TopologySpread, ...] = ()
    priority_class: str | None = None
    runtime_class: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "node_selector", check_labels("scheduling.node_selector", self.node_selector)
        )
        for name in ("node_affinity", "anti_affinity", "tolerations", "topology_spread"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.priority_class is not None:
            check_dns_subdomain("scheduling.priority_class", self.priority_class, what="PriorityClass name")
        if self.runtime_class is not None:
            check_dns_subdomain("scheduling.runtime_class", self.runtime_class, what="RuntimeClass name")

    @property
    def empty(self) -> bool:
        return self == Scheduling()
