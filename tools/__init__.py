"""Build and development tools: the throwaway server, the demo, system dependencies, the PostgreSQL matrix,
the schema dump (make schema) and the release record (make release). Not shipped in the wheel."""
