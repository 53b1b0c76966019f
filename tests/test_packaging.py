"""The built wheel and sdist, as a user meets them: fresh venvs with one extra each.

Offline: the venvs install from the wheels ``make test`` downloaded at install time
(``.venv/wheelhouse``), with ``--no-index``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"

pytestmark = pytest.mark.skipif(
    not (WHEELHOUSE / ".done").exists(),
    reason="run through `make test`, which fetches the wheels the fresh venvs install",
)


def run(
    *args: str | Path, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIXLAYER_", "PYTHON"))}
    result = subprocess.run(  # noqa: S603 - our own interpreters and fixed arguments
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "hatchling", "build", "-d", out, cwd=ROOT)
    return out


def fresh_venv(where: Path, wheel: Path, extra: str | None) -> Path:
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    target = f"{wheel}[{extra}]" if extra else str(wheel)
    run(python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", WHEELHOUSE,
        target, "pytest")  # fmt: skip
    return python


def test_wheel_and_sdist_contents(dist: Path) -> None:
    with zipfile.ZipFile(next(dist.glob("*.whl"))) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(next(n for n in names if n.endswith("METADATA"))).decode()
    for typed in ("mixlayer_embeddings", "langchain_mixlayer", "llama_index_mixlayer",
                  "llama_index/embeddings/mixlayer"):  # fmt: skip
        assert f"{typed}/py.typed" in names, typed
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "Project-URL: Homepage" in metadata and "License-Expression: MIT" in metadata
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    assert {"LICENSE", "tests/conftest.py", "docs/langchain.md"} <= members
    assert any(m.startswith("cassettes/") and m.endswith(".yaml") for m in members)


def test_the_sdist_runs_its_own_tests(dist: Path, tmp_path: Path) -> None:
    sdist = next(dist.glob("*.tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    unpacked = next(p for p in tmp_path.iterdir() if p.is_dir())
    # Cassette replays and validation: the shipped tests find the shipped cassettes.
    result = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "--record-mode=none", "tests/test_cassettes.py", "tests/test_validation.py",
                 cwd=unpacked)  # fmt: skip
    assert " passed" in result.stdout


EXTRAS = [None, "langchain", "llama-index"]

NO_OTEL_CALL = """
import sys, httpx
from mixlayer_embeddings import MixlayerClient
body = {"data": [], "model": "m", "usage": {"prompt_tokens": 0, "total_tokens": 0}}
def answer(request):
    return httpx.Response(400, json={"error": {"message": "no", "code": "x"}})
http = httpx.Client(transport=httpx.MockTransport(answer))
client = MixlayerClient(api_key="k", model="qwen/qwen3-embedding-8b", http_client=http)
try:
    client.embed(["a"])
except Exception:
    pass
assert not any(name.startswith("opentelemetry") for name in sys.modules), "imported"
"""


@pytest.fixture(scope="module")
def venvs(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, Path]:
    """One fresh venv per extra, built side by side (installing is mostly waiting on pip)."""
    from concurrent.futures import ThreadPoolExecutor

    wheel = next(dist.glob("*.whl"))
    where = tmp_path_factory.mktemp("venvs")
    with ThreadPoolExecutor(len(EXTRAS)) as pool:
        pythons = pool.map(lambda extra: fresh_venv(where / str(extra), wheel, extra), EXTRAS)
        return dict(zip(EXTRAS, pythons, strict=True))


ONE_LINE_SUITE = "def test_one():\n    assert 1 + 1 == 2\n"
EMULATOR_SUITE = "def test_uses(mixlayer_emulator):\n    assert mixlayer_emulator.base_url\n"


@pytest.mark.parametrize("extra", EXTRAS)
def test_fresh_venv_with_one_extra(
    venvs: dict[str | None, Path], tmp_path: Path, extra: str | None
) -> None:
    python = venvs[extra]
    bin_dir = python.parent

    run(python, "-c", "import mixlayer_embeddings, sys; assert 'httpx' in sys.modules")
    # Without the otel extra, a call imports nothing of OpenTelemetry (and costs nothing).
    run(python, "-c", NO_OTEL_CALL)
    imports = {
        "langchain": "from langchain_mixlayer import MixlayerEmbeddings",
        "llama-index": "from llama_index.embeddings.mixlayer import MixlayerEmbedding",
    }
    for needs, statement in imports.items():
        result = run(python, "-c", statement, check=False)
        if needs == extra:
            assert result.returncode == 0, result.stderr
        else:
            last = result.stderr.strip().splitlines()[-1]
            assert f'pip install "mixlayer-embeddings[{needs}]"' in last, last

    # The pytest plugin loads without the emulator extra...
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_one.py").write_text(ONE_LINE_SUITE)
    run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=suite)
    # ...and the fixture, when used, names what to install.
    (suite / "test_one.py").write_text(EMULATOR_SUITE)
    result = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=suite, check=False)
    assert result.returncode == 1
    assert 'pip install "mixlayer-embeddings[emulator]"' in result.stdout

    # The CLIs: one line and exit 3, no traceback.
    for command, extra_needed in (("mixlayer-emulator", "emulator"), ("mixlayer-demo", "demo")):
        result = run(bin_dir / command, check=False)
        assert result.returncode == 3, (command, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert f'pip install "mixlayer-embeddings[{extra_needed}]"' in result.stderr


# -- the registries' distributions: langchain-mixlayer, llama-index-embeddings-mixlayer --------

REGISTRY = {
    "langchain-mixlayer": (
        "langchain",
        "from langchain_mixlayer import MixlayerEmbeddings as E\n"
        "e = E(api_key=key, base_url=url, model=model, dimensions=32)\n"
        "v = e.embed_query('how does bread rise?')\n",
    ),
    "llama-index-embeddings-mixlayer": (
        "llama-index",
        "from llama_index.embeddings.mixlayer import MixlayerEmbedding as E\n"
        "e = E(api_key=key, api_base=url, model_name=model, dimensions=32)\n"
        "v = e.get_query_embedding('how does bread rise?')\n",
    ),
}


@pytest.fixture(scope="module")
def registry_dist(dist: Path) -> Path:
    """The registries' wheels, built as `make dists` builds them, beside the core's."""
    for name in REGISTRY:
        run(sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", dist,
            cwd=ROOT / "packages" / name)  # fmt: skip
    return dist


@pytest.mark.parametrize("name", list(REGISTRY))
def test_a_registry_distribution_installs_imports_and_embeds(
    registry_dist: Path, tmp_path: Path, mixlayer_emulator, name: str
) -> None:
    import mixlayer_embeddings

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    extra, script = REGISTRY[name]
    project = tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())["project"]
    assert project["version"] == mixlayer_embeddings.__version__
    assert project["dependencies"] == [f"mixlayer-embeddings[{extra}]=={project['version']}"]
    assert (ROOT / "packages" / name / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    wheel = next(registry_dist.glob(f"{name.replace('-', '_')}-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert all(".dist-info/" in n for n in names)  # metadata only: the code is the core's
    assert f"Requires-Dist: mixlayer-embeddings[{extra}]==" in metadata
    assert "License-Expression: MIT" in metadata and "Project-URL: Documentation" in metadata

    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", registry_dist,
        "--find-links", WHEELHOUSE, name)  # fmt: skip
    program = (
        "import sys\n"
        "url, key, model = sys.argv[1:4]\n" + script + "assert len(v) == 32\nprint('embedded')\n"
    )
    args = (mixlayer_emulator.base_url, mixlayer_emulator.api_key, mixlayer_emulator.model)
    result = run(python, "-c", program, *args)
    assert result.stdout.strip() == "embedded"
