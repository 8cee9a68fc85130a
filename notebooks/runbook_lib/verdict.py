"""The run's verdict: each section's outcome, the overall PASS / WARN / FAIL and its reasons.

A section is PASS (checked, fine), WARN (worth a look, or could not be checked fully), FAIL
(the site may serve stale pages, or a write the operator asked for failed) or SKIPPED (not
asked for, or nothing to check; the reason says which). The overall verdict is the worst
section's; with nothing checked at all it is WARN, never PASS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PASS, WARN, FAIL, SKIPPED = "PASS", "WARN", "FAIL", "SKIPPED"
VERDICTS = (PASS, WARN, FAIL, SKIPPED)
_RANK = {SKIPPED: 0, PASS: 1, WARN: 2, FAIL: 3}
# Colours with enough contrast on white (WCAG AA for bold text); words, never emoji, so the
# report reads the same without an emoji font.
COLOURS = {PASS: "#1a7f37", WARN: "#9a6700", FAIL: "#cf222e", SKIPPED: "#57606a"}


@dataclass
class Outcome:
    """One section's result for the recap: its verdict and why (never empty)."""

    section: str
    verdict: str
    reasons: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"not a verdict: {self.verdict!r}")
        self.reasons = [reason for reason in self.reasons if reason] or [_DEFAULT[self.verdict]]

    def as_json(self) -> dict[str, Any]:
        return {"section": self.section, "verdict": self.verdict, "reasons": list(self.reasons)}

    def markdown(self) -> str:
        """``**WARN:** reason; reason.`` (one full stop, whatever the last reason ends with)."""
        text = "; ".join(self.reasons)
        return f"**{self.verdict}:** {text}" + ("" if text.endswith((".", "?", "!", ":")) else ".")


_DEFAULT = {
    PASS: "checked, nothing wrong",
    WARN: "needs a look",
    FAIL: "failed",
    SKIPPED: "not run",
}


def worst(verdicts: Iterable[str]) -> str:
    return max(verdicts, key=lambda verdict: _RANK[verdict], default=SKIPPED)


@dataclass
class Verdict:
    verdict: str
    reasons: list[str]
    sections: list[Outcome]

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "sections": [outcome.as_json() for outcome in self.sections],
        }


def overall(outcomes: Iterable[Outcome]) -> Verdict:
    """The worst section verdict, with the reasons of the sections that made it."""
    sections = list(outcomes)
    verdict = worst(outcome.verdict for outcome in sections)
    if verdict in (SKIPPED, PASS) and not any(o.verdict == PASS for o in sections):
        reasons = ["nothing was checked: " + "; ".join(sections[0].reasons)] if sections else []
        return Verdict(WARN, reasons or ["nothing was checked"], sections)
    if verdict == PASS:
        checked = [o.section for o in sections if o.verdict == PASS]
        return Verdict(PASS, [f"every check passed ({', '.join(checked)})"], sections)
    reasons = [
        f"{outcome.section}: {reason}"
        for outcome in sections
        if outcome.verdict == verdict
        for reason in outcome.reasons
    ]
    return Verdict(verdict, reasons, sections)


def word_html(verdict: str) -> str:
    """The verdict word in its colour, bold (inline style: the report has no stylesheet of ours)."""
    colour = COLOURS.get(verdict, COLOURS[SKIPPED])
    return f'<span style="color:{colour};font-weight:bold">{verdict}</span>'


class VerdictFailed(RuntimeError):
    """Raised by the notebook's last cell when the verdict is FAIL: papermill exits non-zero."""


def gate(summary: Mapping[str, Any]) -> str:
    """The summary's verdict; raises ``VerdictFailed`` (with the reasons) when it is FAIL."""
    verdict = (summary.get("verdict") or {}).get("verdict")
    if verdict == FAIL:
        reasons = (summary.get("verdict") or {}).get("reasons") or []
        raise VerdictFailed("verdict FAIL: " + " | ".join(reasons))
    return str(verdict)
