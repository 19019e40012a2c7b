"""Input checks shared by every public function.

Each check raises ``ValueError`` naming the parameter and the accepted range, so
that the command line can turn it into one line on stderr (exit status 2).
"""

from __future__ import annotations

import numbers

import numpy as np


def finite_array(name: str, value, *, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``value`` as a float64 array after checking it is finite (and of ``ndim``)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {value!r}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    return arr


def positive_array(name: str, value, *, ndim=None) -> np.ndarray:
    arr = finite_array(name, value, ndim=ndim)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got minimum {arr.min()!r}")
    return arr


def positive(name: str, value) -> float:
    """A finite scalar > 0."""
    arr = finite_array(name, value, ndim=0)
    if arr <= 0:
        raise ValueError(f"{name} must be > 0, got {float(arr)!r}")
    return float(arr)


def nonnegative(name: str, value) -> float:
    arr = finite_array(name, value, ndim=0)
    if arr < 0:
        raise ValueError(f"{name} must be >= 0, got {float(arr)!r}")
    return float(arr)


def in_open_interval(name: str, value, low: float, high: float) -> float:
    arr = finite_array(name, value, ndim=0)
    if not (low < arr < high):
        raise ValueError(f"{name} must lie in ({low}, {high}), got {float(arr)!r}")
    return float(arr)


def positive_int(name: str, value, *, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools and non-integral floats are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer() and np.isfinite(value):
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def times(name: str, t) -> np.ndarray:
    """OU times: finite and >= 0 (scalar or array)."""
    arr = finite_array(name, t)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (OU time), got minimum {arr.min()!r}")
    return arr


def batch_columns(name: str, x, n_columns: int) -> np.ndarray:
    """A finite float64 array of shape (batch, n_columns)."""
    arr = finite_array(name, x, ndim=2)
    if arr.shape[1] != n_columns:
        raise ValueError(f"{name} must have shape (batch, {n_columns}), got {arr.shape}")
    return arr


def row_times(name: str, t, batch: int) -> np.ndarray:
    """OU time as a scalar or one value per row; returned broadcastable to (batch, 1)."""
    arr = times(name, t)
    if arr.ndim == 0:
        return arr
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != 1 or arr.shape[0] not in (1, batch):
        raise ValueError(f"{name} must be a scalar or have one value per row (shape ({batch},) or ({batch}, 1)), got {arr.shape}")
    return arr


def weights(name: str, w, *, atol: float = 1e-10) -> np.ndarray:
    arr = finite_array(name, w, ndim=1)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0")
    if abs(arr.sum() - 1.0) > atol:
        raise ValueError(f"{name} must sum to one, got sum {arr.sum()!r}")
    return arr
