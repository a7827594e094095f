"""Airflow discovers the registry connection type, its form fields and field behaviour."""

from __future__ import annotations

import warnings

from containerkit.hooks import registry_connection


def test_providers_manager_registers_the_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the declarative form must not fall back to deprecated hook methods
        hook_info = ProvidersManagerTaskRuntime().hooks[registry_connection.CONN_TYPE]
        behaviour = manager.field_behaviours[registry_connection.CONN_TYPE]
        widgets = manager.connection_form_widgets
    assert hook_info is not None
    assert hook_info.hook_class_name == "containerkit.hooks.registry.RegistryHook"
    assert hook_info.connection_id_attribute_name == "registry_conn_id"
    assert hook_info.hook_name == registry_connection.HOOK_NAME

    assert behaviour["hidden_fields"] == ["schema"]
    assert behaviour["relabeling"]["password"] == "Password or token"

    prefix = f"extra__{registry_connection.CONN_TYPE}__"
    assert {f"{prefix}{name}" for name in registry_connection.CONN_FIELDS} <= set(widgets)
    assert widgets[f"{prefix}verify"].field["schema"]["default"] is True


def test_hook_field_behaviour_matches_the_declared_one() -> None:
    from containerkit.hooks.registry import RegistryHook

    declared = registry_connection.UI_FIELD_BEHAVIOUR
    assert RegistryHook.get_ui_field_behaviour() == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }
    assert RegistryHook.conn_type == registry_connection.CONN_TYPE
    assert RegistryHook.default_conn_name == "containerkit_registry_default"
