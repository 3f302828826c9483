"""The model gates: environment, checkpoint, tokenizer, semantics, export,
conversion, contract and parity.

They import `pipeline` lazily (inside functions), so listing or re-rendering
needs no torch.
"""
