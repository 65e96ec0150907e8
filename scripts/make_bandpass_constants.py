"""Regenerate clef_sdk/_bandpass_constants.py: the exact b/a band-pass as a small, well-conditioned state.

    python scripts/make_bandpass_constants.py            # rewrite the module
    python scripts/make_bandpass_constants.py --check    # exit 1 if the module differs (a test runs this)

Everything is computed with Python's ``decimal`` at 160 significant digits from the float64 coefficients
``BUTTER_B`` / ``BUTTER_A`` hard-coded in ``clef_sdk/filters.py`` (taken as exact rationals), then rounded once
to float64. Decimal arithmetic is the same on every machine, so the output is too (byte for byte). Runs in ~2 s.

The mathematics (h = impulse response of b/a, ``h[k]`` for k >= 0):
- ``g_s = (h[s], h[s+1], ...)`` for s >= 1 spans a 10-dimensional space S (for k >= 1, h is a sum of the 10
  poles' modes); it is shift-invariant: dropping the first sample maps S into S.
- The Gram matrix W of g_1..g_10 (inner products over infinitely many samples) is factorised W = C C^T
  (Cholesky). In the orthonormal basis this gives, the coordinates of g_s are ``F[s] = SHIFT^(s-1) FIRST_STATE``,
  and SHIFT (the shift operator) has 2-norm <= 1: powers of it never amplify round-off, unlike the b/a recursion
  whose clustered poles make float64 evaluation chaotic at ~3e-3.
- ``h[s] = IMPULSE_READOUT . F[s]`` and ``rho[d] = AUTOCORRELATION_READOUT . F[d]`` for s, d >= 1, where rho is
  the autocorrelation of h; ``h[0] = b[0]`` and ``rho[0] = AUTOCORRELATION_AT_ZERO``.
``clef_sdk.filters`` builds every table it needs from these numbers (see its docstring).
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, getcontext
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from clef_sdk.filters import BUTTER_A, BUTTER_B  # noqa: E402

OUTPUT = REPO / "clef_sdk" / "_bandpass_constants.py"
DIGITS = 160
# h decays like 0.9975^k; sums over it stop once it is below this (relative to its peak): far below float64.
NEGLIGIBLE = Decimal("1e-70")

Matrix = list[list[Decimal]]


def impulse_response(b: list[Decimal], a: list[Decimal]) -> list[Decimal]:
    """h[k] of b/a (a[0] == 1) until it is negligible for good."""
    order = len(a) - 1
    h: list[Decimal] = []
    peak = Decimal(0)
    while True:
        k = len(h)
        value = (b[k] if k < len(b) else Decimal(0)) - sum(a[j] * h[k - j] for j in range(1, min(order, k) + 1))
        h.append(value)
        peak = max(peak, abs(value))
        if k > 1000 and max(abs(v) for v in h[-order - 1 :]) < NEGLIGIBLE * peak:
            return h


def cholesky(w: Matrix) -> Matrix:
    n = len(w)
    c = [[Decimal(0)] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = w[i][j] - sum(c[i][k] * c[j][k] for k in range(j))
            c[i][j] = s.sqrt() if i == j else s / c[j][j]
    return c


def solve_lower(c: Matrix, y: list[Decimal]) -> list[Decimal]:
    x: list[Decimal] = []
    for i in range(len(c)):
        x.append((y[i] - sum(c[i][k] * x[k] for k in range(i))) / c[i][i])
    return x


def solve_lower_transposed(c: Matrix, y: list[Decimal]) -> list[Decimal]:
    n = len(c)
    x = [Decimal(0)] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(c[k][i] * x[k] for k in range(i + 1, n))) / c[i][i]
    return x


def compute() -> dict[str, object]:
    getcontext().prec = DIGITS
    b = [Decimal(v) for v in BUTTER_B]  # Decimal(float) is exact
    a = [Decimal(v) for v in BUTTER_A]
    order = len(a) - 1
    if a[0] != 1 or len(b) != len(a):
        raise ValueError("expected a[0] == 1 and len(b) == len(a)")
    if sum(b) != 0:
        raise ValueError("clef_sdk.filters assumes a band-pass with exactly zero gain at DC (sum(b) == 0)")
    h = impulse_response(b, a)

    rho = [sum((h[t] * h[t + d] for t in range(len(h) - d)), Decimal(0)) for d in range(order + 1)]

    def gram_entry(i: int, j: int) -> Decimal:
        """<g_(i+1), g_(j+1)> = sum_{t > min(i, j)} h[t] h[t + |i - j|]"""
        d = abs(i - j)
        return rho[d] - sum((h[t] * h[t + d] for t in range(min(i, j) + 1)), Decimal(0))

    gram = [[gram_entry(i, j) for j in range(order)] for i in range(order)]
    c = cholesky(gram)
    # Shift operator in the basis g_1..g_order: g_s -> g_{s+1}; g_(order+1) = -sum_k a_k g_(order+1-k).
    companion = [[Decimal(0)] * order for _ in range(order)]
    for i in range(order - 1):
        companion[i + 1][i] = Decimal(1)
    for k in range(1, order + 1):
        companion[order - k][order - 1] = -a[k]
    # In orthonormal coordinates F = C^T x: SHIFT = C^T companion C^-T, built column by column.
    shift = [[Decimal(0)] * order for _ in range(order)]
    for j in range(order):
        x = solve_lower_transposed(c, [Decimal(int(i == j)) for i in range(order)])
        y = [sum(companion[r][q] * x[q] for q in range(order)) for r in range(order)]
        for r in range(order):
            shift[r][j] = sum(c[k][r] * y[k] for k in range(order))
    return {
        "SHIFT": [[float(v) for v in row] for row in shift],
        "FIRST_STATE": [float(c[0][k]) for k in range(order)],  # g_1 = C[0] . q
        "IMPULSE_READOUT": [float(v) for v in solve_lower(c, h[1 : order + 1])],
        "AUTOCORRELATION_READOUT": [float(v) for v in solve_lower(c, rho[1 : order + 1])],
        "AUTOCORRELATION_AT_ZERO": float(rho[0]),
    }


def render(values: dict[str, object]) -> str:
    def vector(v: list[float]) -> str:
        return "(" + ", ".join(repr(x) for x in v) + ")"

    lines = [
        '"""Generated by scripts/make_bandpass_constants.py from clef_sdk.filters.BUTTER_B / BUTTER_A: do not edit.',
        "",
        "The exact b/a band-pass as a 10-dimensional state in an orthonormal basis (see that script's docstring).",
        "Floats are written with repr(), which round-trips float64 exactly.",
        '"""',
        "",
        "SHIFT = (  # fmt: skip",
    ]
    lines += [f"    {vector(row)}," for row in values["SHIFT"]]  # type: ignore[union-attr]
    lines.append(")")
    for name in ("FIRST_STATE", "IMPULSE_READOUT", "AUTOCORRELATION_READOUT"):
        lines.append(f"{name} = {vector(values[name])}  # fmt: skip")  # type: ignore[arg-type]
    lines.append(f"AUTOCORRELATION_AT_ZERO = {values['AUTOCORRELATION_AT_ZERO']!r}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the module instead of writing it")
    text = render(compute())
    if parser.parse_args().check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} differs from what this script generates; run it without --check", file=sys.stderr)
            return 1
        print(f"{OUTPUT} is up to date")
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
