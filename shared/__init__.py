"""sttdata's one Python package: domain logic, use cases and the adapters to Google Cloud."""
