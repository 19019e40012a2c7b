"""Turn the scaling study's CSV tables into fits, verdicts, markdown tables and figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.cache import atomic_write_text


def write_report(results: Path, figures: Path) -> None:
    pass
