"""Side-by-side setups (`compare`): each cell is an estimate of its own (a model at a format on a
GPU, with the keys common to all), so every number in the table is what that estimate answers."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import UserError
from core.report import Report
from core.units import format_bytes


@dataclass(frozen=True)
class CompareCell:
    row: str
    column: str
    command: str  # the estimate command behind the cell
    report: Report | None
    error: str | None = None  # why this cell has no answer (a model the Hub lacks ...)

    @property
    def summary(self) -> str:
        """The cell in a few words: verdict, memory, speed."""
        if self.report is None:
            return f"- ({self.error})" if self.error else "-"
        r = self.report
        verdict = {"fits": "YES", "tight": "tight", "split": "split", "no": "NO"}[r.verdict]
        speed = r.speed.decode_tokens_per_s
        pace = f", {speed:.3g} tok/s" if speed else ""
        return f"{verdict} {format_bytes(r.total_bytes)}{pace}"


@dataclass(frozen=True)
class CompareAnswer:
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[CompareCell, ...]  # row-major

    def cell(self, row: str, column: str) -> CompareCell:
        return next(c for c in self.cells if c.row == row and c.column == column)

    def table(self) -> list[list[str]]:
        """Header row, then one row per setup: the cells' summaries under each GPU."""
        out = [["setup", *self.columns]]
        for row in self.rows:
            out.append([row, *(self.cell(row, col).summary for col in self.columns)])
        return out


def failed(row: str, column: str, command: str, error: UserError) -> CompareCell:
    return CompareCell(row, column, command, None, error.message)
