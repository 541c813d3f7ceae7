"""The engine: reach a target, drive the suite's tests, record what the checks say.

target (bounded HTTP) → session (one run's state) → runner (pytest.main over conformance.suite)
→ recorder (findings per requirement) → `conformance.outcome.RunResult`. The engine raises
`conformance.errors` and returns results; it never decides an exit code.
"""
