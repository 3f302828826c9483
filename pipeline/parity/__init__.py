"""Parity of a converted model with PyTorch: the metrics and their bounds
(`metrics`), the inputs and comparisons (`cases`), one converted target run
against the reference (`targets`), and the first diverging MIL op
(`localise`)."""
