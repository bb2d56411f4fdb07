"""Route observations: derivation from spans of every supported convention, the in-process
span processor and the OTLP collector mode."""

from processor.observation import COLUMNS, RouteObservation
from processor.derive import MalformedSpan, derive, derive_from_parts  # span_processor: import directly (cycle)

__all__ = ["COLUMNS", "MalformedSpan", "RouteObservation", "derive", "derive_from_parts"]
