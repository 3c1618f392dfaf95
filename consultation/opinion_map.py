"""The opinion map of a consultation: where participants stand, which groups they form, what each group stands for.

Pure computation over a votes matrix (participants × statements; agree = +1, disagree = -1, pass = 0, unseen =
NaN), following the Polis method (compdemocracy/polis ``math/``, and red-dwarf's Python re-implementation):

1. Unseen cells are imputed with the statement's mean vote (over the participants who saw it; 0 when nobody did).
2. PCA to two dimensions (eigendecomposition of the 's × s' covariance of the imputed, centred matrix), fitted on
   every participant. Each participant's projection is scaled by ``sqrt(n_statements / n_votes)``, Polis's
   correction that pulls sparse voters out of the centre (a participant with no vote sits at the origin).
3. Only participants with at least ``min_votes`` votes (7; passes count as votes) are clustered: first into up to
   100 base clusters (k-means; fewer when there are fewer distinct positions), then k-means over the base
   clusters' centres, weighted by their sizes, with k from 2 to 5 chosen by the silhouette of the base centres.
   Groups are numbered by size, largest first. Everything is deterministic (fixed ``random_state``).
   Moderated-out statements (``moderated_out``) are handled as Polis's ``zero-out-columns``: their columns stay
   and are set to 0 for every participant (unseen cells included) before the PCA, so they add nothing to the
   axes but count as statements and as votes of everyone in ``sqrt(n_statements / n_votes)``; the real votes cast
   on them count toward ``min_votes`` (Polis's ``user-vote-counts`` reads the raw rating matrix). They are left
   out of representative, consensus, group-informed consensus and divisive statements, and their importance is 0.
4. Statistics, with Polis's pseudocounts: per group and statement ``pa = (1 + na) / (2 + ns)`` (``pd`` likewise),
   the one-proportion test ``pat = 2 sqrt(ns + 1) ((na + 1) / (ns + 1) - 1/2)``, the representativeness
   ``ra = pa / pa_rest`` against all other clustered participants and the two-proportion z-test ``rat`` (every
   count +1). Representative statements per group are chosen exactly as Polis's ``select-rep-comments``: those
   significant at 90 % on both tests, sorted by ``repness * repness_test * p_success * p_test``, the group's
   "best agree" statement in front, at most 5, agrees before disagrees; when none is significant, the best one.
   Consensus statements (agree / disagree) are Polis's ``select-consensus-comments`` over every participant:
   ``p > 0.5`` and ``p_test`` significant at 90 %, sorted by ``p * p_test``, at most 5 each. Group-informed
   consensus is, per statement, the product over groups of ``(1 + na_g) / (2 + ns_g)`` (and of the disagree
   counterpart), as Polis's ``group-aware-consensus``.

Checked against red-dwarf 0.4.0 (a Python port of Polis's math; tests/test_opinion_map.py where it is installed):
positions equal up to the sign of an axis (to 1e-12), consensus statements identical; representative statements
differ only as far as group memberships do (red-dwarf has no base clusters, so a few border participants may fall
in another group).

Where the numbers can differ from Polis's:

- Polis updates its PCA incrementally (power iteration warm-started from the previous run, on a sample of
  participants in large conversations); this module does an exact PCA from scratch each time. Axes may come out
  rotated or mirrored relative to Polis's map (this module fixes each axis's sign so that the statement with the
  largest loading has a positive one); distances and groups are what matter.
- Polis's k-smoother keeps the previous number of groups until a new k has won several consecutive updates; this
  module has no history and takes the silhouette's choice of the moment. Polis's k-means is its own (initialised
  from the previous run's centres or the first distinct points) and its silhouette is computed on its base
  clusters; here scikit-learn's k-means (k-means++, fixed seed) and an unweighted silhouette over the base centres.
  Base clusters are recomputed from scratch, not carried over between updates.
- Polis clusters participants with at least ``min(7, n_statements)`` votes plus some it keeps for continuity;
  here exactly those with ``min_votes`` votes or more.
- Pass votes count in ``ns`` (seen) but as neither agree nor disagree, as in Polis.
- A two-proportion test whose pooled proportion is 0 or 1 (e.g. a group and the rest all agree) has no defined z;
  Polis would divide by zero, this module returns 0 (no difference).
- "Most divisive statements" are not a Polis output: here a statement's divisiveness is the spread (max - min)
  over groups of its net support ``(na_g - nd_g) / (ns_g + 2)``, kept when at least ``min_divisiveness`` (0.5),
  at most 5, most divisive first. There are none with fewer than two groups.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

ParticipantId: TypeAlias = int | str
StatementId: TypeAlias = int | str
FloatArray: TypeAlias = NDArray[np.float64]
IntArray: TypeAlias = NDArray[np.int64]

# One-sided z at 90 % confidence, Polis's ``z-sig-90?``.
Z_90 = 1.2816
NOT_CLUSTERED = -1


class Stance(StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"


@dataclass(frozen=True, slots=True)
class OpinionMapSettings:
    min_votes: int = 7
    base_clusters: int = 100
    min_groups: int = 2
    max_groups: int = 5
    max_representative: int = 5
    max_consensus: int = 5
    max_divisive: int = 5
    min_divisiveness: float = 0.5
    random_state: int = 0

    def __post_init__(self) -> None:
        if self.min_votes < 1 or self.base_clusters < 1 or not 2 <= self.min_groups <= self.max_groups:
            raise ValueError("invalid opinion map settings")


@dataclass(frozen=True, slots=True)
class RepresentativeStatement:
    """A statement that sets a group apart: ``n_success`` of the group's ``n_trials`` who saw it voted ``stance``."""

    statement_id: StatementId
    stance: Stance
    n_success: int
    n_trials: int
    p_success: float
    p_test: float
    repness: float
    repness_test: float
    best_agree: bool = False


@dataclass(frozen=True, slots=True)
class ConsensusStatement:
    statement_id: StatementId
    stance: Stance
    n_success: int
    n_trials: int
    p_success: float
    p_test: float


@dataclass(frozen=True, slots=True)
class GroupInformedConsensus:
    statement_id: StatementId
    agree: float
    disagree: float


@dataclass(frozen=True, slots=True)
class DivisiveStatement:
    statement_id: StatementId
    divisiveness: float
    # Net support (na - nd) / (ns + 2) of each group, in the order of OpinionMap.groups.
    group_support: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    participant_ids: tuple[ParticipantId, ...]
    centre: tuple[float, float]
    representative: tuple[RepresentativeStatement, ...]
    # Per statement, in the order of OpinionMap.statement_ids.
    agree_counts: tuple[int, ...]
    disagree_counts: tuple[int, ...]
    pass_counts: tuple[int, ...]


@dataclass(frozen=True, slots=True, eq=False)
class OpinionMap:
    participant_ids: tuple[ParticipantId, ...]
    statement_ids: tuple[StatementId, ...]
    # (n_participants, 2), read-only.
    coordinates: FloatArray
    # Per statement: the mean vote of those who saw it (what unseen cells are imputed with), and its loadings on
    # the two axes, (2, n_statements). A participant's position is sqrt(n_statements / n_votes) times the sum,
    # over the statements they voted on, of (vote - mean) * loading.
    statement_means: FloatArray
    statement_loadings: FloatArray
    # Per statement, Polis's extremity (how far a participant who agreed with it alone would sit from the centre)
    # and importance ``pa * (1 - pp) * (1 + extremity)`` (pseudocount 1): how much a vote on it tells groups
    # apart. Polis's priority for showing a statement next is ``(importance * (1 + 8 * 2^(-votes/5)))^2``; the
    # consultation service applies the newness factor with live vote counts.
    statement_extremity: FloatArray
    statement_importance: FloatArray
    # Votes cast (passes included) per participant.
    vote_counts: IntArray
    # Index into ``groups`` per participant, NOT_CLUSTERED (-1) for those with too few votes.
    group_of: IntArray
    groups: tuple[Group, ...]
    consensus_agree: tuple[ConsensusStatement, ...]
    consensus_disagree: tuple[ConsensusStatement, ...]
    # Every statement not moderated out, highest agree value first; empty when there are no groups.
    group_informed_consensus: tuple[GroupInformedConsensus, ...]
    divisive: tuple[DivisiveStatement, ...]
    silhouette: float | None
    settings: OpinionMapSettings = field(default_factory=OpinionMapSettings)
    # Statements moderated out after votes were cast: their columns stay (zeroed in the PCA, their counts kept in
    # the groups' per-statement counts) but they are never representative, consensus or divisive.
    moderated_out: frozenset[StatementId] = frozenset()

    def position(self, participant_id: ParticipantId) -> tuple[float, float]:
        row = self.participant_ids.index(participant_id)
        return float(self.coordinates[row, 0]), float(self.coordinates[row, 1])

    def group_of_participant(self, participant_id: ParticipantId) -> Group | None:
        index = int(self.group_of[self.participant_ids.index(participant_id)])
        return None if index == NOT_CLUSTERED else self.groups[index]


def prop_test(successes: ArrayLike, trials: ArrayLike) -> FloatArray:
    """Polis's one-proportion z-test against 1/2, with a pseudocount of 1 on both counts."""
    succ = np.asarray(successes, dtype=np.float64) + 1.0
    n = np.asarray(trials, dtype=np.float64) + 1.0
    return np.asarray(2.0 * np.sqrt(n) * (succ / n - 0.5), dtype=np.float64)


def two_prop_test(succ_in: ArrayLike, succ_out: ArrayLike, pop_in: ArrayLike, pop_out: ArrayLike) -> FloatArray:
    """Polis's two-proportion z-test (in-group > out-group), every count +1; 0 where the pooled p is 0 or 1."""
    s_in = np.asarray(succ_in, dtype=np.float64) + 1.0
    s_out = np.asarray(succ_out, dtype=np.float64) + 1.0
    n_in = np.asarray(pop_in, dtype=np.float64) + 1.0
    n_out = np.asarray(pop_out, dtype=np.float64) + 1.0
    pooled = (s_in + s_out) / (n_in + n_out)
    variance = pooled * (1.0 - pooled) * (1.0 / n_in + 1.0 / n_out)
    diff = s_in / n_in - s_out / n_out
    safe = np.where(variance > 0.0, variance, 1.0)
    return np.asarray(np.where(variance > 0.0, diff / np.sqrt(safe), 0.0), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Counts:
    """Agree, disagree and seen counts per (group, statement) or per statement."""

    na: FloatArray
    nd: FloatArray
    ns: FloatArray


def compute_opinion_map(
    votes: ArrayLike,
    participant_ids: Sequence[ParticipantId],
    statement_ids: Sequence[StatementId],
    settings: OpinionMapSettings | None = None,
    moderated_out: Collection[StatementId] = (),
) -> OpinionMap:
    """The opinion map of ``votes`` (participants × statements: +1 agree, -1 disagree, 0 pass, NaN unseen).

    ``moderated_out``: statements of ``statement_ids`` taken out by a moderator after votes were cast on them,
    handled as Polis does (the module docstring); ids not among ``statement_ids`` are ignored, as Polis ignores
    moderating out a comment nobody voted on."""
    settings = settings or OpinionMapSettings()
    matrix = np.asarray(votes, dtype=np.float64)
    pids = tuple(participant_ids)
    sids = tuple(statement_ids)
    _validate(matrix, pids, sids)
    n_participants = matrix.shape[0]
    out_ids = frozenset(moderated_out) & frozenset(sids)
    moderated = np.array([sid in out_ids for sid in sids], dtype=np.bool_)
    shown = ~moderated

    seen = ~np.isnan(matrix)
    agree = matrix == 1.0
    disagree = matrix == -1.0
    # Votes on moderated-out statements still count toward the clustering threshold (Polis counts them in its
    # raw rating matrix).
    vote_counts = seen.sum(axis=1, dtype=np.int64)

    if moderated.any():
        # Polis's zero-out-columns: the whole column becomes 0 for everyone, unseen cells included, so it adds
        # nothing to the PCA but counts as a vote of every participant in the sparse-voter scaling.
        pca_matrix = matrix.copy()
        pca_matrix[:, moderated] = 0.0
        pca_seen = seen | moderated
        coordinates, statement_means, loadings = _project(
            pca_matrix, pca_seen, agree & shown, disagree & shown, pca_seen.sum(axis=1, dtype=np.int64)
        )
        del pca_matrix, pca_seen
    else:
        coordinates, statement_means, loadings = _project(matrix, seen, agree, disagree, vote_counts)
    clustered = vote_counts >= settings.min_votes
    group_of, silhouette = _cluster(coordinates, clustered, settings)
    n_groups = int(group_of.max()) + 1 if n_participants else 0

    group_counts = []
    for g in range(n_groups):
        in_group = group_of == g
        group_counts.append(_counts(agree[in_group], disagree[in_group], seen[in_group]))
    all_counts = _counts(agree, disagree, seen)
    del agree, disagree

    groups = []
    for g, counts in enumerate(group_counts):
        members = np.flatnonzero(group_of == g)
        rest = _rest(group_counts, g)
        centre = coordinates[members].mean(axis=0)
        groups.append(
            Group(
                id=g,
                participant_ids=tuple(pids[i] for i in members),
                centre=(float(centre[0]), float(centre[1])),
                representative=_representative(counts, rest, sids, shown, settings),
                agree_counts=tuple(int(x) for x in counts.na),
                disagree_counts=tuple(int(x) for x in counts.nd),
                pass_counts=tuple(int(x) for x in counts.ns - counts.na - counts.nd),
            )
        )

    extremity = _extremity(statement_means, loadings)
    importance = _importance(all_counts, extremity)
    # A moderated-out statement is never shown again: nothing to prioritise.
    importance[moderated] = 0.0
    for array in (coordinates, statement_means, loadings, extremity, importance):
        array.setflags(write=False)
    vote_counts.setflags(write=False)
    group_of.setflags(write=False)
    return OpinionMap(
        participant_ids=pids,
        statement_ids=sids,
        coordinates=coordinates,
        statement_means=statement_means,
        statement_loadings=loadings,
        statement_extremity=extremity,
        statement_importance=importance,
        vote_counts=vote_counts,
        group_of=group_of,
        groups=tuple(groups),
        consensus_agree=_consensus(all_counts, Stance.AGREE, sids, shown, settings),
        consensus_disagree=_consensus(all_counts, Stance.DISAGREE, sids, shown, settings),
        group_informed_consensus=_group_informed_consensus(group_counts, sids, shown),
        divisive=_divisive(group_counts, sids, shown, settings),
        silhouette=silhouette,
        settings=settings,
        moderated_out=out_ids,
    )


def _validate(matrix: FloatArray, pids: tuple[ParticipantId, ...], sids: tuple[StatementId, ...]) -> None:
    if matrix.ndim != 2:
        raise ValueError("votes must be a 2-D participants × statements matrix")
    if matrix.shape != (len(pids), len(sids)):
        raise ValueError(f"votes has shape {matrix.shape}, ids give ({len(pids)}, {len(sids)})")
    if len(set(pids)) != len(pids) or len(set(sids)) != len(sids):
        raise ValueError("participant and statement ids must be unique")
    valid = np.isnan(matrix) | (matrix == 1.0) | (matrix == 0.0) | (matrix == -1.0)
    if not bool(valid.all()):
        raise ValueError("votes must be +1 (agree), -1 (disagree), 0 (pass) or NaN (unseen)")


def _project(
    matrix: FloatArray, seen: NDArray[np.bool_], agree: NDArray[np.bool_], disagree: NDArray[np.bool_], votes: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Positions (n, 2), statement means (s,) and the two axes' loadings (2, s)."""
    n_participants, n_statements = matrix.shape
    coordinates = np.zeros((n_participants, 2), dtype=np.float64)
    loadings = np.zeros((2, n_statements), dtype=np.float64)
    if n_participants == 0 or n_statements == 0:
        return coordinates, np.zeros(n_statements, dtype=np.float64), loadings
    seen_per_statement = seen.sum(axis=0, dtype=np.int64)
    net = agree.sum(axis=0, dtype=np.int64) - disagree.sum(axis=0, dtype=np.int64)
    statement_mean = net / np.maximum(seen_per_statement, 1)
    # Imputing unseen cells with the statement's mean leaves that mean as the column's mean, so the centred,
    # imputed matrix is the vote minus the mean where seen and exactly 0 where unseen.
    centred = matrix - statement_mean
    np.nan_to_num(centred, copy=False, nan=0.0)
    covariance = centred.T @ centred
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1][:2]
    components = eigenvectors[:, order].T  # (<=2, n_statements)
    for row in components:
        # Deterministic orientation: the largest loading is positive.
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1.0
    projected = centred @ components.T
    del centred
    scale = np.zeros(n_participants, dtype=np.float64)
    voted = votes > 0
    scale[voted] = np.sqrt(n_statements / votes[voted])
    coordinates[:, : projected.shape[1]] = projected * scale[:, None]
    loadings[: components.shape[0]] = components
    return coordinates, np.asarray(statement_mean, dtype=np.float64), loadings


def _extremity(statement_means: FloatArray, loadings: FloatArray) -> FloatArray:
    """Polis's comment extremity: the distance from the centre of a virtual participant who agreed with this one
    statement and saw no other. Projected like any participant: ``sqrt(s / 1) * (1 - mean) * loading``."""
    n_statements = statement_means.shape[0]
    scale = np.sqrt(float(n_statements)) * np.abs(1.0 - statement_means)
    return np.asarray(scale * np.linalg.norm(loadings, axis=0), dtype=np.float64)


def _importance(counts: _Counts, extremity: FloatArray) -> FloatArray:
    """Polis's importance-metric: ``pa * (1 - pp) * (1 + extremity)``, with ``p = (n + 1) / (ns + 2)``."""
    passed = counts.ns - counts.na - counts.nd
    pa = (counts.na + 1.0) / (counts.ns + 2.0)
    pp = (passed + 1.0) / (counts.ns + 2.0)
    return np.asarray(pa * (1.0 - pp) * (1.0 + extremity), dtype=np.float64)


def _cluster(
    coordinates: FloatArray, clustered: NDArray[np.bool_], settings: OpinionMapSettings
) -> tuple[IntArray, float | None]:
    group_of = np.full(coordinates.shape[0], NOT_CLUSTERED, dtype=np.int64)
    rows = np.flatnonzero(clustered)
    if rows.size == 0:
        return group_of, None
    points = coordinates[rows]
    # Positions equal up to rounding noise count once, or k-means would be asked for more clusters than points.
    distinct = np.unique(np.round(points, 9), axis=0).shape[0]
    n_base = min(settings.base_clusters, distinct)
    if n_base == 1:
        group_of[rows] = 0
        return group_of, None
    base = KMeans(n_clusters=n_base, n_init=1, random_state=settings.random_state).fit(points)
    base_labels = np.asarray(base.labels_, dtype=np.int64)
    centres = np.asarray(base.cluster_centers_, dtype=np.float64)
    weights = np.bincount(base_labels, minlength=n_base).astype(np.float64)

    best_labels = np.arange(n_base, dtype=np.int64)
    best_score: float | None = None
    for k in range(settings.min_groups, min(settings.max_groups, n_base - 1) + 1):
        model = KMeans(n_clusters=k, n_init=10, random_state=settings.random_state)
        labels = np.asarray(model.fit(centres, sample_weight=weights).labels_, dtype=np.int64)
        if np.unique(labels).size < 2:
            continue
        score = float(silhouette_score(centres, labels))
        if best_score is None or score > best_score:
            best_score, best_labels = score, labels

    raw = best_labels[base_labels]
    # Number groups by size (largest first), ties by the group's first member: stable across runs.
    sizes = np.bincount(raw)
    present = np.flatnonzero(sizes)
    first_member = np.array([np.flatnonzero(raw == label)[0] for label in present])
    order = sorted(range(present.size), key=lambda i: (-int(sizes[present[i]]), int(first_member[i])))
    renumber = np.full(sizes.size, NOT_CLUSTERED, dtype=np.int64)
    for new, i in enumerate(order):
        renumber[present[i]] = new
    group_of[rows] = renumber[raw]
    return group_of, best_score


def _counts(agree: NDArray[np.bool_], disagree: NDArray[np.bool_], seen: NDArray[np.bool_]) -> _Counts:
    return _Counts(
        na=agree.sum(axis=0, dtype=np.int64).astype(np.float64),
        nd=disagree.sum(axis=0, dtype=np.int64).astype(np.float64),
        ns=seen.sum(axis=0, dtype=np.int64).astype(np.float64),
    )


def _rest(group_counts: list[_Counts], g: int) -> _Counts:
    others = [c for i, c in enumerate(group_counts) if i != g]
    if not others:
        zero = np.zeros_like(group_counts[g].na)
        return _Counts(na=zero, nd=zero, ns=zero)
    return _Counts(
        na=np.sum([c.na for c in others], axis=0),
        nd=np.sum([c.nd for c in others], axis=0),
        ns=np.sum([c.ns for c in others], axis=0),
    )


@dataclass(frozen=True, slots=True)
class _Repness:
    """Polis's per (group, statement) statistics, one array per key, indexed by statement."""

    na: FloatArray
    nd: FloatArray
    ns: FloatArray
    pa: FloatArray
    pd: FloatArray
    pat: FloatArray
    pdt: FloatArray
    ra: FloatArray
    rd: FloatArray
    rat: FloatArray
    rdt: FloatArray


def _repness(group: _Counts, rest: _Counts) -> _Repness:
    pa = (1.0 + group.na) / (2.0 + group.ns)
    pd = (1.0 + group.nd) / (2.0 + group.ns)
    return _Repness(
        na=group.na,
        nd=group.nd,
        ns=group.ns,
        pa=pa,
        pd=pd,
        pat=prop_test(group.na, group.ns),
        pdt=prop_test(group.nd, group.ns),
        ra=pa / ((1.0 + rest.na) / (2.0 + rest.ns)),
        rd=pd / ((1.0 + rest.nd) / (2.0 + rest.ns)),
        rat=two_prop_test(group.na, rest.na, group.ns, rest.ns),
        rdt=two_prop_test(group.nd, rest.nd, group.ns, rest.ns),
    )


def _finalize(stats: _Repness, j: int, sid: StatementId, best_agree: bool = False) -> RepresentativeStatement:
    if stats.rat[j] > stats.rdt[j]:
        values = (Stance.AGREE, stats.na[j], stats.pa[j], stats.pat[j], stats.ra[j], stats.rat[j])
    else:
        values = (Stance.DISAGREE, stats.nd[j], stats.pd[j], stats.pdt[j], stats.rd[j], stats.rdt[j])
    stance, n_success, p_success, p_test, repness, repness_test = values
    return RepresentativeStatement(
        statement_id=sid,
        stance=stance,
        n_success=int(n_success),
        n_trials=int(stats.ns[j]),
        p_success=float(p_success),
        p_test=float(p_test),
        repness=float(repness),
        repness_test=float(repness_test),
        best_agree=best_agree,
    )


def _beats_best_agree(s: _Repness, j: int, best: int | None) -> bool:
    if s.na[j] == 0 and s.nd[j] == 0:
        return False
    if best is not None and s.ra[best] > 1.0:
        return bool(s.ra[j] * s.rat[j] * s.pa[j] * s.pat[j] > s.ra[best] * s.rat[best] * s.pa[best] * s.pat[best])
    if best is not None:
        return bool(s.pa[j] * s.pat[j] > s.pa[best] * s.pat[best])
    return bool(s.pat[j] > Z_90 or (s.ra[j] > 1.0 and s.pa[j] > 0.5))


def _representative(
    group: _Counts,
    rest: _Counts,
    sids: tuple[StatementId, ...],
    shown: NDArray[np.bool_],
    settings: OpinionMapSettings,
) -> tuple[RepresentativeStatement, ...]:
    """Polis's ``select-rep-comments`` for one group, over the statements not moderated out."""
    s = _repness(group, rest)
    passes = ((s.rat > Z_90) & (s.pat > Z_90)) | ((s.rdt > Z_90) & (s.pdt > Z_90))
    sufficient: list[RepresentativeStatement] = []
    best: RepresentativeStatement | None = None
    best_agree: int | None = None
    for j, sid in enumerate(sids):
        if not shown[j]:
            continue
        if passes[j]:
            sufficient.append(_finalize(s, j, sid))
        if not sufficient and (best is None or max(s.rat[j], s.rdt[j]) > best.repness_test):
            best = _finalize(s, j, sid)
        if _beats_best_agree(s, j, best_agree):
            best_agree = j
    head = [] if best_agree is None else [_finalize(s, best_agree, sids[best_agree], best_agree=True)]
    if not sufficient:
        return tuple(head or ([best] if best is not None else []))
    head_ids = {r.statement_id for r in head}
    ranked = sorted(
        (r for r in sufficient if r.statement_id not in head_ids),
        key=lambda r: -(r.repness * r.repness_test * r.p_success * r.p_test),
    )
    chosen = (head + ranked)[: settings.max_representative]
    return tuple([r for r in chosen if r.stance is Stance.AGREE] + [r for r in chosen if r.stance is Stance.DISAGREE])


def _consensus(
    counts: _Counts,
    stance: Stance,
    sids: tuple[StatementId, ...],
    shown: NDArray[np.bool_],
    settings: OpinionMapSettings,
) -> tuple[ConsensusStatement, ...]:
    """Polis's ``select-consensus-comments`` for one stance."""
    n_success = counts.na if stance is Stance.AGREE else counts.nd
    p = (1.0 + n_success) / (2.0 + counts.ns)
    p_test = prop_test(n_success, counts.ns)
    candidates = np.flatnonzero((p > 0.5) & (p_test > Z_90) & shown)
    ranked = sorted(candidates.tolist(), key=lambda j: -float(p[j] * p_test[j]))[: settings.max_consensus]
    return tuple(
        ConsensusStatement(
            statement_id=sids[j],
            stance=stance,
            n_success=int(n_success[j]),
            n_trials=int(counts.ns[j]),
            p_success=float(p[j]),
            p_test=float(p_test[j]),
        )
        for j in ranked
    )


def _group_informed_consensus(
    group_counts: list[_Counts], sids: tuple[StatementId, ...], shown: NDArray[np.bool_]
) -> tuple[GroupInformedConsensus, ...]:
    if not group_counts:
        return ()
    agree = np.prod([(1.0 + c.na) / (2.0 + c.ns) for c in group_counts], axis=0)
    disagree = np.prod([(1.0 + c.nd) / (2.0 + c.ns) for c in group_counts], axis=0)
    order = sorted((j for j in range(len(sids)) if shown[j]), key=lambda j: -float(agree[j]))
    return tuple(
        GroupInformedConsensus(statement_id=sids[j], agree=float(agree[j]), disagree=float(disagree[j])) for j in order
    )


def _divisive(
    group_counts: list[_Counts], sids: tuple[StatementId, ...], shown: NDArray[np.bool_], settings: OpinionMapSettings
) -> tuple[DivisiveStatement, ...]:
    if len(group_counts) < 2:
        return ()
    support = np.array([(c.na - c.nd) / (c.ns + 2.0) for c in group_counts])  # (groups, statements)
    spread = support.max(axis=0) - support.min(axis=0)
    candidates = [j for j in range(len(sids)) if shown[j] and spread[j] >= settings.min_divisiveness - 1e-12]
    ranked = sorted(candidates, key=lambda j: -float(spread[j]))[: settings.max_divisive]
    return tuple(
        DivisiveStatement(
            statement_id=sids[j],
            divisiveness=float(spread[j]),
            group_support=tuple(float(x) for x in support[:, j]),
        )
        for j in ranked
    )


__all__ = [
    "NOT_CLUSTERED",
    "Z_90",
    "ConsensusStatement",
    "DivisiveStatement",
    "Group",
    "GroupInformedConsensus",
    "OpinionMap",
    "OpinionMapSettings",
    "ParticipantId",
    "RepresentativeStatement",
    "Stance",
    "StatementId",
    "compute_opinion_map",
    "prop_test",
    "two_prop_test",
]
