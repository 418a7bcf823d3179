"""Readers for every corpus format in the registry; each returns `list[Document]`."""
from data.readers.standoff import *  # noqa: F401,F403
from data.readers.tokens import *  # noqa: F401,F403
