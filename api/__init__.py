"""The HTTP API: history and live values of every bcpi index."""
