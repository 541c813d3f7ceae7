"""The conformance tests themselves: ordinary pytest tests, driven by `sddc-conformance run`."""
