"""Private PostgreSQL, Redis and Chromium for the test suite; see services.py."""
