"""Performance figures of what ships: size, compute, memory and measured latency.

- `footprint`: size on disk and weight bytes by dtype of a `.mlpackage` or `.onnx` file;
- `graph_cost`: the `ProgramCost` record and what every graph walker shares
  (MAC formulas' bookkeeping, the peak-activation estimate, shape expressions);
- `mil_cost` / `onnx_cost`: MACs, peak activation memory and fp16 share of a
  Core ML ML Program / an ONNX graph at a concrete input length, counted from
  the program itself;
- `timing`: interleaved trials, medians with an order-statistic interval and
  paired ratios, under a time cap;
- `decoder_timing`: the prefill and decode cells of a decoder, one per runtime and length.

Nothing here judges: the performance gate (`gates.model.performance`) does.
"""
