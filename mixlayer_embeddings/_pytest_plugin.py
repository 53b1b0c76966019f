"""pytest plugin: the ``mixlayer_emulator`` fixture, a running emulator for offline RAG tests.

Installed with mixlayer-embeddings (a ``pytest11`` entry point). Loading it imports nothing
but pytest: the emulator (and the ``emulator`` extra it needs) is imported only when a test
asks for the fixture, and a missing extra fails that test with the ``pip install`` to run.
The server is started once per session; each test gets it reset (no faults, no latency).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .emulator import Emulator


@pytest.fixture(scope="session")
def _mixlayer_emulator_server() -> Iterator[Emulator]:
    from ._extras import MissingExtraError

    try:
        from .emulator import Emulator
    except MissingExtraError as exc:
        pytest.fail(f"the mixlayer_emulator fixture: {exc}", pytrace=False)

    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def mixlayer_emulator(_mixlayer_emulator_server: Emulator) -> Iterator[Emulator]:
    """A running emulator: ``.base_url``, ``.api_key``, ``.model``, ``.script([...])``."""
    _mixlayer_emulator_server.reset()
    yield _mixlayer_emulator_server
    _mixlayer_emulator_server.reset()
