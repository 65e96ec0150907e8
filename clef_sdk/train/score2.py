"""SCORE2 (ages 40-69) and SCORE2-OP (70+): 10-year cardiovascular risk in percent, vectorised.

The risk CLEF's pretraining loss weighs negatives with. Sources: SCORE2 working group, Eur Heart J
2021;42:2439-2454 (doi 10.1093/eurheartj/ehab309) and SCORE2-OP, Eur Heart J 2021;42:2455-2467
(doi 10.1093/eurheartj/ehab312). The coefficients below are the published ones (SCORE2 supplementary Tables 2-3,
SCORE2-OP supplementary Table 1 scales), cross-checked against the authors' Stata package and independent
implementations; ``coefficients="authors_unrounded"`` uses the authors' unrounded values instead. Every number
and the errata are documented in ``../shared/score2/README.md`` and ``docs/training.md``.

Policies (all documented, all explicit):
- age < 70 -> SCORE2, age >= 70 -> SCORE2-OP (the published switch; the score jumps at 70).
- Ages outside 40-89 (where the charts and calculators stop): ``out_of_range="nan"`` (default) gives NaN,
  ``"raise"`` raises, ``"clip"`` computes at 40 or 89, ``"extrapolate"`` applies the formulas unvalidated.
- Diabetes enters SCORE2-OP only; below 70 the published SCORE2 targets people without diabetes, so the flag is
  ignored there unless ``diabetes_terms_below_70=True`` asks for the derivation model's diabetes terms.
- Missing inputs (NaN/None) give NaN, unless ``impute=True``: then smoking is taken as "no", systolic blood
  pressure and cholesterols as the model's centring values (so they add nothing to the risk), diabetes as
  "no", and the fraction of the six inputs (age, sex, smoker, sbp, total_chol, hdl) that were missing comes
  back as the missing rate the loss uses. Age and sex are never imputed.
- Units: mmHg and mmol/L (`mg_dl_to_mmol_l` converts cholesterol); output in percent.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["CHOLESTEROL_MG_DL_PER_MMOL_L", "REGIONS", "mg_dl_to_mmol_l", "score2"]

REGIONS = ("low", "moderate", "high", "very_high")
CHOLESTEROL_MG_DL_PER_MMOL_L = 38.67  # the same factor for total and HDL cholesterol (not triglycerides' 88.57)
AGE_RANGE = (40.0, 89.0)
OP_FROM_AGE = 70.0
# exp(-exp(.)) of a probability clipped away from 0 and 1: extreme inputs must not give log(0)
_P_CLIP = 1e-12

OutOfRange = Literal["nan", "raise", "clip", "extrapolate"]
Coefficients = Literal["published", "authors_unrounded"]


@dataclass(frozen=True)
class _Model:
    """One sex's model: centring, log subdistribution hazard ratios, baseline survival, region scales."""

    age_centre: float
    age_scale: float  # cage = (age - age_centre) / age_scale
    sbp_centre: float
    sbp_scale: float
    chol_centre: float
    hdl_centre: float
    hdl_scale: float
    beta: dict[str, float]  # age, smoke, sbp, diabetes, chol, hdl and their "<name>_age" interactions
    mean_linear_predictor: float
    baseline_survival: float
    scales: dict[str, tuple[float, float]]  # region -> (scale1, scale2)


def _score2_model(sex: str, scales: dict[str, tuple[float, float]]) -> _Model:
    beta = {
        "male": dict(
            age=0.3742,
            smoke=0.6012,
            sbp=0.2777,
            diabetes=0.6457,
            chol=0.1458,
            hdl=-0.2698,
            smoke_age=-0.0755,
            sbp_age=-0.0255,
            diabetes_age=-0.0983,
            chol_age=-0.0281,
            hdl_age=0.0426,
        ),
        "female": dict(
            age=0.4648,
            smoke=0.7744,
            sbp=0.3131,
            diabetes=0.8096,
            chol=0.1002,
            hdl=-0.2606,
            smoke_age=-0.1088,
            sbp_age=-0.0277,
            diabetes_age=-0.1272,
            chol_age=-0.0226,
            hdl_age=0.0613,
        ),
    }[sex]
    survival = {"male": 0.9605, "female": 0.9776}[sex]
    return _Model(60.0, 5.0, 120.0, 20.0, 6.0, 1.3, 0.5, beta, 0.0, survival, scales)


def _score2_op_model(sex: str, unrounded: bool) -> _Model:
    if unrounded:  # the authors' Stata package (score2oprisk.ado), 10 digits
        beta = {
            "male": dict(
                age=0.0633767915,
                diabetes=0.4245248910,
                diabetes_age=-0.0173654217,
                smoke=0.3523957899,
                smoke_age=-0.0247205945,
                sbp=0.0094362177,
                sbp_age=-0.0004794522,
                chol=0.0849594156,
                chol_age=0.0073336663,
                hdl=-0.3563571842,
                hdl_age=0.0091317857,
            ),
            "female": dict(
                age=0.0789191229,
                diabetes=0.6009874438,
                diabetes_age=-0.0106909701,
                smoke=0.4921147010,
                smoke_age=-0.0255496313,
                sbp=0.0101993091,
                sbp_age=-0.0004404728,
                chol=0.0604939598,
                chol_age=-0.0009121461,
                hdl=-0.3040280248,
                hdl_age=0.0153779923,
            ),
        }[sex]
        mean = {"male": 0.09285225, "female": 0.2287676}[sex]
        survival = {"male": 1 - 0.24235298, "female": 1 - 0.19178759}[sex]
        scales = {
            "male": {
                "low": (-0.343484, 1.193038),
                "moderate": (0.005320, 1.248514),
                "high": (0.084305, 1.151902),
                "very_high": (0.045959, 0.703625),
            },
            "female": {
                "low": (-0.516054, 1.007238),
                "moderate": (-0.101044, 1.099621),
                "high": (0.375720, 1.089031),
                "very_high": (0.379293, 0.691530),
            },
        }[sex]
    else:  # published: 4-digit coefficients, 2-digit scales (Supp. Methods Table 1, not the Table 3 erratum)
        beta = {
            "male": dict(
                age=0.0634,
                diabetes=0.4245,
                diabetes_age=-0.0174,
                smoke=0.3524,
                smoke_age=-0.0247,
                sbp=0.0094,
                sbp_age=-0.0005,
                chol=0.0850,
                chol_age=0.0073,
                hdl=-0.3564,
                hdl_age=0.0091,
            ),
            "female": dict(
                age=0.0789,
                diabetes=0.6010,
                diabetes_age=-0.0107,
                smoke=0.4921,
                smoke_age=-0.0255,
                sbp=0.0102,
                sbp_age=-0.0004,
                chol=0.0605,
                chol_age=-0.0009,
                hdl=-0.3040,
                hdl_age=0.0154,
            ),
        }[sex]
        mean = {"male": 0.0929, "female": 0.229}[sex]
        survival = {"male": 0.7576, "female": 0.8082}[sex]
        scales = {
            "male": {"low": (-0.34, 1.19), "moderate": (0.01, 1.25), "high": (0.08, 1.15), "very_high": (0.05, 0.70)},
            "female": {
                "low": (-0.52, 1.01),
                "moderate": (-0.10, 1.10),
                "high": (0.38, 1.09),
                "very_high": (0.38, 0.69),
            },
        }[sex]
    return _Model(73.0, 1.0, 150.0, 1.0, 6.0, 1.4, 1.0, beta, mean, survival, scales)


_SCORE2_SCALES = {
    "published": {
        "male": {
            "low": (-0.5699, 0.7476),
            "moderate": (-0.1565, 0.8009),
            "high": (0.3207, 0.9360),
            "very_high": (0.5836, 0.8294),
        },
        "female": {
            "low": (-0.7380, 0.7019),
            "moderate": (-0.3143, 0.7701),
            "high": (0.5710, 0.9369),
            "very_high": (0.9412, 0.8329),
        },
    },
    "authors_unrounded": {
        "male": {
            "low": (-0.569857, 0.747593),
            "moderate": (-0.156481, 0.800869),
            "high": (0.320717, 0.936004),
            "very_high": (0.583578, 0.829368),
        },
        "female": {
            "low": (-0.737966, 0.701868),
            "moderate": (-0.314269, 0.770149),
            "high": (0.570963, 0.936893),
            "very_high": (0.941177, 0.832923),
        },
    },
}


def _models(coefficients: str) -> dict[tuple[str, bool], _Model]:
    """(sex, is_op) -> model."""
    if coefficients not in ("published", "authors_unrounded"):
        raise ValueError(f"coefficients must be 'published' or 'authors_unrounded', got {coefficients!r}")
    unrounded = coefficients == "authors_unrounded"
    return {
        (sex, op): _score2_op_model(sex, unrounded) if op else _score2_model(sex, _SCORE2_SCALES[coefficients][sex])
        for sex in ("male", "female")
        for op in (False, True)
    }


def mg_dl_to_mmol_l(cholesterol_mg_dl: object) -> np.ndarray:
    """Total or HDL cholesterol from mg/dL to mmol/L (divide by 38.67), e.g. for MIMIC-IV laboratory values."""
    return _as_float(cholesterol_mg_dl, "cholesterol_mg_dl") / CHOLESTEROL_MG_DL_PER_MMOL_L


def _as_float(values: object, name: str) -> np.ndarray:
    """A float64 array; None, pd.NA and empty strings become NaN."""
    if hasattr(values, "to_numpy"):  # pandas Series / Index
        values = values.to_numpy(dtype=object)
    array = np.asarray(values, dtype=object)
    flat = [np.nan if v is None or (isinstance(v, str) and not v.strip()) or _is_na(v) else v for v in array.ravel()]
    try:
        return np.asarray(flat, dtype=np.float64).reshape(array.shape)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be numbers (NaN or None for missing), got {array.ravel()[:3].tolist()}..."
        ) from None


def _is_na(value: object) -> bool:
    try:
        return bool(value != value) or type(value).__name__ in ("NAType", "NaTType")  # NaN, pd.NA, pd.NaT
    except (TypeError, ValueError):
        return type(value).__name__ in ("NAType", "NaTType")


_SEX_CODES = {"male": 1.0, "m": 1.0, "man": 1.0, "1": 1.0, "female": 0.0, "f": 0.0, "woman": 0.0, "0": 0.0}


def _sex_as_male(values: object) -> np.ndarray:
    """1.0 for male, 0.0 for female, NaN for missing; accepts 'male'/'female'/'M'/'F' and 1/0 (1 = male)."""
    if hasattr(values, "to_numpy"):
        values = values.to_numpy(dtype=object)
    array = np.asarray(values, dtype=object)
    out = np.empty(array.shape)
    for index, value in np.ndenumerate(array):
        if value is None or _is_na(value) or (isinstance(value, str) and not value.strip()):
            out[index] = np.nan
        elif isinstance(value, str) and value.strip().lower() in _SEX_CODES:
            out[index] = _SEX_CODES[value.strip().lower()]
        elif not isinstance(value, str) and value in (0, 1):
            out[index] = float(value)
        else:
            raise ValueError(f"sex must be 'male'/'female' (or 'M'/'F', 1/0 with 1 = male), got {value!r}")
    return out


def _regions(region: str | Sequence[str] | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if hasattr(region, "to_numpy"):
        region = region.to_numpy(dtype=object)
    array = np.broadcast_to(np.asarray(region, dtype=object), shape)
    out = np.empty(shape, dtype=object)
    for index, value in np.ndenumerate(array):
        name = str(value).strip().lower().replace(" ", "_").replace("-", "_")
        if name not in REGIONS:
            raise ValueError(
                f"region must be one of {REGIONS} (the ESC 2021 risk regions; see docs/training.md for the "
                f"countries in each), got {value!r}"
            )
        out[index] = name
    return out


def score2(
    age: object,
    sex: object,
    smoker: object,
    sbp: object,
    total_chol: object,
    hdl: object,
    *,
    region: str | Sequence[str] | np.ndarray,
    diabetes: object = None,
    impute: bool = False,
    out_of_range: OutOfRange = "nan",
    coefficients: Coefficients = "published",
    diabetes_terms_below_70: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """10-year risk of fatal and non-fatal cardiovascular disease in percent (SCORE2 below 70, SCORE2-OP from 70).

    Args:
        age: years; sex: "male"/"female" (or "M"/"F", 1/0 with 1 = male); smoker: current smoker, 0/1 or bool;
            sbp: systolic blood pressure in mmHg; total_chol, hdl: mmol/L. Scalars, numpy arrays or pandas
            columns, broadcast together; NaN or None marks a missing value.
        region: the ESC risk region, ``"low"``, ``"moderate"``, ``"high"`` or ``"very_high"``, for everyone or per
            subject.
        diabetes: history of diabetes (used from age 70; see the module docstring); ``None`` means "no".
        impute: fill missing smoker, sbp, cholesterols and diabetes (module docstring) and also return the
            missing rate.
        out_of_range: ages outside 40-89: ``"nan"``, ``"raise"``, ``"clip"`` or ``"extrapolate"``.
        coefficients: ``"published"`` (default; reproduces the published worked examples) or
            ``"authors_unrounded"``.
        diabetes_terms_below_70: apply the SCORE2 derivation model's diabetes terms below 70.

    Returns:
        risk in percent, float64 with the broadcast shape (NaN where it cannot be computed); with
        ``impute=True``, ``(risk, missing_rate)`` where missing_rate in [0, 1] is the fraction of the six inputs
        that were missing.
    """
    if out_of_range not in ("nan", "raise", "clip", "extrapolate"):
        raise ValueError(f"out_of_range must be 'nan', 'raise', 'clip' or 'extrapolate', got {out_of_range!r}")
    models = _models(coefficients)
    names = ("age", "sex", "smoker", "sbp", "total_chol", "hdl")
    columns = [_as_float(age, "age"), _sex_as_male(sex)] + [
        _as_float(v, n) for v, n in zip((smoker, sbp, total_chol, hdl), names[2:])
    ]
    diabetes_values = _as_float(diabetes if diabetes is not None else 0.0, "diabetes")
    age_v, male, smoke, sbp_v, chol, hdl_v, diabetes_values = np.broadcast_arrays(*columns, diabetes_values)
    shape = age_v.shape
    regions = _regions(region, shape)
    missing = np.stack([np.isnan(c) for c in (age_v, male, smoke, sbp_v, chol, hdl_v)])
    missing_rate = missing.mean(axis=0)
    _check_plausible(smoke, sbp_v, chol, hdl_v, diabetes_values)

    age_used = age_v.copy()
    outside = ~np.isnan(age_v) & ((age_v < AGE_RANGE[0]) | (age_v > AGE_RANGE[1]))
    if outside.any():
        if out_of_range == "raise":
            first = np.argwhere(outside)[0]
            raise ValueError(
                f"{int(outside.sum())} age(s) outside SCORE2's validated {AGE_RANGE[0]:g}-{AGE_RANGE[1]:g} years "
                f"(first: {age_v[tuple(first)]:g} at index {tuple(int(i) for i in first)}); choose out_of_range="
                "'nan', 'clip' or 'extrapolate'"
            )
        if out_of_range == "clip":
            age_used = np.clip(age_v, *AGE_RANGE)
    is_op = age_used >= OP_FROM_AGE
    if impute:
        smoke = np.where(np.isnan(smoke), 0.0, smoke)
        diabetes_values = np.where(np.isnan(diabetes_values), 0.0, diabetes_values)
    if not diabetes_terms_below_70 and np.any((diabetes_values == 1) & ~is_op):
        warnings.warn(
            "SCORE2 (ages 40-69) is not intended for people with diabetes (ESC uses SCORE2-Diabetes); the "
            "diabetes flag is ignored below 70 unless diabetes_terms_below_70=True",
            UserWarning,
            stacklevel=2,
        )

    def fill(values: np.ndarray, centre: float) -> np.ndarray:
        return np.where(np.isnan(values), centre, values) if impute else values

    risk = np.full(shape, np.nan)
    for (sex_name, op), model in models.items():
        rows = (male == (1.0 if sex_name == "male" else 0.0)) & (is_op == op) & ~np.isnan(age_used)
        if not rows.any():
            continue
        use_diabetes = op or diabetes_terms_below_70
        risk[rows] = _risk(
            model,
            age_used[rows],
            smoke[rows],
            fill(sbp_v[rows], model.sbp_centre),
            fill(chol[rows], model.chol_centre),
            fill(hdl_v[rows], model.hdl_centre),
            diabetes_values[rows] if use_diabetes else np.zeros(int(rows.sum())),
            regions[rows],
        )
    if out_of_range == "nan":
        risk[outside] = np.nan
    return (risk, missing_rate) if impute else risk


def _check_plausible(
    smoke: np.ndarray, sbp: np.ndarray, chol: np.ndarray, hdl: np.ndarray, diabetes: np.ndarray
) -> None:
    problems = []
    for name, values in (("smoker", smoke), ("diabetes", diabetes)):
        bad = ~np.isnan(values) & (values != 0) & (values != 1)
        if bad.any():
            problems.append(f"{name} must be 0/1 or True/False ({int(bad.sum())} other value(s))")
    for name, values, unit in (("sbp", sbp, "mmHg"), ("total_chol", chol, "mmol/L"), ("hdl", hdl, "mmol/L")):
        bad = (~np.isnan(values) & ~(values > 0)) | np.isinf(values)
        if bad.any():
            problems.append(f"{name} must be a positive, finite value in {unit} ({int(bad.sum())} not)")
    inverted = hdl >= chol
    if inverted.any():
        problems.append(
            f"hdl must be below total_chol ({int(inverted.sum())} row(s) are not); are the columns swapped, or "
            "the units mg/dL (convert with mg_dl_to_mmol_l)?"
        )
    if np.nanmax(chol, initial=0.0) > 30:
        problems.append("total_chol above 30 mmol/L: the values look like mg/dL; convert them with mg_dl_to_mmol_l")
    if problems:
        raise ValueError("; ".join(problems))


def _risk(
    model: _Model,
    age: np.ndarray,
    smoke: np.ndarray,
    sbp: np.ndarray,
    chol: np.ndarray,
    hdl: np.ndarray,
    diabetes: np.ndarray,
    regions: np.ndarray,
) -> np.ndarray:
    b = model.beta
    cage = (age - model.age_centre) / model.age_scale
    csbp = (sbp - model.sbp_centre) / model.sbp_scale
    cchol = chol - model.chol_centre
    chdl = (hdl - model.hdl_centre) / model.hdl_scale
    linear = (
        b["age"] * cage
        + b["smoke"] * smoke
        + b["sbp"] * csbp
        + b["diabetes"] * diabetes
        + b["chol"] * cchol
        + b["hdl"] * chdl
        + b["smoke_age"] * smoke * cage
        + b["sbp_age"] * csbp * cage
        + b["diabetes_age"] * diabetes * cage
        + b["chol_age"] * cchol * cage
        + b["hdl_age"] * chdl * cage
        - model.mean_linear_predictor
    )
    uncalibrated = np.clip(1 - model.baseline_survival ** np.exp(linear), _P_CLIP, 1 - _P_CLIP)
    scale1 = np.array([model.scales[r][0] for r in regions])
    scale2 = np.array([model.scales[r][1] for r in regions])
    calibrated = 1 - np.exp(-np.exp(scale1 + scale2 * np.log(-np.log(1 - uncalibrated))))
    return 100 * calibrated
