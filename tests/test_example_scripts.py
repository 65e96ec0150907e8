"""The scripts outside the package cannot rot unnoticed: every benchmark imports, and every import and ``clef_sdk``
attribute any benchmark or example names (function-level ones included) resolves; every example runs, here in its
``--quick`` mode or, where that is its natural test, in the test named in :data:`RUN_ELSEWHERE`; and
benchmarks/bench_download.py (which imported a helper removed long before anyone noticed) runs its ``--quick`` pass.

The example runs need the shared fixtures (``data/``, ``conformance/``; see conftest.py) and skip without them.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import subprocess
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
EXAMPLES = REPO / "examples"
LOCAL_DIRS = (BENCHMARKS, EXAMPLES, REPO / "tests")  # where the scripts' own modules (_common, _datasets, ...) live

BENCHMARK_SCRIPTS = sorted(path for path in BENCHMARKS.glob("*.py") if not path.name.startswith("_"))  # _*.py: helpers
EXAMPLE_SCRIPTS = sorted(path for path in EXAMPLES.glob("*.py") if path.name != "_datasets.py")
ALL_SCRIPTS = sorted(BENCHMARKS.glob("*.py")) + sorted(EXAMPLES.glob("*.py"))

# example -> (packages it needs beyond the core dependencies, lines its --quick run must print)
QUICK_RUNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "benchmark_shared": ((), ("quick mode", "| ludb:af (n=40) | probe | auroc |", "random-init small", "wall time")),
    "feature_loss": ((), ("MIT-BIH: 20 training windows", "MSE + 1 x FeatureLoss")),
    "pretrain_small": (
        ("lightning", "pandas", "wfdb", "matplotlib"),
        ("LUDB: 8 records for pretraining", "clef: 2 steps", "clef pretrained", "figure saved to"),
    ),
    "probe_cpsc_hr": (("matplotlib",), ("CPSC 2019 sample: 20 records", "95% CI", "baseline (predict", "figure saved")),
    "probe_ludb": (("wfdb", "matplotlib"), ("LUDB: 30 records", "== AF vs sinus", "== sex", "95% CI", "figure saved")),
    "probe_mitdb_pvc": (("matplotlib",), ("MIT-BIH: 120 windows", "All 12 records, out-of-fold", "figure saved")),
}
# examples whose natural test lives elsewhere (each runs the script as a subprocess; not repeated here)
RUN_ELSEWHERE = {
    "quickstart": "tests/test_quickstart.py",  # offline: the one-line fallback, and the shared checkpoint
    "onnx_app": "tests/test_onnx_export.py",  # needs an exported .onnx file, which that test makes
}


# ------------------------------------------------------------------------------------------------ imports


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The scripts' folders on sys.path (as when they run); sys.path, and the scripts' own modules in sys.modules,
    are put back afterwards."""
    monkeypatch.setattr(sys, "path", [str(folder) for folder in LOCAL_DIRS] + sys.path)
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None) or ""
        if Path(file).parent in (BENCHMARKS, EXAMPLES):
            del sys.modules[name]


def _is_local(module: str) -> bool:
    top = module.split(".")[0]
    return any((folder / f"{top}.py").is_file() for folder in LOCAL_DIRS)


def _resolve(module: str, name: str | None) -> str | None:
    """None if ``from module import name`` (or ``import module``) works here, else what is wrong."""
    top = module.split(".")[0]
    try:
        with warnings.catch_warnings():
            if top != "clef_sdk":  # third-party import-time warnings (wfdb's pandas ones) are not ours to check
                warnings.simplefilter("ignore")
            imported = importlib.import_module(module)
    except ImportError as exc:
        if top != "clef_sdk" and not _is_local(module) and importlib.util.find_spec(top) is None:
            return None  # an optional third-party package that is not installed: nothing to check
        return f"import {module}: {exc}"
    if name is None or name == "*" or hasattr(imported, name):
        return None
    try:
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return f"from {module} import {name}: {module} has no {name!r}"
    return None


def _attribute_chain(node: ast.Attribute) -> list[str] | None:
    parts: list[str] = []
    value: ast.expr = node
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    if not isinstance(value, ast.Name):
        return None
    return [value.id, *reversed(parts)]


def _resolve_attributes(module: types.ModuleType, chain: list[str]) -> str | None:
    """``clef.probes.bootstrap_metrics``-style chains: each step must exist while the object is a module."""
    value: object = module
    for depth, part in enumerate(chain[1:], start=1):
        if not isinstance(value, types.ModuleType):
            return None  # past a function or class: attributes of its instances are not checked
        if hasattr(value, part):
            value = getattr(value, part)
            continue
        try:
            value = importlib.import_module(f"{value.__name__}.{part}")
        except ImportError:
            return f"{'.'.join(chain[: depth + 1])}: {value.__name__} has no {part!r}"
    return None


def _import_problems(path: Path) -> list[str]:
    """Every import statement of the file, at any depth, and every attribute chain on a clef_sdk module name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    problems, modules = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                problem = _resolve(alias.name, None)
                if problem:
                    problems.append(f"line {node.lineno}: {problem}")
                elif (
                    alias.name.split(".")[0] == "clef_sdk"
                ):  # `import clef_sdk.x as y` binds y; `import clef_sdk.x`, clef_sdk
                    modules[alias.asname or "clef_sdk"] = importlib.import_module(
                        alias.name if alias.asname else "clef_sdk"
                    )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module != "__future__":
            for alias in node.names:
                problem = _resolve(node.module, alias.name)
                if problem:
                    problems.append(f"line {node.lineno}: {problem}")
                elif node.module.split(".")[0] == "clef_sdk":
                    value = getattr(importlib.import_module(node.module), alias.name, None)
                    if isinstance(value, types.ModuleType):
                        modules[alias.asname or alias.name] = value
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = _attribute_chain(node)
            if chain and chain[0] in modules:
                problem = _resolve_attributes(modules[chain[0]], chain)
                if problem:
                    problems.append(f"line {node.lineno}: {problem}")
    return sorted(set(problems))


@pytest.mark.parametrize("path", BENCHMARK_SCRIPTS, ids=lambda path: path.name)
def test_benchmark_imports_without_running(path: Path, isolated_imports: None) -> None:
    spec = importlib.util.spec_from_file_location(f"clef_benchmark_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # runs the module's top level only: main() is behind `if __name__ == ...`
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"


@pytest.mark.parametrize("path", ALL_SCRIPTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_import_and_clef_sdk_attribute_resolves(path: Path, isolated_imports: None) -> None:
    """Catches what importing the module does not: imports inside main(), and names such as clef.probes.x."""
    assert _import_problems(path) == []


def test_the_import_check_finds_a_removed_helper(tmp_path: Path, isolated_imports: None) -> None:
    script = tmp_path / "stale.py"
    script.write_text(
        "import clef_sdk as clef\n"
        "def main():\n"
        "    from clef_sdk.hub import _file_digests\n"
        "    from clef_sdk.files import no_such_helper\n"
        "    return clef.no_such_function, clef.probes.bootstrap_metrics\n"
    )
    problems = _import_problems(script)
    assert len(problems) == 3, problems
    assert problems[0].startswith("line 3:") and "clef_sdk.hub" in problems[0]
    assert "no 'no_such_helper'" in problems[1] and "clef.no_such_function" in problems[2]


def test_every_script_guards_its_main() -> None:
    for path in BENCHMARK_SCRIPTS + EXAMPLE_SCRIPTS:
        assert '\nif __name__ == "__main__":\n' in path.read_text(), f"{path.name} runs on import"


# ------------------------------------------------------------------------------------------------ runs


def _run(script: Path, args: list[str], tmp_path: Path, shared: Path) -> subprocess.CompletedProcess:
    """``script args`` in an empty working folder, offline, caches and temporary files under tmp_path."""
    cwd, temporary = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    temporary.mkdir()
    env = {
        **os.environ,
        "CLEF_SDK_SHARED": str(shared),
        "HF_HUB_OFFLINE": "1",  # quick mode needs no network
        "HF_HOME": str(tmp_path / "hf"),
        "CLEF_SDK_HOME": str(tmp_path / "clef"),
        "TMPDIR": str(temporary),
        "MPLBACKEND": "Agg",
    }
    env.pop("CLEF_EXAMPLES_QUICK", None)
    result = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )
    assert result.returncode == 0, f"{script.name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert list(cwd.iterdir()) == [], "the run wrote into its working folder"
    return result


def test_every_example_is_run_somewhere() -> None:
    names = {path.stem for path in EXAMPLE_SCRIPTS}
    assert not set(QUICK_RUNS) & set(RUN_ELSEWHERE)
    assert names == set(QUICK_RUNS) | set(RUN_ELSEWHERE), "a new example needs a --quick run here"
    for name, test_file in RUN_ELSEWHERE.items():
        assert f'"{name}.py"' in (REPO / test_file).read_text(), f"{test_file} no longer runs examples/{name}.py"


@pytest.mark.parametrize("name", sorted(QUICK_RUNS))
def test_example_quick_mode(name: str, data_dir: Path, conformance_dir: Path, tmp_path: Path) -> None:
    packages, expected = QUICK_RUNS[name]
    for package in packages:
        pytest.importorskip(package)
    result = _run(EXAMPLES / f"{name}.py", ["--quick"], tmp_path, shared=data_dir.parent)
    assert result.stdout.startswith("quick mode:")
    for line in expected:
        assert line in result.stdout, f"{line!r} not in the output of {name}.py --quick:\n{result.stdout}"
    if "figure saved" in " ".join(expected):  # quick mode's figures go to the temporary folder
        assert list((tmp_path / "tmp" / "clef-examples").rglob("*.png"))


def test_quick_mode_is_also_set_by_the_environment(monkeypatch: pytest.MonkeyPatch, isolated_imports: None) -> None:
    datasets = importlib.import_module("_datasets")
    for value, expected in (("1", True), ("", False), ("0", False)):
        monkeypatch.setenv(datasets.QUICK_ENV, value)
        parser = argparse.ArgumentParser()
        datasets.add_quick_argument(parser, "a test")
        assert parser.parse_args([]).quick is expected
        assert parser.parse_args(["--quick"]).quick is True


def test_bench_download_quick(conformance_dir: Path, tmp_path: Path) -> None:
    result = _run(BENCHMARKS / "bench_download.py", ["--quick"], tmp_path, shared=conformance_dir.parent)
    for line in ("1 cold-cache repeats through 127.0.0.1", "zenodo first load", "md5 + sha256 of the .ckpt"):
        assert line in result.stdout


# benchmark -> (its smallest run, lines it must print); each writes its JSON under the test's folder
SMALL_BENCHMARK_RUNS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "bench_threads": (["--minutes", "1", "--repeats", "1", "--busy", "0,1"], ("busy processes", "all cores")),
    "profile_network": (["--batch", "2", "--steps", "1", "--top", "3"], ("operator calls per forward",)),
    "bench_quality_loso": (["--per-source", "2"], ("leave-one-source-out", "held-out source", "NSTDB 118")),
    "bench_quality": (["--hours", "0.02"], ("windows/s", "this tree")),
    "bench_backends": (
        ["--sizes", "small", "--batches", "2", "--windows", "4", "--repeats", "1"],
        ("vs torch fp32", "min cosine over 64 windows"),
    ),
}


@pytest.mark.parametrize("name", sorted(SMALL_BENCHMARK_RUNS))
def test_a_benchmark_runs_at_its_smallest(name: str, conformance_dir: Path, tmp_path: Path) -> None:
    args, lines = SMALL_BENCHMARK_RUNS[name]
    if name == "bench_backends":
        pytest.importorskip("onnxruntime")
    result = _run(
        BENCHMARKS / f"{name}.py", [*args, "--json", str(tmp_path / "out.json")], tmp_path, conformance_dir.parent
    )
    for line in lines:
        assert line in result.stdout
    assert (tmp_path / "out.json").is_file()
