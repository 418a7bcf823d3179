"""What an LLM reads and writes, and how it is run: output formats (formats/), mention placement (align),
prompts, units (the typed inputs of one split), generation, constrained decoding (constraints), endpoint
prompting (endpoint) and the bundled models (models). Shared by every generating method."""
