"""Every route into a run's options ends in one validated `RunOptions`.

- `file`: sddc-conformance.toml / [tool.sddc-conformance] (becomes click's default_map);
- `from_click`: the `run` command's parameters (command line > environment > file);
- `from_pytest`: --sddc-* options and sddc_* ini keys.

TLS, password and path rules live once, in `conformance.options`.
"""
