"""A typed per-spec cache of derived figures (weight bytes per format, vLLM's block layout ...).

The context and batch solvers run an engine estimate dozens of times for one model, and each run
needs the same figures of its spec. ``per_spec`` memoizes a function of (spec, arguments) in the
spec's own ``Memo``: one table per function, keyed by the remaining (positional, hashable)
arguments. The value's type is the function's return type, so callers get it back typed, with no
casts or isinstance checks of their own. The memo lives on the spec object (ModelSpec compares and
hashes by identity), so it goes away with the spec.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, TypeVarTuple

R = TypeVar("R")
Args = TypeVarTuple("Args")


class Memo(dict[Callable[..., object], dict[tuple[object, ...], Any]]):
    """The cached figures of one spec: for each memoized function, its results by arguments.

    A dict (of tables) so that a cache hit is two subscripts and nothing else. The tables hold
    Any: ``per_spec`` gives each value back as its figure's return type."""

    __slots__ = ()

    def entries(self, figure: Callable[..., object]) -> int:
        """How many results of ``figure`` (as decorated, or its undecorated self) are cached."""
        return len(self.get(getattr(figure, "__wrapped__", figure), ()))


class HasMemo(Protocol):
    """What carries a memo: ModelSpec."""

    @property
    def memo(self) -> Memo: ...


S = TypeVar("S", bound=HasMemo)


def per_spec(*, bound: int | None = None) -> Callable[[Callable[[S, *Args], R]],
                                                      Callable[[S, *Args], R]]:
    """Memoize ``figure(spec, *args)`` in ``spec.memo``, keyed by ``args``.

    ``bound`` caps the results one spec keeps of this figure, for arguments that vary freely
    (llama.cpp's cache layout per n_ctx while the context solver bisects); past it results are
    computed but no longer stored.
    """

    def decorate(figure: Callable[[S, *Args], R]) -> Callable[[S, *Args], R]:
        @functools.wraps(figure)
        def cached(owner: S, /, *args: *Args) -> R:
            try:
                # Only figure's own results are stored under figure: the value has its type.
                hit: R = owner.memo[figure][args]
                return hit
            except KeyError:
                pass
            value = figure(owner, *args)
            table = owner.memo.setdefault(figure, {})
            if bound is None or len(table) < bound:
                table[args] = value
            return value

        return cached

    return decorate
