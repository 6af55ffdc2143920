"""`retention`: the command line for operators, support staff and the demo; it launches the Dagster jobs."""
