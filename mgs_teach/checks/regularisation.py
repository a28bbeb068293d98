"""Self-checks for the chapter \"Watching regularisation through MGS\"."""

__all__: list[str] = []
