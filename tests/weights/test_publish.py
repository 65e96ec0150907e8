"""``clef publish``'s folder and upload, and its model cards, against hostile inputs: an --out folder holding the
user's own files (never overwritten, never uploaded), hostile training metadata and manifest text in the cards
(escaped: the YAML front matter and the Markdown tables keep their structure)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import clef_sdk as clef
from clef_sdk.cli import main
from clef_sdk.errors import OutputError
from clef_sdk.weights import publish as publish_module
from clef_sdk.weights.cards import front_matter, released_model_card, trained_model_card
from clef_sdk.weights.format import EncoderWeights, write_weights
from clef_sdk.weights.network import upload_folder
from clef_sdk.weights.publish import build_hub_folder, publish, publish_trained
from clef_sdk.weights.registry import model_entry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hf_hub import TRAINING, trained_weights

WRITTEN = ["README.md", "config.json", "model.safetensors"]


class FilteringApi:
    """Stands in for huggingface_hub.HfApi's upload side and selects the files exactly as the real
    ``upload_folder`` does (``filter_repo_objects`` over every file below the folder, with its allow/ignore
    patterns and huggingface_hub's default ignores): ``uploaded`` is what would reach the public repository."""

    def __init__(self, commit: str = "e" * 40) -> None:
        self.commit, self.uploaded, self.calls = commit, [], []

    def create_repo(self, repo_id: str, **kwargs: object) -> None:
        self.calls.append("create_repo")

    def upload_folder(self, *, folder_path: str, allow_patterns=None, ignore_patterns=None, **kwargs: object):
        from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
        from huggingface_hub.utils import filter_repo_objects

        self.calls.append("upload_folder")
        root = Path(folder_path)
        every = sorted(p.relative_to(root).as_posix() for p in root.glob("**/*") if p.is_file())
        ignore = [*(ignore_patterns or []), *DEFAULT_IGNORE_PATTERNS]
        self.uploaded = sorted(filter_repo_objects(every, allow_patterns=allow_patterns, ignore_patterns=ignore))
        return SimpleNamespace(oid=self.commit, commit_url=None)


def _plant_private_files(folder: Path) -> dict[Path, bytes]:
    (folder / "private_data").mkdir(parents=True)
    planted = {
        folder / "README.md": b"# my project notes\n",
        folder / "config.json": b'{"my": "own config"}\n',
        folder / ".env": b"HF_TOKEN=hf_secret\n",
        folder / "private_data" / "patients.csv": b"id,diagnosis\n1,AF\n",
    }
    for path, data in planted.items():
        path.write_bytes(data)
    return planted


def _unchanged(planted: dict[Path, bytes]) -> bool:
    return all(path.read_bytes() == data for path, data in planted.items())


@pytest.fixture
def mine(tmp_path: Path) -> Path:
    return trained_weights(tmp_path / "mine.safetensors", seed=3)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "upload"])
def test_publish_refuses_a_folder_holding_the_users_files(env, mine: Path, tmp_path: Path, dry_run: bool) -> None:
    out = tmp_path / "project"
    planted = _plant_private_files(out)
    api = FilteringApi()
    with pytest.raises(OutputError) as info:
        publish_trained(mine, "me/clef-mine", license="mit", out_dir=out, dry_run=dry_run, api=api)
    message = str(info.value)
    for name in (".env", "private_data/", "README.md", "config.json"):
        assert name in message, message
    assert str(out) in message and "new or empty folder" in message
    assert _unchanged(planted) and not (out / "model.safetensors").exists()
    assert api.calls == []  # nothing created, nothing uploaded


@pytest.mark.parametrize(
    "planted",
    [{".env": "SECRET=1"}, {"README.md": "# mine"}, {"config.json": '{"library_name": "other"}'}, {"notes.txt": "x"}],
    ids=["dotenv", "own-readme", "own-config", "other-file"],
)
def test_any_file_that_is_not_a_previous_publish_is_refused(env, mine: Path, tmp_path: Path, planted) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name, text in planted.items():
        (out / name).write_text(text)
    with pytest.raises(OutputError, match="did not write"):
        publish_trained(mine, "me/clef-mine", license="mit", out_dir=out, dry_run=True)
    assert {p.name: p.read_text() for p in out.iterdir()} == planted


def test_the_cli_refuses_too_and_changes_nothing(env, mine: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "project"
    planted = _plant_private_files(out)
    argv = ["publish", "--weights", str(mine), "--repo-id", "me/x", "--license", "mit", "--out", str(out)]
    assert main([*argv, "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("clef: error: ") and ".env" in err and "new or empty folder" in err
    assert _unchanged(planted)


def test_a_previous_publish_of_the_same_kind_is_replaced(env, mine: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = publish_trained(mine, "me/clef-mine", license="mit", out_dir=out, dry_run=True)
    other = trained_weights(tmp_path / "other.safetensors", seed=4)
    second = publish_trained(other, "me/clef-mine", license="cc-by-4.0", out_dir=out, dry_run=True)
    assert sorted(p.name for p in out.iterdir()) == WRITTEN
    assert second.manifest_source["sha256"] != first.manifest_source["sha256"]
    assert (out / "model.safetensors").read_bytes() == other.read_bytes()
    assert "license: cc-by-4.0" in (out / "README.md").read_text()
    # an interrupted earlier run may have left only some of the files, with its config.json
    (out / "README.md").unlink()
    publish_trained(mine, "me/clef-mine", license="mit", out_dir=out, dry_run=True)
    assert sorted(p.name for p in out.iterdir()) == WRITTEN


def test_a_previous_publish_of_the_other_kind_is_refused(env, mine: Path, tmp_path: Path, small_ckpt: Path) -> None:
    out = tmp_path / "out"
    build_hub_folder("small", small_ckpt, out, repo_id="me/clef-small", force=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OutputError, match="released CLEF model.*trained model"):
        publish_trained(mine, "me/clef-mine", license="mit", out_dir=out, dry_run=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    publish_trained(mine, "me/clef-mine", license="mit", out_dir=tmp_path / "fresh", dry_run=True)
    with pytest.raises(OutputError, match="trained model.*released CLEF model"):
        build_hub_folder("small", small_ckpt, tmp_path / "fresh", repo_id="me/clef-small", force=True)


def test_released_publish_refuses_the_users_folder(env, small_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "project"
    planted = _plant_private_files(out)
    api = FilteringApi()
    with pytest.raises(OutputError, match=r"\.env"):
        publish("small", small_ckpt, "me/clef-small", out_dir=out, force=True, api=api)
    assert _unchanged(planted) and api.calls == []


def test_a_file_as_out_or_the_input_inside_out(env, mine: Path, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        publish_trained(mine, "me/clef-mine", license="mit", out_dir=not_a_folder, dry_run=True)
    out = tmp_path / "out"
    publish_trained(mine, "me/clef-mine", license="mit", out_dir=out, dry_run=True)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(OutputError, match="is also an input"):  # its own model.safetensors, republished into it
        publish_trained(out / "model.safetensors", "me/clef-mine", license="mit", out_dir=out, dry_run=True)
    assert (out / "model.safetensors").read_bytes() == before


def test_only_the_three_written_files_are_uploaded(env, mine: Path, tmp_path: Path) -> None:
    api = FilteringApi("f" * 40)
    result = publish_trained(mine, "me/clef-mine", license="mit", out_dir=tmp_path / "out", api=api)
    assert api.calls == ["create_repo", "upload_folder"] and api.uploaded == WRITTEN
    assert result.revision == "f" * 40
    # whatever appears in the folder later (an editor's backup, a .env), the upload names its files
    folder = tmp_path / "out"
    _plant_private_files(tmp_path / "elsewhere")
    (folder / ".env").write_text("HF_TOKEN=hf_secret")
    (folder / "private_data").mkdir()
    (folder / "private_data" / "patients.csv").write_text("id\n1\n")
    (folder / "README.md~").write_text("backup")
    upload_folder(folder, "me/clef-mine", "again", files=WRITTEN, api=api)
    assert api.uploaded == WRITTEN


def test_upload_folder_needs_the_file_names(tmp_path: Path) -> None:
    api = FilteringApi()
    with pytest.raises(TypeError):
        upload_folder(tmp_path, "me/x", "message", api=api)  # type: ignore[call-arg]
    with pytest.raises(OutputError, match="missing.txt"):
        upload_folder(tmp_path, "me/x", "message", files=["missing.txt"], api=api)
    (tmp_path / "a*b").write_text("x")
    with pytest.raises(ValueError, match="plain file names"):
        upload_folder(tmp_path, "me/x", "message", files=["a*b"], api=api)
    assert api.calls == []


def test_files_are_written_atomically(env, mine: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    publish_trained(mine, "me/clef-mine", license="mit", out_dir=out, dry_run=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken_card(*args: object, **kwargs: object) -> str:
        raise RuntimeError("the card could not be written")

    monkeypatch.setattr(publish_module, "trained_model_card", broken_card)
    other = trained_weights(tmp_path / "other.safetensors", seed=5)
    with pytest.raises(RuntimeError, match="could not be written"):
        publish_trained(other, "me/clef-mine", license="cc-by-4.0", out_dir=out, dry_run=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing replaced, no temporary files left


# --------------------------------------------------------------------------------------------------------------
# Cards: text from files and manifests is escaped

HOSTILE = {
    "training_method": "clef\nlicense: evil\n---",
    "training_data": "LUDB | lead I\n---\nlicense: mit\n| injected | row |\n# Heading",
    "training_steps": "1500 |",
    "training_seed": "7\\",
    "training_hparams": json.dumps({"note": "```\n# out of the fence", "method": "clef"}),
}


def _split_card(card: str) -> tuple[dict, str]:
    assert card.startswith("---\n")
    end = card.index("\n---\n", 4)
    return yaml.safe_load(card[4:end]), card[end + 5 :]


def _table_rows(body: str) -> list[str]:
    lines = body.splitlines()
    start = lines.index("| | |")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def _cells(row: str) -> list[str]:
    """The cells of a GFM table row: split at pipes not escaped by a backslash."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]


def test_trained_card_escapes_hostile_training_metadata(env, tmp_path: Path) -> None:
    weights = trained_weights(tmp_path / "hostile.safetensors", seed=6, **HOSTILE, source_file="a|b\n# x.ckpt")
    result = publish_trained(weights, "me/clef-mine", license="mit", out_dir=tmp_path / "out", dry_run=True)
    card = (result.folder / "README.md").read_text()
    meta, body = _split_card(card)
    assert set(meta) == {"library_name", "license", "tags", "pipeline_tag"}
    assert meta["license"] == "mit" and meta["library_name"] == "clef-sdk"
    assert all(isinstance(tag, str) and re.fullmatch(r"[a-z0-9][a-z0-9.:_-]*", tag) for tag in meta["tags"])
    rows = _table_rows(body)
    assert [_cells(row)[0] for row in rows] == [
        "size",
        "embedding dimension",
        "method",
        "steps",
        "epochs",
        "data",
        "seed",
        "trained from",
        "weights sha256",
        "weights size",
    ]
    assert all(len(_cells(row)) == 2 for row in rows)
    cells = {_cells(row)[0]: _cells(row)[1] for row in rows}
    assert cells["data"] == r"LUDB \| lead I --- license: mit \| injected \| row \| # Heading"
    assert cells["steps"] == r"1500 \|" and cells["seed"] == "7\\\\"
    assert "# Heading" not in body.splitlines() and "# out of the fence" not in body.splitlines()
    fence = re.search(r"^(`{3,})json\n(.*?)^\1$", body, re.S | re.M)
    assert fence is not None and json.loads(fence.group(2))["note"] == "```\n# out of the fence"
    config = json.loads((result.folder / "config.json").read_text())
    assert config["training"]["data"] == HOSTILE["training_data"]  # JSON keeps the value as it is


def test_front_matter_quotes_what_yaml_would_misread() -> None:
    values = ["mit", "yes", "null", "1.0", "a: b", "- x", "---", "#x", "x\ny: z", "é", "\u2028", "'\"\\", "[x]", ""]
    values += ["\U0001f600 emoji", "tab\there", "nul\x00", "del\x7f", "\ufeffbom", "&anchor", "*alias", "!tag", "%x"]
    for value in values:
        parsed = yaml.safe_load(front_matter(value, [value, "ecg"], [value])[4:-5])
        assert parsed["license"] == value and parsed["tags"] == [value, "ecg"] and parsed["datasets"] == [value]
    assert "license: mit\n" in front_matter("mit", ["ecg"])  # plain where plain is safe


def test_released_card_escapes_manifest_and_file_names(env, tmp_path: Path) -> None:
    entry = model_entry("small")
    hostile = type(entry)(
        name=entry.name,
        aliases=("s|x", "a`b", "c\nd"),
        embed_dim=entry.embed_dim,
        num_parameters=entry.num_parameters,
        license="mit\nextra_key: injected",
        citation={"bibtex": "@article{x}\n```\n# escaped", "weights_doi": "10.1/x | y"},
        extra={"license_provenance": "see\n---\nlicense: other"},
    )
    checkpoint = {"filename": "my|file`\n#.ckpt", "record": None, "md5": "0" * 32, "sha256": "1" * 64, "size": 5}
    card = released_model_card(hostile, repo_id="me/clef-small", sha256="2" * 64, size=10, checkpoint=checkpoint)
    meta, body = _split_card(card)
    assert meta["license"] == "mit\nextra_key: injected" and "extra_key" not in meta
    rows = _table_rows(body)
    assert all(len(_cells(row)) == 2 for row in rows), rows
    assert "#.ckpt" not in body.splitlines()
    fence = re.search(r"^(`{3,})bibtex\n(.*?)\n^\1$", body, re.S | re.M)
    assert fence is not None and fence.group(2) == "@article{x}\n```\n# escaped"
    assert "---" not in body.splitlines()


@pytest.mark.parametrize("repo_id", ['me/x"\nimport os', "me/x y", "no-namespace", "me/x/y", "me/x|y"])
def test_repo_ids_that_are_not_hub_ids_are_refused(env, mine: Path, tmp_path: Path, repo_id: str) -> None:
    with pytest.raises(ValueError, match="repository id"):
        publish_trained(mine, repo_id, license="mit", out_dir=tmp_path / "out", dry_run=True)
    with pytest.raises(ValueError, match="repository id"):
        trained_model_card(repo_id, "mit", dict(TRAINING), "0" * 64, 1, 256)
    assert not (tmp_path / "out").exists()


def test_a_released_file_without_training_metadata_is_still_refused(env, tmp_path: Path) -> None:
    released = tmp_path / "released.safetensors"
    state = {k: v.contiguous() for k, v in clef.build("small", seed=4).state_dict().items()}
    write_weights(EncoderWeights("small", state), released)
    with pytest.raises(clef.CheckpointError, match="no training metadata"):
        publish_trained(released, "me/x", license="mit", out_dir=tmp_path / "out", dry_run=True)


def test_published_config_keeps_numbers_as_numbers_and_the_tags_are_right(env, tmp_path: Path) -> None:
    """safetensors metadata is text; config.json gives the training steps and hyper-parameters as numbers, and
    the card tags the training method once (``training-clef``, not ``clef-clef``)."""
    weights = trained_weights(tmp_path / "mine.safetensors", seed=3, training_method="clef", training_steps="1500")
    result = publish_trained(weights, "me/clef-mine", license="mit", out_dir=tmp_path / "out", dry_run=True)
    config = json.loads((result.folder / "config.json").read_text())
    assert config["training"]["steps"] == 1500 and config["training"]["method"] == "clef"
    tags = yaml.safe_load((result.folder / "README.md").read_text().split("---")[1])["tags"]
    assert "training-clef" in tags and "clef-clef" not in tags and tags.count("clef") == 1
