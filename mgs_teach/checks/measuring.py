"""Self-checks for the chapter \"Measuring gradient similarity\"."""

__all__: list[str] = []
