"""The scripts here run under mpiexec only: pytest must not import them (that starts MPI)."""

collect_ignore = ["spmd_run.py", "pool_run.py"]
