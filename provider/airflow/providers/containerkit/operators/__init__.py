"""containerkit's operators under the provider namespace (see ``airflow.providers.containerkit``)."""
