"""Backends: the only code that talks to a runtime (the local machine, SageMaker)."""
