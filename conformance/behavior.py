"""Behavioural requirements: scenarios that drive a target through several requests."""
