"""Per-customer random streams: every draw is a function of (seed, purpose, day, customer).

Each purpose (income, shocks, spending, pay-later orders, payment choices, debit outcomes,
arrangements; ``RNG_*`` in :mod:`training.simulation.population`) has, for every day, its
own generator seeded from ``(seed, purpose, day)``. A day's draws come in *blocks* of one
value per customer, indexed by the customer's position in the population, and drawn in a
fixed order: block k holds the same values whether or not later blocks are drawn, and
whoever else has a case that day. A decision changes how many cases a day has (a debit
moved, a pay-later order declined, a plan of another size), so drawing per case would move
every later case's draw to another customer; drawing per customer keeps a counterfactual
run's difference to the customers the decision concerns.
"""

from __future__ import annotations

import numpy as np


class DayDraws:
    """The draws of one purpose on one day, in blocks of one value per customer."""

    def __init__(self, seed: int, purpose: int, day: int, n: int) -> None:
        self.generator = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([seed, purpose, day]))
        )
        self.n = n

    def uniform(self, blocks: int | None = None) -> np.ndarray:
        """The next block (``(n,)``) or ``blocks`` blocks (``(blocks, n)``) of U(0, 1)."""
        return self.generator.random(self.n if blocks is None else (blocks, self.n))

    def normal_at(self, who: np.ndarray, mean: float = 0.0, sd: float = 1.0) -> np.ndarray:
        """Normal values for customers ``who`` from the next two blocks (Box-Muller): the
        blocks are uniform, so only ``who`` pay for the transform."""
        u = self.uniform(2)
        radius = np.sqrt(-2.0 * np.log1p(-u[0, who]))
        return mean + sd * radius * np.cos(2.0 * np.pi * u[1, who])

    def geometric_at(self, who: np.ndarray, p: float) -> np.ndarray:
        """Geometric values (trials until the first success, >= 1) for customers ``who``
        from the next block (inverse CDF)."""
        u = self.uniform()[who]
        return 1 + np.floor(np.log1p(-u) / np.log1p(-p)).astype(np.int64)

    def per_case(self, cust_sorted: np.ndarray, rows: int) -> np.ndarray:
        """``(rows, k)`` uniforms for ``k`` cases sorted by customer: a customer's r-th case
        of the day reads block group r at their position, so how many cases *other*
        customers have never changes theirs (and their own count moves only their own)."""
        k = len(cust_sorted)
        if k == 0:
            return np.empty((rows, 0))
        pos = np.arange(k)
        head = np.r_[True, cust_sorted[1:] != cust_sorted[:-1]]
        rank = pos - np.maximum.accumulate(np.where(head, pos, 0))
        blocks = self.uniform((int(rank.max()) + 1) * rows).reshape(-1, rows, self.n)
        return blocks[rank, :, cust_sorted].T


class Streams:
    """The day generators of one simulation (``seed``, ``n`` customers)."""

    def __init__(self, seed: int, n: int) -> None:
        self.seed, self.n = seed, n

    def day(self, purpose: int, day: int) -> DayDraws:
        """A fresh generator for ``purpose`` on ``day`` (its first block is block 0)."""
        return DayDraws(self.seed, purpose, day, self.n)
