"""Airflow hooks: the connection to a backend (``RLHook``)."""
