"""The model gates' checks for `kind = "module"` models (any nn.Module with declared inputs).

Each built-in model gate keeps its name, settings and place in the order;
when the configured model is a module, its `check_model` hands over to the
module of the same name here: `checkpoint` (loads safely, runs, is
deterministic, keeps batch rows apart), `export` (every shape case),
`conversion` (Core ML and ONNX against the module contract), `contract`,
`parity` (per shape and output). `semantics` and `tokenizer` do not apply
to this kind: they are listed as not applicable, outside the score.
"""
