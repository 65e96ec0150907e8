"""Model cards (``README.md`` with Hub YAML metadata) for the weights clef-sdk publishes.

:func:`released_model_card` describes the authors' released CLEF models (the paper, sizes, preprocessing,
intended use and limitations); :func:`trained_model_card` a model trained with ``clef train`` (its training facts,
read from the ``training_*`` metadata of the file, and how to load it by ``hf-hub:`` id).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..constants import LIBRARY_NAME, PREPROCESSING
from ..models import ARCHITECTURES, KERNEL_SIZE
from .format import FORMAT_NAME, FORMAT_VERSION
from .hf_hub import WEIGHTS_FILENAME, check_repo_id
from .registry import ModelEntry

__all__ = [
    "CODE_URL",
    "PAPER_URL",
    "code_span",
    "fenced_block",
    "front_matter",
    "released_model_card",
    "table_cell",
    "trained_model_card",
    "training_facts",
    "yaml_scalar",
]

PAPER_URL = "https://arxiv.org/abs/2512.02180"
CODE_URL = "https://github.com/Nokia-Bell-Labs/ecg-foundation-model"
TAGS = (
    "ecg",
    "electrocardiogram",
    "single-lead-ecg",
    "biosignals",
    "foundation-model",
    "self-supervised-learning",
    "feature-extraction",
    "clef",
    "safetensors",
    "arxiv:2512.02180",
)
DATASETS = ("mimic-iv-ecg",)
# A plain YAML scalar that can only be read as this string (no indicator, space or number-like start).
_PLAIN_YAML = re.compile(r"[A-Za-z][A-Za-z0-9._+-]*(:[A-Za-z0-9][A-Za-z0-9._+-]*)?")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf"}
# Line breaks (for Markdown, YAML or Unicode) and other control characters: never inside one table row.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MARKDOWN_ACTIVE = re.compile(r"[\\`*_\[\]<>|]")


def yaml_scalar(value: object) -> str:
    """``value`` as a YAML scalar that reads back as the same string: plain where that is unambiguous (``mit``,
    ``arxiv:2512.02180``), else double-quoted with every character outside printable ASCII escaped (``\\n``,
    ``\\u2028``, ``\\U0001f600``), so that no newline, ``---``, ``:`` or YAML keyword in a value can end the front
    matter or add keys to it."""
    text = str(value)
    if _PLAIN_YAML.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return '"' + "".join(_yaml_escape(character) for character in text) + '"'


def _yaml_escape(character: str) -> str:
    code = ord(character)
    if character in '"\\':
        return "\\" + character
    if 0x20 <= code <= 0x7E:
        return character
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def table_cell(value: object) -> str:
    """``value`` as the text of one Markdown (GFM) table cell: one line; ``|``, ``\\`` and the characters that
    would start emphasis, code, links or HTML backslash-escaped; ``&`` as an entity. It reads as the value."""
    text = _one_line(value)
    return _MARKDOWN_ACTIVE.sub(lambda match: "\\" + match.group(0), text).replace("&", "&amp;")


def code_span(value: object, *, in_table: bool = False) -> str:
    """``value`` as inline code on one line: delimited by more backticks than it holds; ``|`` escaped in a table."""
    text = _one_line(value)
    if in_table:
        text = text.replace("|", "\\|")
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    padded = f" {text} " if run or text.startswith(" ") or text.endswith(" ") else text
    return f"{fence}{padded}{fence}"


def fenced_block(text: str, language: str = "") -> str:
    """``text`` in a fenced code block whose fence is longer than any run of backticks in it (so it cannot close
    early)."""
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, run + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _one_line(value: object) -> str:
    """``str(value)`` with every line break and control character as a space."""
    return _CONTROL.sub(" ", str(value)).strip()


def front_matter(license_id: str, tags: Sequence[str], datasets: Sequence[str] = ()) -> str:
    """The Hub's YAML header of a model card: library, license, tags, datasets and the pipeline tag (each value
    quoted where YAML could read it otherwise: :func:`yaml_scalar`)."""
    lines = [
        "---",
        f"library_name: {yaml_scalar(LIBRARY_NAME)}",
        f"license: {yaml_scalar(license_id)}",
        "tags:",
        *(f"- {yaml_scalar(tag)}" for tag in tags),
    ]
    if datasets:
        lines += ["datasets:", *(f"- {yaml_scalar(name)}" for name in datasets)]
    return "\n".join([*lines, "pipeline_tag: feature-extraction", "---"]) + "\n"


def released_model_card(entry: ModelEntry, *, repo_id: str, sha256: str, size: int, checkpoint: dict[str, Any]) -> str:
    """The Hub model card (README.md) for ``entry``'s weights."""
    arch = ARCHITECTURES[entry.name]
    title = f"CLEF-{entry.name.capitalize()}"
    license_id = entry.license or "other"
    citation = entry.citation or {}
    bibtex = citation.get("bibtex", "")
    forward_params = arch.num_parameters(include_batchnorm=False)
    band = PREPROCESSING["bandpass"]
    norm = PREPROCESSING["normalization"]
    assert isinstance(band, dict) and isinstance(norm, dict)
    check_repo_id(repo_id)
    filename = code_span(checkpoint["filename"], in_table=True)
    md5, sha = code_span(checkpoint["md5"], in_table=True), code_span(checkpoint["sha256"], in_table=True)
    source_line = (
        f"Zenodo record {table_cell(checkpoint['record'])}, {filename} (md5 {md5}, sha256 {sha}, "
        f"{checkpoint['size']:,} bytes)"
        if checkpoint.get("record")
        else f"{filename} (md5 {md5}, sha256 {sha})"
    )
    license_note = entry.extra.get("license_provenance")
    aliases = ", ".join(code_span(a, in_table=True) for a in entry.aliases) or "none"
    front = front_matter(license_id, TAGS, DATASETS)
    body = f"""
# {title}: single-lead ECG foundation model (clef-sdk weights)

{title} from *CLEF: Clinically-Guided Contrastive Learning for Electrocardiogram Foundation Models*
(Shu, Charlton, Kawsar, Hernesniemi, Malekzadeh; [arXiv:2512.02180]({PAPER_URL}); Nokia Bell Labs), converted
from the authors' released checkpoint to safetensors for the `clef-sdk` Python package. It turns any single-lead
ECG into {entry.embed_dim}-dimensional embeddings for downstream models (linear probes, retrieval, clustering).

| | |
|---|---|
| model | {title} (`{entry.name}`; aliases: {aliases}) |
| architecture | 1-D ResNeXt with squeeze-and-excitation (Net1D): base width {arch.base_filters}, stages {list(arch.filter_list)}, blocks {list(arch.blocks_per_stage)}, kernel {KERNEL_SIZE} |
| parameters | {entry.num_parameters:,} as released ({forward_params:,} used in the forward pass: the BatchNorm tensors the released models never apply are dropped) |
| embedding | {entry.embed_dim} float32 per 10 s window (time mean of the last stage) |
| file | `{WEIGHTS_FILENAME}`: {size:,} bytes, sha256 `{sha256}`, format `{FORMAT_NAME}` v{FORMAT_VERSION} |
| converted from | {source_line} |
| pretraining data | MIMIC-IV-ECG (PhysioNet, credentialed access; not a Hub dataset): 12-lead ECGs of about 161K patients, one lead sampled per example |
| license | {code_span(license_id, in_table=True)} |

## Usage

```bash
pip install clef-sdk
```

```python
import clef_sdk as clef

embedding = clef.embed(ecg, fs=360, model="{entry.name}")              # ({entry.embed_dim},) float32, mean over 10 s windows
windows = clef.embed(ecg, fs=360, model="{entry.name}", pooling=None)  # (n_windows, {entry.embed_dim})
encoder = clef.load("{entry.name}")                                    # a torch.nn.Module
```

clef-sdk downloads this file at a pinned commit, checks its sha256 before first use and caches it; `clef download
{entry.name}` fetches it ahead of time (e.g. for offline machines).

## Preprocessing (required)

The embeddings are only meaningful on input preprocessed exactly as in pretraining; `clef.embed` does this:

1. resample the whole recording to {PREPROCESSING["target_fs_hz"]} Hz ({PREPROCESSING["resampling"]});
2. cut consecutive windows of {PREPROCESSING["window_samples"]} samples (10 s) from sample 0;
3. per window, fill NaNs ({PREPROCESSING["nan"]});
4. band-pass: Butterworth order {band["order"]}, {band["low_hz"]}-{band["high_hz"]} Hz, transfer-function (b/a) form, applied forwards and backwards ({band["application"]});
5. z-score: `(y - mean) / (std + {norm["eps"]:g})` with the {norm["std"]} standard deviation.

## Intended use

Research on single-lead ECG: feature extraction for classification and regression probes, representation
analysis, and benchmarking, on any lead and device (the models were pretrained on single leads drawn from 12-lead
recordings). Inputs of any length of at least 10 s, any sampling rate from 50 Hz to 10 kHz, any amplitude unit.

## Limitations

- Pretrained on one hospital system's population (MIMIC-IV-ECG, Boston, USA); performance on other populations,
  devices and recording conditions, in particular ambulatory and consumer wearables, must be validated.
- The embeddings are not calibrated risk scores or diagnoses; downstream models need labelled data and
  validation. Pretraining used SCORE2 cardiovascular risk derived from metadata, which carries the biases of
  those scores and of missing metadata.
- Windows shorter than 10 s are dropped by default (`tail="pad"` pads them); very noisy or flat windows give
  uninformative embeddings.

## Not a medical device

This model and clef-sdk are research tools. They are not medical devices, have not been cleared or approved by
any regulator, and must not be used for diagnosis, treatment or any clinical decision.

## License

{code_span(license_id)}.{" " + table_cell(license_note) if license_note else ""}

## Citation

{fenced_block(str(bibtex), "bibtex")}

Original code and weights: {CODE_URL} (Zenodo DOI {table_cell(citation.get("weights_doi", "10.5281/zenodo.17572734"))}).
Converted with clef-sdk {__version__}.
"""
    return front + body


def training_facts(metadata: dict[str, str]) -> dict[str, Any]:
    facts: dict[str, Any] = {
        key[len("training_") :]: value for key, value in metadata.items() if key.startswith("training_")
    }
    if "hparams" in facts:
        try:
            facts["hparams"] = json.loads(facts["hparams"])
        except (ValueError, RecursionError):
            pass  # kept as the text it is
    return facts


def trained_model_card(
    repo_id: str, license: str, metadata: dict[str, str], sha256: str, size: int, embed_dim: int
) -> str:
    """The README.md of a trained model's Hub repository."""
    check_repo_id(repo_id)
    facts = training_facts(metadata)
    method = str(facts.get("method", "unknown"))
    tags = [
        "ecg",
        "electrocardiogram",
        "single-lead-ecg",
        "clef",
        "feature-extraction",
        "safetensors",
        "clef-" + (re.sub(r"[^a-z0-9]+", "-", method.lower()).strip("-") or "unknown"),
    ]
    front = front_matter(license, tags) + "\n"
    rows = [
        ("size", metadata.get("size", "?")),
        ("embedding dimension", str(embed_dim)),
        ("method", method),
        ("steps", facts.get("steps", "?")),
        ("epochs", facts.get("epochs", "?")),
        ("data", facts.get("data") or "not described"),
        ("seed", facts.get("seed") or "not recorded"),
        ("trained from", metadata.get("source_file", "?")),
        ("weights sha256", sha256),
        ("weights size", f"{size:,} bytes"),
    ]
    table = "| | |\n|---|---|\n" + "".join(f"| {key} | {table_cell(value)} |\n" for key, value in rows)
    hparams = facts.get("hparams")
    hparams_block = (
        f"\n{fenced_block(json.dumps(hparams, indent=2, sort_keys=True), 'json')}\n"
        if isinstance(hparams, dict)
        else ""
    )
    name = repo_id.split("/")[-1]
    return (
        front
        + f"""# {name}

A CLEF single-lead ECG encoder pretrained with [clef-sdk](https://pypi.org/project/clef-sdk/)
(`clef train`, method {code_span(method)}), following CLEF ({PAPER_URL}). It maps 10 s windows of one ECG lead to
{embed_dim}-dimensional embeddings.

## Use it

```python
import clef_sdk as clef

encoder = clef.load("hf-hub:{repo_id}@COMMIT")                  # pin the commit for reproducible results
embedding = clef.embed(signal, fs, model="hf-hub:{repo_id}@COMMIT")
```

```bash
clef embed recording.hea --model hf-hub:{repo_id}@COMMIT -o embedding.npy
```

Replace COMMIT with a commit of this repository (without `@COMMIT` the latest commit of `main` is used; `clef info
hf-hub:{repo_id}` shows which). clef-sdk checks the file against the sha256 the Hub reports and refuses a file
whose preprocessing contract it does not implement.

## Training

{table}{hparams_block}
## Preprocessing

Inputs are preprocessed exactly as in CLEF pretraining (clef-sdk does it for you): resampled to 500 Hz, cut into
10 s windows, band-passed (Butterworth order 5, 0.67-40 Hz, zero-phase) and z-scored per window.

```json
{json.dumps(PREPROCESSING, indent=2, sort_keys=True)}
```

## Limitations

This is a research model, not a medical device. Its embeddings reflect the data it was trained on ("data" above);
check them on your own population before relying on them.

Published with clef-sdk {__version__}.
"""
    )
