"""Types for annotating code that uses mixlayer-embeddings (as ``stamina.typing``).

- ``ClientKwargs``: a client's settings as keyword arguments (``MixlayerClient(**kwargs)``).
- ``OptionKwargs``: the per-call options as keyword arguments (``client.embed(x, **options)``).
- ``EmbeddingInput``: what ``embed`` takes: a text, texts, token ids, or lists of token ids.
- ``ProgressCallback``: called after each batch with how many inputs it embedded.
- ``Clock``: where a client reads the time and sleeps (tests pass their own).
- ``Pacer``: when requests may start (``RatePacer`` is the one this package has).
- ``Secret``: holds the key; ``repr`` and ``str`` never show it (``api_key=`` takes one).
"""

from __future__ import annotations

from ._base_client import ProgressCallback
from ._clock import Clock
from ._config import ClientKwargs, Secret
from ._options import OptionKwargs
from ._pacing import Pacer
from ._validation import EmbeddingInput

__all__ = [
    "ClientKwargs",
    "Clock",
    "EmbeddingInput",
    "OptionKwargs",
    "Pacer",
    "ProgressCallback",
    "Secret",
]

for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) and _value.__module__.startswith("mixlayer_embeddings._"):
        _value.__module__ = __name__
del _name, _value
