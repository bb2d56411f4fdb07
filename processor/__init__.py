"""Route observations: derivation from spans of every supported convention, the in-process
span processor and the OTLP collector mode."""

from processor.observation import COLUMNS, RouteObservation
from processor.derive import MalformedSpan, derive_from_parts  # not derive (the module's name); cycle: no span_processor

__all__ = ["COLUMNS", "MalformedSpan", "RouteObservation", "derive_from_parts"]
