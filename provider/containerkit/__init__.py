"""containerkit: container best practices as the default for Airflow container tasks."""

__version__ = "0.1.0"
