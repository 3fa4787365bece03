"""Airflow operators: train (``train``), create a model (``model``), deploy it (``deploy``)."""
