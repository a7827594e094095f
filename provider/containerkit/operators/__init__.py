"""containerkit operators. Import the module you need (``containerkit.operators.docker``,
``containerkit.operators.kubernetes``): nothing heavy is imported here, so one operator's provider
dependency never loads for the other. DAG files should import them through
``airflow.providers.containerkit.operators.*`` so the dag-processor pre-imports them
(:mod:`containerkit.operators.parse_cost`).
"""

from containerkit.operators.parse_cost import warn_if_not_preimported

warn_if_not_preimported()
