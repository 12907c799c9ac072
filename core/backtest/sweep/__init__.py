"""Walk-forward parameter sweeps: many ordinary backtests on a Dask cluster (see runner.py)."""
