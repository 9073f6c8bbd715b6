"""What a check found: each check passed is counted by name, each that failed is kept with
where and why, and a check that could not run is listed as not checked, never as passed.
Collection verification, bundle verification and import all report in this one form."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Failure:
    check: str
    where: str
    detail: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


LISTED_PER_CHECK = 1000  # failures of one check listed in full; the rest are counted (a forged file can fail millions)


@dataclass
class Report:
    passed: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    unlisted: Counter = field(default_factory=Counter)  # failures of each check past the first LISTED_PER_CHECK
    # What the checks that held establish, in the words a reader asks for (a bundle's id, maker,
    # date, what it proves): said only once the signature vouching for it has verified.
    established: dict = field(default_factory=dict)
    _listed: Counter = field(default_factory=Counter, repr=False)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failed(self) -> int:
        """How many checks failed, listed or only counted."""
        return len(self.failures) + sum(self.unlisted.values())

    def _keep(self, failure: Failure) -> None:
        if self._listed[failure.check] < LISTED_PER_CHECK:
            self._listed[failure.check] += 1
            self.failures.append(failure)
        else:
            self.unlisted[failure.check] += 1

    def check(self, name: str, holds: bool, where: str | Callable[[], str], detail: str | Callable[[], str]) -> bool:
        """Count a check that holds, keep one that fails; `where` and `detail` may be functions
        giving the text, called only for a failure (a check made per record then formats nothing)."""
        if holds:
            self.count_passed(name)
        else:
            self._keep(Failure(name, where() if callable(where) else where, detail() if callable(detail) else detail))
        return holds

    def count_passed(self, name: str, times: int = 1) -> None:
        """Checks named `name` that held, counted without a call to check() each (per record)."""
        self.passed[name] += times

    def extend(self, later: "Report") -> None:
        """Add what `later` found after what this report holds, as if checked here in that order."""
        self.passed.update(later.passed)
        for failure in later.failures:
            self._keep(failure)
        self.unlisted.update(later.unlisted)
        self.not_checked += later.not_checked

    def as_dict(self) -> dict:
        return {"ok": self.ok, "passed": dict(sorted(self.passed.items())), "failed": self.failed,
                "failures": [f.as_dict() for f in self.failures], "failures_not_listed": dict(sorted(self.unlisted.items())),
                "not_checked": self.not_checked} | ({"established": self.established} if self.established else {})
