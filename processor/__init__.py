"""Route observations: derivation from spans of every supported convention, the in-process
span processor and the OTLP collector mode."""

from processor.observation import COLUMNS, RouteObservation

__all__ = ["COLUMNS", "RouteObservation"]
