"""Sub-commands of the ``otel-llm`` command line, one module each."""
