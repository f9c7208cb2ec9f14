"""Layer 7: the ``bcpi`` command (one Typer app per command group) and the demo."""
