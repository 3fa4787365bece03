"""RL pages inside the Airflow UI: training jobs, models and endpoints (an Airflow 3 plugin).

``plugin.RLProviderPlugin`` is registered through the ``airflow.plugins`` entry point, so
installing the package is enough. It mounts one FastAPI app under ``/rl`` in Airflow's API server
(``app.create_app``) and adds navigation entries (``external_views``) that show the pages inside
the Airflow UI. Every page and API route authenticates the Airflow user through the auth manager
(``access``); the pages read the backends through the ``rl`` connections (``connections``).
"""
