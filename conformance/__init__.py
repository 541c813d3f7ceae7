"""sddc-conformance: contract and conformance suite for SDDC Manager's Cancel Task operation."""

__version__ = "0.1.0"
