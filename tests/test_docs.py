"""Every Python block of README.md and docs/*.md runs against the emulator, so no snippet can
rot. Blocks of one page share a namespace, in order, like a reader going down the page; a
``test_*`` function a block defines is called with the ``mixlayer_emulator`` fixture."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "packages").glob("*/README.md")),  # the registry distributions' pages
]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[str]:
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


def test_the_framework_pages_have_python_blocks() -> None:
    for name in ("README.md", "docs/langchain.md", "docs/llama-index.md"):
        assert python_blocks(ROOT / name), name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
# The README's Ray example starts a local cluster, and Ray warns about its own deprecated settings.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
# langchain_core.load.loads announces itself as beta on every call: LangChain's notice, not ours.
@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_code_blocks_run(page: Path, mixlayer_emulator, monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("MIXLAYER_API_KEY", mixlayer_emulator.api_key)
    monkeypatch.setenv("MIXLAYER_BASE_URL", mixlayer_emulator.base_url)
    monkeypatch.setenv("MIXLAYER_EMBEDDING_MODEL", mixlayer_emulator.model)
    if page.name == "README.md":
        _run_the_readme_command(tmp_path, monkeypatch)
    # Pages set LlamaIndex's global Settings.embed_model: put it back afterwards.
    from llama_index.core import Settings

    monkeypatch.setattr(Settings, "_embed_model", Settings._embed_model)
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(python_blocks(page), 1):
        before = set(namespace)
        try:
            exec(compile(block, f"{page.name} block {number}", "exec"), namespace)  # noqa: S102 - our own documentation
        except Exception as exc:
            raise AssertionError(f"{page.name}, python block {number} failed: {exc!r}") from exc
        for name in sorted(set(namespace) - before):
            if name.startswith("test_") and callable(namespace[name]):
                namespace[name](mixlayer_emulator)
    if python_blocks(page):
        assert capsys.readouterr().out  # the pages' prints printed something


def _run_the_readme_command(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a reader of the README has done before its "read the output" block: run its
    ``mixlayer-embed`` command, as written there, in a folder of their own."""
    import json
    import shlex

    import mixlayer_embeddings._bulk as bulk

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"^mixlayer-embed corpus\.jsonl .*$", readme, re.MULTILINE)
    monkeypatch.chdir(folder)
    records = [{"doc_id": i, "body": f"passage {i} about bread"} for i in range(5)]
    Path("corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert bulk.main([*shlex.split(command)[1:], "--no-progress"]) == bulk.EXIT_OK


def _module_table() -> list[str]:
    """The first column of the README's table of the core's modules, as names."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| module | its job |") :].split("\n\n")[0]
    names: list[str] = []
    for row in table.splitlines()[2:]:
        first = row.split("|")[1]
        names += re.findall(r"`([^`]+)`", first)
    return names


def test_the_readme_module_table_names_every_module_of_the_core_and_no_other() -> None:
    core = ROOT / "mixlayer_embeddings"
    folders = [p for p in core.iterdir() if p.is_dir() and p.name != "__pycache__"]
    on_disk = {p.stem for p in core.glob("*.py")} | {f"{p.name}/" for p in folders}
    inside_folders = {p.stem for folder in folders for p in folder.glob("*.py")}
    tabled = set(_module_table())
    assert sorted(on_disk - tabled) == []  # a module nobody described
    assert sorted(tabled - on_disk - inside_folders) == []  # a module that is gone


def test_every_client_setting_is_documented_where_a_user_reads_them() -> None:
    from mixlayer_embeddings import MixlayerClient
    from mixlayer_embeddings.typing import ClientKwargs

    readme = (ROOT / "README.md").read_text()
    docstring = MixlayerClient.__doc__ or ""
    for name in ClientKwargs.__annotations__:
        assert f"``{name}``" in docstring, name
        assert f"`{name}`" in readme, name


def _test_map() -> list[tuple[list[str], list[str]]]:
    text = (ROOT / "tests" / "README.md").read_text()
    rows = []
    for row in text[text.index("| module | tests |") :].splitlines()[2:]:
        if not row.startswith("|"):
            break
        modules, tests = row.split("|")[1:3]
        rows.append((re.findall(r"`([^`]+)`", modules), re.findall(r"`([^`]+)`", tests)))
    return rows


def test_the_tests_map_names_every_module_and_every_test_file() -> None:
    core = ROOT / "mixlayer_embeddings"
    folders = [p for p in core.iterdir() if p.is_dir() and p.name != "__pycache__"]
    modules = {p.stem for p in core.glob("*.py")} | {f"{p.name}/" for p in folders}
    rows = _test_map()
    mapped = {name for names, _ in rows for name in names}
    named_tests = {name for _, tests in rows for name in tests}
    on_disk = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    assert sorted(modules - mapped) == []  # a module with no row
    assert sorted(on_disk - named_tests) == []  # a test file nobody can find from a module
    assert sorted(named_tests - on_disk) == []  # a test file that is gone


@pytest.mark.parametrize(
    ("page", "module", "name"),
    [
        ("langchain.md", "langchain_mixlayer", "MixlayerEmbeddings"),
        ("llama-index.md", "llama_index.embeddings.mixlayer", "MixlayerEmbedding"),
    ],
)
def test_each_adapters_page_lists_every_field_it_has(page: str, module: str, name: str) -> None:
    import importlib

    cls = getattr(importlib.import_module(module), name)
    text = (ROOT / "docs" / page).read_text()
    listed = text[text.index("## API reference") :]
    assert [f for f in cls.model_fields if f"`{f}`" not in listed] == []
    assert "`fingerprint`" in listed
