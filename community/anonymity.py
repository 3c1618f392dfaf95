"""The smallest group whose figures Linli shows: k, in one place for every feature that counts people's answers.

Figures of very few people give their answers away. With one voter, "agree 3, disagree 1" is how she voted;
with two, each can read the other's votes from the counts by taking away their own. So a process whose audience
is smaller than k is not created, and its counts (of votes, of an opinion group, per pseudonym) are withheld
until at least k people have answered. Worker ratings use the same k for "never below a minimum number of
raters" (DESIGN.md, Privacy and integrity).

k = 5 by default: the smallest cell size statistics offices commonly publish (many suppress counts below 5), and
small enough that the committee of a single residents' building can still hold a consultation. The setting
LINLI_MIN_GROUP_SIZE changes it (bot.config); the composition root hands it to every unit of work as
``uow.anonymity``, as it hands over the clock and the site key."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MIN_GROUP_SIZE = 5
# Below 2, one person's figures are shown: the very case this guards against. Above 1,000 hardly any process of a
# neighbourhood would ever show a figure.
LOWEST_MIN_GROUP_SIZE = 2
HIGHEST_MIN_GROUP_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Anonymity:
    """k: the fewest people whose answers are shown as figures, and the smallest audience a process may have."""

    min_group_size: int = DEFAULT_MIN_GROUP_SIZE

    def __post_init__(self) -> None:
        if not LOWEST_MIN_GROUP_SIZE <= self.min_group_size <= HIGHEST_MIN_GROUP_SIZE:
            raise ValueError(
                f"min_group_size must lie from {LOWEST_MIN_GROUP_SIZE} to {HIGHEST_MIN_GROUP_SIZE}, "
                f"got {self.min_group_size}"
            )

    def shows(self, people: int) -> bool:
        """Whether figures drawn from this many people may be shown."""
        return people >= self.min_group_size
