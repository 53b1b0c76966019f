"""What both framework adapters need, written once.

An adapter is a pydantic model whose fields are the truth: each call turns the fields into one
``AdapterSettings`` (the adapter's only job is that mapping, in ``_settings``), and
``AdapterClients`` hands back clients built for exactly those settings, rebuilding them when a
field that shapes a client changed since the last call. Per-call options (``dimensions``,
``input_type``, ...) are read at every call. So ``emb.dimensions = 256`` applies to the next
call, a copy with other values behaves by its own values, and nothing is stale.

Three rooms: ``model`` (``AdapterModel``, the pydantic side both adapters share: validation,
keyword suggestions, copies, usage, ``close()``), ``settings`` (``AdapterSettings``: the
mapping of fields to the core's settings, and ``ClientRecipe``, the part that shapes a
client), ``clients`` (``AdapterClients``: the clients of one adapter object, and the calls)
and ``fields`` (``SharedFields``: the fields both adapters name alike, declared once).
"""

from .clients import AdapterClients
from .fields import SharedFields
from .model import AdapterModel, has_credentials, serialized_proxy, timeout_as_data
from .settings import ADAPTER_NAMES, AdapterSettings, ClientRecipe

__all__ = [
    "ADAPTER_NAMES",
    "AdapterClients",
    "AdapterModel",
    "AdapterSettings",
    "ClientRecipe",
    "SharedFields",
    "has_credentials",
    "serialized_proxy",
    "timeout_as_data",
]
