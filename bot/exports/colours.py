"""The colours every drawing of Linli uses for groups and stances: the PDF's charts (matplotlib) and the map picture
sent in chat (Pillow) alike, so a group has one colour wherever a reader sees it. Plain values, no drawing library."""

from __future__ import annotations

# Okabe and Ito's colour-blind-safe palette; grey for what belongs to no group.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
GREY = "#B0B0B0"
AGREE, DISAGREE, PASS = "#009E73", "#D55E00", "#B0B0B0"


def group_colour(index: int) -> str:
    return GREY if index < 0 else PALETTE[index % len(PALETTE)]
