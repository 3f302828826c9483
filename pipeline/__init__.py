"""The model side: what is gated. Imports nothing of the project."""
