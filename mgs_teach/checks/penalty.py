"""Self-checks for the chapter \"The MGS penalty\"."""

__all__: list[str] = []
