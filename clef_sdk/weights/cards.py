"""Model cards (``README.md`` with Hub YAML metadata) for the weights clef-sdk publishes.

`released_model_card` describes the authors' released CLEF models (the paper, sizes, preprocessing,
intended use and limitations); `trained_model_card` a model trained with ``clef train`` (its training facts,
read from the ``training_*`` metadata of the file, and how to load it by ``hf-hub:`` id); `task_model_card` a
task model (its labels in output order, task, thresholds, training facts and metrics, how to load and predict,
intended use and limitations). Every value that comes from a file is escaped for the place it is written in.
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
from .hf_hub import TASK_MODEL_FILENAME, WEIGHTS_FILENAME, check_repo_id
from .registry import ModelEntry

__all__ = [
    "CODE_URL",
    "PAPER_URL",
    "code_span",
    "fenced_block",
    "front_matter",
    "released_model_card",
    "table_cell",
    "task_model_card",
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


def front_matter(
    license_id: str,
    tags: Sequence[str],
    datasets: Sequence[str] = (),
    pipeline_tag: str | None = "feature-extraction",
) -> str:
    """The Hub's YAML header of a model card: library, license, tags, datasets and the pipeline tag (``None``:
    none; each value quoted where YAML could read it otherwise: `yaml_scalar`)."""
    lines = [
        "---",
        f"library_name: {yaml_scalar(LIBRARY_NAME)}",
        f"license: {yaml_scalar(license_id)}",
        "tags:",
        *(f"- {yaml_scalar(tag)}" for tag in tags),
    ]
    if datasets:
        lines += ["datasets:", *(f"- {yaml_scalar(name)}" for name in datasets)]
    if pipeline_tag is not None:
        lines.append(f"pipeline_tag: {yaml_scalar(pipeline_tag)}")
    return "\n".join([*lines, "---"]) + "\n"


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


def _number_or_text(text: str) -> Any:
    """A metadata value (safetensors stores text only) as the number it spells, else the text."""
    for kind in (int, float):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            continue
        return value if kind is int or value == value else text  # NaN stays text
    return text


def training_facts(metadata: dict[str, str]) -> dict[str, Any]:
    """The ``training_*`` metadata of a weights file, numbers as numbers and the hyper-parameters as JSON."""
    facts: dict[str, Any] = {
        key[len("training_") :]: _number_or_text(value)
        for key, value in metadata.items()
        if key.startswith("training_")
    }
    if "hparams" in facts:
        try:
            facts["hparams"] = json.loads(str(facts["hparams"]))
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
        "training-" + (re.sub(r"[^a-z0-9]+", "-", method.lower()).strip("-") or "unknown"),  # not "clef-clef"
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


# --------------------------------------------------------------------------------------------------------------
# Task models

_TASK_WORDS = {
    "binary": "binary classification",
    "multiclass": "multiclass classification",
    "multilabel": "multilabel classification",
    "regression": "regression",
}
_MAX_METRICS = 60


def _number(value: object) -> str:
    """A metric or fact as short text: floats to 4 significant digits, everything else as JSON."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _flat(prefix: str, value: object) -> list[tuple[str, object]]:
    """``value``'s leaves as ``("a.b", leaf)`` pairs (nested metrics such as ``{"val": {"auroc": 0.9}}``)."""
    if isinstance(value, dict) and value:
        return [pair for key, item in value.items() for pair in _flat(f"{prefix}.{key}" if prefix else str(key), item)]
    return [(prefix, value)]


def _label_rows(config: dict[str, Any]) -> tuple[str, str]:
    """The labels table (column, label, decision) and one paragraph on how ``predict`` decides."""
    task, classes, thresholds = config["task"], config["classes"], config["thresholds"]
    if task == "regression":
        mean, std = config["target_scaling"]["mean"], config["target_scaling"]["std"]
        table = (
            "| output | target | target scaling |\n|---|---|---|\n"
            f"| value | {table_cell(classes[0])} | mean {mean:g}, std {std:g} |\n"
        )
        rule = (
            f"`model.predict(signal, fs)` returns {code_span(classes[0])} in the target's units (the head predicts "
            f"`(y - {mean:g}) / {std:g}`, which clef-sdk undoes). There are no probabilities."
        )
        return table, rule
    header = "| column | label | decision |\n|---|---|---|\n"
    if task == "binary":
        decisions = ["negative", f"positive: predicted when p >= {thresholds[0]:g}"]
        rule = (
            f"Column 0 is `1 - p`, column 1 is `p`, the probability of {code_span(classes[1])}. "
            f"`model.predict(signal, fs)` returns {code_span(classes[1])} where `p >= {thresholds[0]:g}`, else "
            f"{code_span(classes[0])}."
        )
    elif task == "multiclass":
        decisions = ["softmax; predicted when largest"] * len(classes)
        rule = (
            "The columns are a softmax (they sum to 1); `model.predict(signal, fs)` returns the label of the largest "
            "probability."
        )
    else:
        decisions = [f"sigmoid; positive when p >= {value:g}" for value in thresholds]
        rule = (
            "Each column is an independent probability (a sigmoid per label; a recording may have several labels "
            "or none); `model.predict(signal, fs)` returns 0/1 per label, 1 where the probability reaches the "
            "label's threshold."
        )
    rows = "".join(
        f"| {index} | {table_cell(label)} | {decision} |\n"
        for index, (label, decision) in enumerate(zip(classes, decisions))
    )
    return header + rows, rule


def _training_section(training: dict[str, Any]) -> str:
    if not training:
        return "No training facts were recorded with this model.\n"
    metrics = training.get("metrics")
    facts = {key: value for key, value in training.items() if key != "metrics"}
    parts = []
    if facts:
        rows = [(key, value) for key, value in facts.items() if not isinstance(value, dict)]
        if rows:
            parts.append(
                "| | |\n|---|---|\n"
                + "".join(f"| {table_cell(key)} | {table_cell(_number(value))} |\n" for key, value in rows)
            )
    if isinstance(metrics, dict) and metrics:
        pairs = _flat("", metrics)
        shown = pairs[:_MAX_METRICS]
        more = f"\n({len(pairs) - len(shown)} more in config.json)\n" if len(pairs) > len(shown) else ""
        parts.append(
            "Metrics recorded with the model (as reported by whoever trained it; not checked by clef-sdk):\n\n"
            "| metric | value |\n|---|---|\n"
            + "".join(f"| {table_cell(key)} | {table_cell(_number(value))} |\n" for key, value in shown)
            + more
        )
    parts.append(
        "All training facts, as saved in the file:\n\n"
        + fenced_block(json.dumps(training, indent=2, sort_keys=True), "json")
        + "\n"
    )
    return "\n".join(parts)


def task_model_card(config: dict[str, Any]) -> str:
    """The README.md of a task model's Hub repository, from the ``config.json`` that ``clef publish`` writes for
    it ([`clef_sdk.weights.publish.build_task_folder`][clef_sdk.weights.publish.build_task_folder]): the labels in output order (column ``i`` of
    ``predict_proba`` is ``classes[i]``), the task, thresholds or target scaling, the encoder, the file's sha256, the
    training facts (a metrics table when ``training["metrics"]`` is a dict), how to load and predict, intended use
    and limitations."""
    repo_id = check_repo_id(config["repo_id"])
    task, classes, size = config["task"], config["classes"], config["size"]
    weights = config["weights"]
    training = config.get("training") or {}
    tags = [
        "ecg",
        "electrocardiogram",
        "single-lead-ecg",
        "clef",
        "clef-task-model",
        _TASK_WORDS[task].replace(" ", "-"),
        "safetensors",
    ]
    front = front_matter(config["license"], tags, pipeline_tag=None) + "\n"
    labels_table, rule = _label_rows(config)
    name = repo_id.split("/")[-1]
    spec = f"hf-hub:{repo_id}"
    if task == "regression":
        predict_lines = (
            f"values = model.predict(signal, fs)           # {json.dumps(classes[0])} in the target's units\n"
            "per_window = model.predict_windows(signal, fs)  # one value per 10 s window"
        )
    else:
        predict_lines = (
            "labels = model.predict(signal, fs)            # the decision (see Labels)\n"
            "proba = model.predict_proba(signal, fs)       # column i is the probability of model.classes_[i]\n"
            "per_window = model.predict_windows(signal, fs)  # the same, per 10 s window\n"
            f"print(model.classes_)                         # {json.dumps(classes)}"
        )
    usage = (
        "import clef_sdk as clef\n\n"
        f'model = clef.load_task_model("{spec}")  # pin a commit: "{spec}@COMMIT"\n'
        "# signal: one ECG lead, a 1-D array of at least 10 s; fs: its sampling rate in Hz\n" + predict_lines
    )
    output = "values `(batch,)`" if task == "regression" else f"probabilities `(batch, {len(classes)})`"
    thresholds = config["thresholds"]
    scaling = config["target_scaling"]
    rows = [
        ("task", _TASK_WORDS[task]),
        ("labels", ", ".join(str(label) for label in classes)),
        ("thresholds", ", ".join(f"{value:g}" for value in thresholds) if thresholds else "none (argmax or values)"),
        ("target scaling", f"mean {scaling['mean']:g}, std {scaling['std']:g}" if scaling else "none"),
        ("pooling", f"{config['pooling']} of the window embeddings over a recording's 10 s windows"),
        ("encoder", f"CLEF-{size}, {config['embed_dim']}-dimensional embeddings ({config.get('encoder_name', '?')})"),
        ("format", f"{config['format']} v{config['format_version']}"),
    ]
    file_row = (
        f"| file | {code_span(TASK_MODEL_FILENAME, in_table=True)}: {int(weights['size']):,} bytes, sha256 "
        f"{code_span(weights['sha256'], in_table=True)} |\n"
    )
    facts_table = "| | |\n|---|---|\n" + "".join(f"| {key} | {table_cell(value)} |\n" for key, value in rows) + file_row
    data = training.get("data")
    data_text = table_cell(_number(data)) if data else "the data described under Training"
    return (
        front
        + f"""# {name}

A {_TASK_WORDS[task]} model for single-lead ECG made with [clef-sdk](https://pypi.org/project/clef-sdk/): a
CLEF-{size} encoder ({PAPER_URL}) that embeds each 10 s window, {config["pooling"]} pooling over a recording's
windows and a linear head, in one file that knows its task, labels and thresholds (`clef.TaskModel`).

## Labels

{rule}

{labels_table}
## Use it

```bash
pip install clef-sdk
```

{fenced_block(usage, "python")}

Without `@COMMIT` the latest commit of `main` is used (`clef info {spec}` shows which); clef-sdk checks the
file against the sha256 the Hub reports, caches it (later loads work offline) and refuses a file whose
preprocessing contract it does not implement. Any sampling rate from 50 Hz to 10 kHz, any amplitude unit: the model
resamples and filters as it was trained.

For an app without PyTorch, export it to ONNX: `clef.export_onnx(model, "model.onnx", fs=360)` takes raw 10 s
windows at 360 Hz, `(batch, n_windows, 3600)` float32 (each row a recording's consecutive windows, pooled inside),
and returns {output}, column i for label i as above.

## Model

{facts_table}
## Training

{_training_section(training)}
## Preprocessing

Inputs are preprocessed exactly as in CLEF pretraining (clef-sdk does it for you): resampled to 500 Hz, cut into
10 s windows, band-passed (Butterworth order 5, 0.67-40 Hz, zero-phase) and z-scored per window.

## Intended use

Research on single-lead ECG: predicting the labels above ({_TASK_WORDS[task]}) for recordings like those it was
trained on ({data_text}), as a baseline, a feature for further analysis, or a starting point for fine-tuning.

## Limitations

- Its outputs reflect the data it was trained on; performance on other populations, devices, leads and recording
  conditions must be validated before relying on it. Reported metrics, if any, are the trainer's, on their data.
- Probabilities are not calibrated unless stated above, and the thresholds were chosen for the training data's
  prevalence: tune them (`model.thresholds = ...`) on data from your setting.
- Windows shorter than 10 s are dropped by default; very noisy or flat windows give uninformative outputs
  (`quality="drop"` pools only windows of usable signal quality).
- This is a research model, not a medical device: it has not been cleared or approved by any regulator and must
  not be used for diagnosis, treatment or any clinical decision.

Published with clef-sdk {__version__}.
"""
    )
