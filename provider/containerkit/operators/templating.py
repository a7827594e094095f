"""Values that Jinja renders at run time, and the image that stands in for one until then.

Both operators check policy at DAG parse, before templating: a templated image (an XCom of a build or
pin task) is not an image reference yet, so :data:`TEMPLATED_IMAGE` stands in for it in the spec and
the rules about the image (``Rule.about`` :data:`containerkit.policy.model.IMAGE`) run after rendering,
before anything is pulled. One detector, one placeholder, for the Docker and the Kubernetes operator.
"""

from __future__ import annotations

TEMPLATE_MARKERS = ("{{", "{%")
"""What starts a Jinja expression or statement (Airflow renders ``template_fields`` with Jinja)."""

TEMPLATED_IMAGE = "containerkit.invalid/templated-image:rendered-at-run-time"
"""The parse-time stand-in for a templated image (``.invalid``: it can never be pulled by mistake)."""


def is_templated(value: object) -> bool:
    """True for a string Jinja will change at run time (an expression or a statement)."""
    return isinstance(value, str) and any(marker in value for marker in TEMPLATE_MARKERS)
