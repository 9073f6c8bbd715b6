"""What `doctor` found, and how each finding was repaired (or why it was not)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Finding:
    kind: str    # open file | torn tail | uncataloged capture | leftover spool | torn custody line | …
    where: str
    detail: str
    fixed: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Diagnosis:
    findings: list[Finding] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.findings
