"""Airflow's ProvidersManager discovers containerkit's metadata, decorators and triggers."""

from __future__ import annotations

import importlib

from containerkit.provider_info import get_provider_info


def test_every_listed_module_and_class_imports() -> None:
    info = get_provider_info()
    modules = [
        m for key in ("operators", "hooks", "triggers") for e in info[key] for m in e["python-modules"]
    ]
    assert modules
    for module in modules:
        importlib.import_module(module)
    for decorator in info["task-decorators"]:
        module, _, attr = decorator["class-name"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr))


def test_providers_manager_registers_containerkit() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    provider = manager.providers["airflow-provider-containerkit"]
    assert provider.data["name"] == "containerkit"
    decorators = manager.taskflow_decorators
    assert {"secure_docker", "secure_kubernetes"} <= set(decorators)
    ours = {
        t.trigger_class_name for t in manager.trigger if t.package_name == "airflow-provider-containerkit"
    }
    assert ours == {"containerkit.triggers.kubernetes"}


def test_task_namespace_exposes_the_decorators() -> None:
    from airflow.sdk import task

    assert callable(task.secure_docker)
    assert callable(task.secure_kubernetes)
