"""Estimator semantics (SageMaker SDK v2 parity). Imports no airflow, boto3, ray, torch, numpy."""
