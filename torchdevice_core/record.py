"""What was redirected or emulated, how often, and (only when asked) from where.

Counting is a dict increment; the factories' hot path bumps a one-element list instead (a ``cell``, ~0.4 us
cheaper than a ``Counter`` key), folded into the counts whenever they are read.  Call sites cost a frame walk
and are off unless requested.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from typing import Any, Literal

from .records import Record, field

Kind = Literal["redirected", "emulated", "refused", "mps", "source", "target_gap"]
KINDS: tuple[Kind, ...] = ("redirected", "emulated", "refused", "mps", "source", "target_gap")
"""redirected: a device argument was rewritten; emulated: a torch.cuda API was answered by emulation;
refused: an API that cannot be emulated raised; mps: an Apple MPS limit applied (float64, missing kernel);
source: a tensor was put on a redirected device of that type (``cuda``, ``mps``): the sources seen;
target_gap: an op on redirected tensors hit a dtype the target has no kernel for (``op (Half)``)."""

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_TORCH_DIR = os.path.dirname(os.path.abspath(sys.modules["torch"].__file__ or "torch"))
_SKIP_PREFIXES = (_PACKAGE_DIR + os.sep, _TORCH_DIR + os.sep)


def _call_site() -> str:
    """The first frame outside this library and outside torch: the user's line that asked for the device."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_SKIP_PREFIXES) and not filename.startswith("<frozen"):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


class RecordSnapshot(Record, frozen=False):
    """An immutable copy of the counters, to diff one test's activity against the session's."""

    counts: dict[tuple[Kind, str], int] = field(default_factory=dict)
    sites: dict[tuple[Kind, str], dict[str, int]] = field(default_factory=dict)

    def minus(self, earlier: RecordSnapshot) -> RecordSnapshot:
        counts = {k: v - earlier.counts.get(k, 0) for k, v in self.counts.items() if v != earlier.counts.get(k, 0)}
        sites: dict[tuple[Kind, str], dict[str, int]] = {}
        for key, per_site in self.sites.items():
            before = earlier.sites.get(key, {})
            diff = {s: n - before.get(s, 0) for s, n in per_site.items() if n != before.get(s, 0)}
            if diff:
                sites[key] = diff
        return RecordSnapshot(counts, sites)

    def apis(self, kind: Kind | None = None) -> list[str]:
        """The APIs hit (of one kind; all kinds but the ``source`` tallies by default)."""
        return sorted({api for (k, api) in self.counts if k == kind or (kind is None and k != "source")})

    def total(self, kind: Kind | None = None) -> int:
        return sum(n for (k, _), n in self.counts.items() if k == kind or (kind is None and k != "source"))

    def sources(self) -> list[str]:
        """The source device types tensors were put on (``cuda``, ``mps``)."""
        return sorted(api for (k, api) in self.counts if k == "source")

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """The counters in the shape of a test's entry in the plugin's JSON report.

        ``{"redirected": {api: n}, "emulated": {...}, "refused": {...}, "mps": {...}}``, plus
        ``"call_sites": {"kind:api": {"file:line": n}}`` when call sites were recorded (absolute file names
        here; the plugin's report makes those under pytest's rootdir relative, like node ids). The ``source``
        tallies are not in it: ``sources()`` lists them (the report's ``sources`` adds refused namespaces).
        """
        out: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS if kind != "source"}
        for (kind, api), n in sorted(self.counts.items()):
            if kind != "source":
                out[kind][api] = n
        if self.sites:
            out["call_sites"] = {f"{kind}:{api}": dict(sorted(sites.items()))
                                 for (kind, api), sites in sorted(self.sites.items())}
        return out


class RedirectRecord:
    """Counters per (kind, api); call sites per (kind, api) when ``call_sites`` is on."""

    def __init__(self, call_sites: bool = False) -> None:
        self._counts: Counter[tuple[Kind, str]] = Counter()
        self._cells: dict[tuple[Kind, str], list[int]] = {}
        self.sites: dict[tuple[Kind, str], Counter[str]] = {}
        self.call_sites = call_sites
        self._lock = threading.Lock()

    @property
    def counts(self) -> Counter[tuple[Kind, str]]:
        """Every counter, the cells' included (the cells are emptied into it)."""
        for key, cell in self._cells.items():
            if cell[0]:
                n, cell[0] = cell[0], 0
                self._counts[key] += n
        return self._counts

    def cell(self, kind: Kind, api: str) -> list[int]:
        """A counter for a hot path: ``cell[0] += 1`` counts one ``(kind, api)`` hit."""
        return self._cells.setdefault((kind, api), [0])

    def hit(self, kind: Kind, api: str) -> None:
        key = (kind, api)
        self._counts[key] += 1
        if self.call_sites:
            site = _call_site()
            with self._lock:
                self.sites.setdefault(key, Counter())[site] += 1

    def redirected(self, api: str) -> None:
        self.hit("redirected", api)

    def emulated(self, api: str) -> None:
        self.hit("emulated", api)

    def refused(self, api: str) -> None:
        self.hit("refused", api)

    def snapshot(self) -> RecordSnapshot:
        with self._lock:
            return RecordSnapshot(dict(self.counts), {k: dict(v) for k, v in self.sites.items()})

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            for cell in self._cells.values():
                cell[0] = 0
            self.sites.clear()
