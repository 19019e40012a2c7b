"""Progress of a run, weighted by expected work, on a terminal or in a log.

On a terminal (stdout is a TTY) a tqdm bar shows the share of the *estimated work* done (each item weighs
its estimated CPU seconds, :func:`experiments.planning.scan_seconds`, not 1), the items finished and the
time left. Otherwise (a log file, CI, a pipe) plain lines are printed at a modest rate: when another 10%
of the work is done or :data:`INTERVAL` seconds have passed since the last line, whichever comes first.
:meth:`Progress.say` prints one line of another phase (the analysis and its figures) in both modes.
"""

from __future__ import annotations

import sys
import time

#: seconds between plain progress lines (at most)
INTERVAL = 10.0
#: share of the work between plain progress lines (at most)
STEP = 0.10


def _fmt_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    def __init__(self, weights, *, label: str = "scans", stream=None, tty: bool | None = None,
                 interval: float = INTERVAL, enabled: bool = True):
        self.weights = [max(float(w), 1e-9) for w in weights]
        self.total = sum(self.weights) or 1.0
        self.n_items = len(self.weights)
        self.label = label
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.enabled = enabled
        self.done_work = 0.0
        self.done_items = 0
        self.start = time.monotonic()
        self._last_time = self.start
        self._last_share = 0.0
        self._bar = None
        if self.enabled and self.tty and self.n_items:
            from tqdm import tqdm

            self._bar = tqdm(total=100.0, file=self.stream, unit="%", dynamic_ncols=True,
                             bar_format="{desc} {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]",
                             desc="work")
            self._bar.set_postfix_str(f"0/{self.n_items} {self.label}")

    def advance(self, index: int) -> None:
        """Item ``index`` (in the order of ``weights``) has finished."""
        w = self.weights[index]
        self.done_work += w
        self.done_items += 1
        if not self.enabled:
            return
        share = min(1.0, self.done_work / self.total)
        if self._bar is not None:
            self._bar.n = round(100.0 * share, 1)
            self._bar.set_postfix_str(f"{self.done_items}/{self.n_items} {self.label}", refresh=False)
            self._bar.refresh()
            return
        now = time.monotonic()
        last = self.done_items == self.n_items
        if last or share - self._last_share >= STEP - 1e-12 or now - self._last_time >= self.interval:
            self._last_time, self._last_share = now, share
            self._line(share, now)

    def _line(self, share: float, now: float) -> None:
        elapsed = now - self.start
        left = elapsed * (1.0 - share) / share if share > 0 else float("nan")
        eta = f", ~{_fmt_seconds(left)} left" if share < 1.0 and left == left else ""
        print(f"progress: {100.0 * share:3.0f}% of the estimated work ({self.done_items}/{self.n_items} "
              f"{self.label}), {_fmt_seconds(elapsed)} elapsed{eta}", file=self.stream, flush=True)

    def say(self, line: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
