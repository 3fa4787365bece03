"""Airflow sensors: wait for a training job (``training_job``) or an endpoint (``endpoint``)."""
