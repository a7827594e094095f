"""containerkit TaskFlow decorators (``@task.secure_docker``, ``@task.secure_kubernetes``).

Registered through the provider's ``task-decorators``; nothing is imported here so that Airflow's
decorator discovery loads only the module of the decorator a DAG uses.
"""
