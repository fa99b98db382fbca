"""The background service: Celery app, thin tasks, Redis lock and rate limit, embedded runner."""
