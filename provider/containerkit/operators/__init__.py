"""containerkit operators. Import the module you need (``containerkit.operators.docker``,
``containerkit.operators.kubernetes``): nothing is imported here, so one operator's provider
dependency never loads for the other.
"""
