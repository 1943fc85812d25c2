"""The job queue (diskcache), the worker that runs fits in child processes, and serve (dashboard + workers)."""
