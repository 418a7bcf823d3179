"""Readers for every corpus format in the registry; each returns `list[Document]`.

Each reader module is imported only if present, so one can be used while the other is being written.
"""
try:
    from data.readers.standoff import *  # noqa: F401,F403
except ModuleNotFoundError as err:
    if err.name != "data.readers.standoff":
        raise
try:
    from data.readers.tokens import *  # noqa: F401,F403
except ModuleNotFoundError as err:
    if err.name != "data.readers.tokens":
        raise
