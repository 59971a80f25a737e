"""The dashboard: its facts (shared/services/dashboard.py) drawn as one HTML page with server-side SVG charts."""
