"""The gates engine and one module per gate."""
