"""containerkit's task decorators under the provider namespace (see ``airflow.providers.containerkit``).

``@task.secure_docker`` / ``@task.secure_kubernetes`` resolve through Airflow's providers manager inside
the parse child; a DAG file that imports ``secure_docker_task`` / ``secure_kubernetes_task`` from here
instead names an ``airflow.*`` module, so the dag-processor manager pre-imports it once.
"""
