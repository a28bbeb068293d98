"""Self-checks for the chapter \"One step of gradient descent, seen through the model\"."""

__all__: list[str] = []
