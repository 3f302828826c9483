"""The machinery that runs gates, shared by every gate and by plugins.

- `protocol`: the `Gate` protocol (every optional hook declared with its
  default), `GateContext`, `Memo`, `GateError`, `NoSettings`;
- `spec`: `ProjectSpec`, `ModelSpec`, `CodeSpec`: what is assessed;
- `scheduler`: runs gates in dependency order, with timeouts and parallelism;
- `registry`: built-in gates and third-party plugins by name;
- `cache`: results stored by a hash of their inputs;
- `children`, `process_watch`: child processes a gate starts, stopped on
  interruption and watched for output and time;
- `tools`: the installed version of a tool, read from package metadata.

Imports the standard library and `gates.result` only (psutil for child
processes); never a gate room, `readiness` or `reports`.
"""
