"""langchain-tests' standard suites: unit, integration on the emulator, integration on cassettes."""

from __future__ import annotations

import pytest
from conftest import KEY, MODEL
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_mixlayer import MixlayerEmbeddings

_target: dict[str, str] = {}


class TestMixlayerEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[MixlayerEmbeddings]:
        return MixlayerEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": MODEL, "api_key": KEY}

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        return (
            {
                "MIXLAYER_API_KEY": KEY,
                "MIXLAYER_EMBEDDING_MODEL": MODEL,
                "MIXLAYER_BASE_URL": "http://127.0.0.1:8765/v1",
            },
            {},
            {"model": MODEL, "base_url": "http://127.0.0.1:8765/v1"},
        )


class TestMixlayerEmbeddingsOnEmulator(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _emulator(self, mixlayer_emulator) -> None:
        _target.update(base_url=mixlayer_emulator.base_url, api_key=mixlayer_emulator.api_key)

    @property
    def embeddings_class(self) -> type[MixlayerEmbeddings]:
        return MixlayerEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": MODEL, "dimensions": 256, **_target}


@pytest.mark.vcr
class TestMixlayerEmbeddingsOnCassettes(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _target(self, cassette_target) -> None:
        _target.update(base_url=cassette_target["base_url"], api_key=cassette_target["api_key"])

    @property
    def embeddings_class(self) -> type[MixlayerEmbeddings]:
        return MixlayerEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": MODEL, "dimensions": 256, **_target}
