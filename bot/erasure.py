"""The features' erasers for /forget (community.privacy.Eraser): what each feature does with a person's rows
when they erase their data. The kernel's forget() runs them first; every front end that erases a person passes
PERSONAL_DATA_ERASERS, so a feature added later lists its eraser here and nowhere else."""

from __future__ import annotations

from community.privacy import Eraser
from consultation.erasure import withdraw_open_votes

# Consultations: votes in consultations still open are withdrawn (consultation.erasure says why).
PERSONAL_DATA_ERASERS: tuple[Eraser, ...] = (withdraw_open_votes,)
