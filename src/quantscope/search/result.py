"""What a search returns: its points and whether it finished; labelled copies of points."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .evaluate import Point

__all__ = ["SearchResult", "labelled"]


@dataclass
class SearchResult:
    """Every evaluated point, and whether the search finished or its budget stopped it."""

    points: list[Point] = field(default_factory=list)
    complete: bool = True
    best: dict[str, Point] = field(default_factory=dict)

    @property
    def evaluations(self) -> int:
        return len(self.points)


def labelled(point: Point, **labels) -> Point:
    """A copy of `point` with more labels (evaluators cache and share points: never mutate them)."""
    return replace(point, labels={**point.labels, **labels})
