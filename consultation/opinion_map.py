"""The opinion map of a consultation: where participants stand, which groups they form, what each group stands for.

Pure computation over a votes matrix (participants × statements; agree = +1, disagree = -1, pass = 0, unseen =
NaN; or given one cell per vote, compute_opinion_map_from_cells, as the stored votes are), following the Polis
method (compdemocracy/polis ``math/``, and red-dwarf's Python re-implementation):

1. Unseen cells are imputed with the statement's mean vote (over the participants who saw it; 0 when nobody did).
2. PCA to two dimensions (the two leading eigenvectors of the 's × s' covariance of the imputed, centred matrix),
   fitted on every participant. The centred matrix is as sparse as the votes (0 where unseen): a small one is
   made dense and its covariance eigendecomposed exactly; a large one (a city-wide consultation, 100,000 × 1,000)
   stays sparse and its axes come from Lanczos iterations (ARPACK) to machine precision (``_DENSE_PCA_CELLS``).
   Each participant's projection is scaled by ``sqrt(n_statements / n_votes)``, Polis's correction that pulls
   sparse voters out of the centre (a participant with no vote sits at the origin).
3. Clustering, as Pol.is's: the participants with at least ``min_votes`` votes (7, or every statement when there
   are fewer; passes count as votes), those an earlier map clustered, and while fewer than ``greedy_participants``
   (15) are, the most active voters, are put into up to 100 base clusters by k-means, then the base clusters'
   centres, weighted by their sizes, into k groups for each k from 2 to ``min(5, 2 + base clusters // 12)``. The
   silhouette of the base centres picks the best k, and Pol.is's k-smoother (consultation.group_count) decides
   the k shown. With ``previous`` (consultation.map_memory: what the last map of a live consultation
   remembers), every k-means starts from the last map's clusters, as Pol.is's updates do; without, the base
   clusters start from the first distinct positions in the order of the participants' ids. With ``advance``
   False the map shows exactly the groups ``previous`` holds (the outcome's, in the exports). Groups are numbered
   by size, largest first. Nothing is random: the same votes and memory give the same groups, whatever the
   order of the rows.
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
  participants in large conversations); this module does an exact PCA from scratch each time, over every
  participant (Lanczos iterations from a fixed start on large maps, not warm-started: the same votes always give
  the same axes). Axes may come out
  rotated or mirrored relative to Polis's map (this module fixes each axis's sign so that the statement with the
  largest loading has a positive one); distances and groups are what matter.
- Pol.is's k-means for the groups starts from the last update's groups only (at first, from the first k base
  clusters). Here the lowest inertia of up to three runs wins: from the last groups, from the first k base
  clusters, and from Pol.is's clean start grown from one cluster of everyone (the farthest point from every
  centre starts the next cluster). Pol.is would keep a poor first split forever; a split found this way
  replaces the remembered one only when it is tighter.
- Pol.is keeps its base clusters between updates and recomputes positions incrementally; a map here is computed
  when a vote asks for one at most every ``consultation.map_refresh_minutes`` (5 by default), so the history it
  carries is coarser than Pol.is's (which updates every few seconds in an active conversation).
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
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from consultation.group_count import POLIS_GROUP_K_BUFFER, smooth_group_count
from consultation.map_memory import ClusteringMemory, Clusters

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
    # Pol.is's :base-iters (100 in compdemocracy/polis math/src/polismath/math/conversation.clj's defaults), and
    # its kmeans's default max-iters (20), which its group clustering runs with: the :cluster-iters it passes is a
    # key its kmeans does not read. Both stop sooner once no centre moves by 0.01 (same-clustering?).
    base_iterations: int = 100
    group_iterations: int = 20
    group_k_buffer: int = POLIS_GROUP_K_BUFFER
    # Pol.is's greedy-n: while fewer are clustered, the most active voters are, whatever their number of votes.
    greedy_participants: int = 15

    def __post_init__(self) -> None:
        if (
            self.min_votes < 1
            or self.base_clusters < 1
            or not 2 <= self.min_groups <= self.max_groups
            or self.base_iterations < 0
            or self.group_iterations < 0
            or self.group_k_buffer < 1
            or self.greedy_participants < 0
        ):
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
    # What the next map of a live consultation starts from (Pol.is's history: base and group clusters, the group
    # count's smoother); None when fewer than two positions could be clustered.
    memory: ClusteringMemory | None = None
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
    previous: ClusteringMemory | None = None,
    advance: bool = True,
) -> OpinionMap:
    """The opinion map of ``votes`` (participants × statements: +1 agree, -1 disagree, 0 pass, NaN unseen).

    ``moderated_out``: statements of ``statement_ids`` taken out by a moderator after votes were cast on them,
    handled as Polis does (the module docstring); ids not among ``statement_ids`` are ignored, as Polis ignores
    moderating out a comment nobody voted on.

    The dense form, for tests and comparisons: the stored votes go to compute_opinion_map_from_cells, which this
    calls with the matrix's seen cells."""
    matrix = np.asarray(votes, dtype=np.float64)
    pids = tuple(participant_ids)
    sids = tuple(statement_ids)
    _validate(matrix, pids, sids)
    rows, columns = np.nonzero(~np.isnan(matrix))
    values = matrix[rows, columns].astype(np.int8)
    return compute_opinion_map_from_cells(
        rows, columns, values, pids, sids, settings, moderated_out, previous=previous, advance=advance
    )


def compute_opinion_map_from_cells(
    rows: ArrayLike,
    columns: ArrayLike,
    values: ArrayLike,
    participant_ids: Sequence[ParticipantId],
    statement_ids: Sequence[StatementId],
    settings: OpinionMapSettings | None = None,
    moderated_out: Collection[StatementId] = (),
    previous: ClusteringMemory | None = None,
    advance: bool = True,
) -> OpinionMap:
    """The opinion map of the votes given one per voted cell: participant ``participant_ids[rows[i]]`` voted
    ``values[i]`` (+1 agree, -1 disagree, 0 pass) on statement ``statement_ids[columns[i]]``; every other cell is
    unseen. The cells may come in any order, at most one per participant and statement (the store's unique
    constraint holds it; it is not checked here, as that would sort millions of cells). ``moderated_out`` as in
    compute_opinion_map.

    The same map as compute_opinion_map's of the dense matrix, computed without it: a city-wide consultation's
    100,000 × 1,000 float matrix would take 800 MB a copy, where its ten million votes take 90 MB as cells."""
    settings = settings or OpinionMapSettings()
    given = tuple(participant_ids)
    sids = tuple(statement_ids)
    _validate_ids(given, sids)
    row, column, value = _validate_cells(rows, columns, values, len(given), len(sids))
    n_participants = len(given)
    # The positions and the clustering are computed over the participants in the order of their ids, whatever
    # order they came in (the cells keep theirs: renumbering ten million of them would cost more than the map's
    # own sums): the clustering starts from the first distinct positions in that order, as Pol.is's matrix keeps
    # its rows, and the floating-point sums of the PCA are then the same to the last bit, so that no tie between
    # two equally good groupings can fall one way for one order of the rows and the other way for another.
    order = np.array(sorted(range(n_participants), key=given.__getitem__), dtype=np.int64)
    position = np.empty(n_participants, dtype=np.int64)
    position[order] = np.arange(n_participants, dtype=np.int64)
    by_id = tuple(given[i] for i in order)
    out_ids = frozenset(moderated_out) & frozenset(sids)
    moderated = np.array([sid in out_ids for sid in sids], dtype=np.bool_)
    shown = ~moderated

    # Votes on moderated-out statements still count toward the clustering threshold (Polis counts them in its
    # raw rating matrix).
    vote_counts = np.bincount(row, minlength=n_participants).astype(np.int64)
    coordinates, statement_means, loadings = _project(row, column, value, n_participants, moderated, order)
    clustered = _in_conversation(vote_counts[order], by_id, len(sids), settings, previous)
    clustering = _cluster(np.ascontiguousarray(coordinates[order]), clustered, by_id, settings, previous, advance)
    group_of = np.ascontiguousarray(clustering.group_of[position])
    n_groups = int(group_of.max()) + 1 if n_participants else 0
    group_counts, all_counts = _counts(group_of, n_groups, row, column, value, len(sids))
    pids = given

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
        silhouette=clustering.silhouette,
        settings=settings,
        moderated_out=out_ids,
        memory=clustering.memory,
    )


def _validate(matrix: FloatArray, pids: tuple[ParticipantId, ...], sids: tuple[StatementId, ...]) -> None:
    if matrix.ndim != 2:
        raise ValueError("votes must be a 2-D participants × statements matrix")
    if matrix.shape != (len(pids), len(sids)):
        raise ValueError(f"votes has shape {matrix.shape}, ids give ({len(pids)}, {len(sids)})")
    valid = np.isnan(matrix) | (matrix == 1.0) | (matrix == 0.0) | (matrix == -1.0)
    if not bool(valid.all()):
        raise ValueError("votes must be +1 (agree), -1 (disagree), 0 (pass) or NaN (unseen)")


def _validate_ids(pids: tuple[ParticipantId, ...], sids: tuple[StatementId, ...]) -> None:
    if len(set(pids)) != len(pids) or len(set(sids)) != len(sids):
        raise ValueError("participant and statement ids must be unique")


def _validate_cells(
    rows: ArrayLike, columns: ArrayLike, values: ArrayLike, n_participants: int, n_statements: int
) -> tuple[NDArray[np.integer], NDArray[np.integer], NDArray[np.integer]]:
    """The cells as integer arrays, as they were given (no copy of millions of cells): each in range."""
    row, column, value = np.asarray(rows), np.asarray(columns), np.asarray(values)
    if row.ndim != 1 or row.shape != column.shape or row.shape != value.shape:
        raise ValueError("rows, columns and values must be 1-D arrays of the same length")
    if row.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    if not all(np.issubdtype(array.dtype, np.integer) for array in (row, column, value)):
        raise ValueError("rows, columns and values must be integers")
    if row.min() < 0 or row.max() >= n_participants or column.min() < 0 or column.max() >= n_statements:
        raise ValueError("a cell's row or column is out of range")
    if value.min() < -1 or value.max() > 1:
        raise ValueError("values must be +1 (agree), -1 (disagree) or 0 (pass)")
    return row, column, value


# Up to this many participants × statements, the PCA builds the dense centred matrix and eigendecomposes its
# exact s × s covariance (LAPACK), as it always did: the small maps of tests and red-dwarf's comparisons stay
# equal to the last bit, and it is as fast as anything there (at 2 million cells, 16 MB and a fraction of a
# second). Above it the dense matrix (8 bytes a cell, 800 MB at 100,000 × 1,000) and the covariance's product
# (n·s² multiplications: 10^11 at that size, a minute on two cores) would not do: the two leading eigenvectors
# come from Lanczos iterations (ARPACK) over the sparse centred matrix instead, as precise (machine precision,
# checked against the dense route by tests/test_opinion_map_scale.py) at a few sparse products of the votes.
_DENSE_PCA_CELLS = 2_000_000
# With so few statements the dense matrix is small whatever the number of participants, and Lanczos needs more
# statements than the eigenvectors it looks for.
_DENSE_PCA_STATEMENTS = 8


def _project(
    row: NDArray[np.integer],
    column: NDArray[np.integer],
    value: NDArray[np.integer],
    n_participants: int,
    moderated: NDArray[np.bool_],
    order: IntArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Positions (n, 2), statement means (s,) and the two axes' loadings (2, s). The participants' rows are
    summed in ``order`` (the order of their ids), so that the axes do not depend on the order of the cells."""
    n_statements = moderated.size
    coordinates = np.zeros((n_participants, 2), dtype=np.float64)
    loadings = np.zeros((2, n_statements), dtype=np.float64)
    if n_participants == 0 or n_statements == 0:
        return coordinates, np.zeros(n_statements, dtype=np.float64), loadings
    if moderated.any():
        # Polis's zero-out-columns: the whole column becomes 0 for everyone, unseen cells included, so it adds
        # nothing to the PCA (its mean is 0 and so is every centred cell: its votes are dropped here) but counts as
        # a vote of every participant in the sparse-voter scaling.
        kept = ~moderated[column]
        row, column, value = row[kept], column[kept], value[kept]
    votes = np.bincount(row, minlength=n_participants) + int(moderated.sum())
    seen_per_statement = np.bincount(column, minlength=n_statements)
    # Sums of ±1 and 0, exact in floating point: the same means as counting agrees and disagrees.
    net = np.bincount(column, weights=value, minlength=n_statements)
    statement_mean = net / np.maximum(seen_per_statement, 1)
    # Imputing unseen cells with the statement's mean leaves that mean as the column's mean, so the centred,
    # imputed matrix is the vote minus the mean where seen and exactly 0 where unseen: as sparse as the votes.
    centred_values = value - statement_mean[column]
    if n_participants * n_statements <= _DENSE_PCA_CELLS or n_statements <= _DENSE_PCA_STATEMENTS:
        centred = np.zeros((n_participants, n_statements), dtype=np.float64)
        centred[row, column] = centred_values
        centred = centred[order]
        components = _leading_axes(np.linalg.eigh(centred.T @ centred))
        projected = np.empty((n_participants, components.shape[0]), dtype=np.float64)
        projected[order] = centred @ components.T
        del centred
    else:
        projected, components = _sparse_projection(row, column, centred_values, n_participants, n_statements, order)
    scale = np.zeros(n_participants, dtype=np.float64)
    voted = votes > 0
    scale[voted] = np.sqrt(n_statements / votes[voted])
    coordinates[:, : projected.shape[1]] = projected * scale[:, None]
    loadings[: components.shape[0]] = components
    return coordinates, np.asarray(statement_mean, dtype=np.float64), loadings


def _leading_axes(decomposition: tuple[FloatArray, FloatArray]) -> FloatArray:
    """The (at most) two eigenvectors of largest eigenvalue, as rows (<=2, s), each oriented so that its largest
    loading is positive: an eigenvector's sign is arbitrary, the map's must not be."""
    eigenvalues, eigenvectors = decomposition
    order = np.argsort(eigenvalues)[::-1][:2]
    components = np.ascontiguousarray(eigenvectors[:, order].T)
    for component in components:
        if component[np.argmax(np.abs(component))] < 0:
            component *= -1.0
    return components


def _sparse_projection(
    row: NDArray[np.integer], column: NDArray[np.integer], centred_values: FloatArray, n: int, s: int, order: IntArray
) -> tuple[FloatArray, FloatArray]:
    """The projection (n, 2) and the axes (2, s) of the centred matrix held sparse: the covariance ZᵀZ is never
    formed, ARPACK's Lanczos iterations only multiply by Z and Zᵀ (Pol.is itself finds its axes by power
    iteration). To machine precision (tol=0), from a fixed starting vector: the same axes at every run."""
    # scipy (installed with scikit-learn) is loaded only for maps this large.
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    # The rows in ``order``, each row's cells in column order, whatever order the votes were read in: the sums, and
    # the axes to the last bit, do not depend on it. Built so from renumbered rows: taking the rows of a built
    # matrix in order would copy all of it.
    position = np.empty(n, dtype=row.dtype)
    position[order] = np.arange(n, dtype=row.dtype)
    centred = csr_matrix((centred_values, (position[row], column)), shape=(n, s), dtype=np.float64)
    centred.sort_indices()
    transposed = centred.T  # a view (CSC), not a copy

    def covariance_times(vector: FloatArray) -> FloatArray:
        return np.asarray(transposed @ (centred @ vector), dtype=np.float64)

    if centred.count_nonzero() == 0:
        # No axis at all: what eigh gives for a zero covariance, as the dense route would.
        components = _leading_axes(np.linalg.eigh(np.zeros((s, s), dtype=np.float64)))
    else:
        operator = LinearOperator((s, s), matvec=covariance_times, dtype=np.float64)
        start = np.random.default_rng(0).standard_normal(s)
        try:
            components = _leading_axes(eigsh(operator, k=2, which="LA", v0=start, tol=0.0))
        except ArpackNoConvergence:
            # Not seen in practice (the leading eigenvalues of votes stand apart); the exact covariance then, a
            # block of dense rows at a time: slow at this size, but right.
            components = _leading_axes(np.linalg.eigh(_blocked_covariance(centred)))
    projected = np.empty((n, components.shape[0]), dtype=np.float64)
    projected[order] = centred @ components.T
    return projected, components


def _blocked_covariance(centred: Any) -> FloatArray:
    """ZᵀZ of a sparse Z, from dense blocks of rows of at most _DENSE_PCA_CELLS cells."""
    n, s = centred.shape
    covariance = np.zeros((s, s), dtype=np.float64)
    step = max(1, _DENSE_PCA_CELLS // s)
    for start in range(0, n, step):
        block = centred[start : start + step].toarray()
        covariance += block.T @ block
    return covariance


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


@dataclass(frozen=True, slots=True)
class _Clustering:
    group_of: IntArray
    silhouette: float | None
    memory: ClusteringMemory | None


def _cluster(
    coordinates: FloatArray,
    clustered: NDArray[np.bool_],
    pids: tuple[ParticipantId, ...],
    settings: OpinionMapSettings,
    previous: ClusteringMemory | None,
    advance: bool,
) -> _Clustering:
    group_of = np.full(coordinates.shape[0], NOT_CLUSTERED, dtype=np.int64)
    rows = np.flatnonzero(clustered)  # in the order of the participants' ids (compute_opinion_map_from_cells)
    if rows.size == 0:
        return _Clustering(group_of, None, previous)
    points = np.ascontiguousarray(coordinates[rows])
    members = tuple(pids[i] for i in rows)
    if previous is not None and not advance:
        return _recall(group_of, rows, points, members, previous)
    known = _labels_of(members, previous.base) if previous is not None else None
    base_ids, centres = _polis_kmeans(points, None, known, settings.base_clusters, settings.base_iterations)
    order = np.argsort(centres.ids)  # Pol.is sorts base clusters by id
    base_order = centres.ids[order]
    base_centres = centres.positions[order]
    weights = np.bincount(np.searchsorted(base_order, base_ids), minlength=base_order.size).astype(np.float64)
    base = Clusters(members, tuple(int(b) for b in base_ids))
    if base_order.size == 1:
        group_of[rows] = 0
        return _Clustering(group_of, None, None)
    # Pol.is's max-k-fn: more groups only once there are enough base clusters to tell them apart.
    max_k = min(settings.max_groups, 2 + base_order.size // 12)
    distances = np.sqrt(((base_centres[:, None, :] - base_centres[None, :, :]) ** 2).sum(axis=2))
    base_members = tuple(int(b) for b in base_order)
    clusterings: dict[int, Clusters] = {}
    silhouettes: dict[int, float] = {}
    for k in range(settings.min_groups, max_k + 1):
        last = previous.groups_for(k) if previous is not None else None
        known_groups = _labels_of(base_members, last) if last is not None else None
        labels, _ = _polis_kmeans(base_centres, weights, known_groups, k, settings.group_iterations)
        if np.unique(labels).size < 2:
            continue
        clusterings[k] = Clusters(base_members, tuple(int(g) for g in labels))
        silhouettes[k] = _silhouette(distances, np.unique(labels, return_inverse=True)[1])
    if not clusterings:
        group_of[rows] = 0
        return _Clustering(group_of, None, None)
    # The best k of this map; ties go to the fewer groups.
    best_k = max(sorted(silhouettes), key=lambda k: silhouettes[k])
    state = smooth_group_count(previous.group_count if previous else None, best_k, clusterings, settings.group_k_buffer)
    chosen = clusterings[state.shown_k]
    group_of[rows] = _numbered(np.asarray(chosen.labels)[np.searchsorted(base_order, base_ids)])
    memory = ClusteringMemory(base, tuple(sorted(clusterings.items())), state)
    return _Clustering(group_of, silhouettes[state.shown_k], memory)


def _recall(
    group_of: IntArray, rows: IntArray, points: FloatArray, members: tuple[ParticipantId, ...], memory: ClusteringMemory
) -> _Clustering:
    """The groups a stored memory gives, unchanged (the map of a closed consultation, as its outcome told them):
    each participant in the base cluster the memory puts them in, one it does not know in the nearest."""
    known = _labels_of(members, memory.base)
    ids = np.unique(known[known >= 0])
    if ids.size == 0:
        return _Clustering(group_of, None, memory)
    index = np.searchsorted(ids, known)
    centres = np.array([points[known == b].mean(axis=0) for b in ids])
    unknown = known < 0
    index[unknown] = _nearest(points[unknown], centres)
    chosen = memory.groups_for(memory.group_count.shown_k)
    if chosen is None:
        group_of[rows] = 0
        return _Clustering(group_of, None, memory)
    group_of_base = _labels_of(tuple(int(b) for b in ids), chosen)
    group_of[rows] = _numbered(np.where(group_of_base >= 0, group_of_base, 0)[index])
    return _Clustering(group_of, None, memory)


def _labels_of(members: Sequence[ParticipantId], clusters: Clusters) -> IntArray:
    """Each member's label in ``clusters``, -1 for one it does not hold."""
    label = dict(zip(clusters.members, clusters.labels, strict=True))
    return np.array([label.get(m, -1) for m in members], dtype=np.int64)


def _numbered(raw: IntArray) -> IntArray:
    """Groups numbered by size (largest first), ties by the group's first member: stable across runs."""
    present, compact = np.unique(raw, return_inverse=True)
    sizes = np.bincount(compact)
    first_member = np.array([np.flatnonzero(compact == i)[0] for i in range(present.size)])
    order = sorted(range(present.size), key=lambda i: (-int(sizes[i]), int(first_member[i])))
    renumber = np.empty(present.size, dtype=np.int64)
    for new, i in enumerate(order):
        renumber[i] = new
    return np.asarray(renumber[compact], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class _Centres:
    ids: IntArray
    positions: FloatArray


def _polis_kmeans(
    points: FloatArray, weights: FloatArray | None, known: IntArray | None, k: int, iterations: int
) -> tuple[IntArray, _Centres]:
    """The base clusters (``weights`` None) as Pol.is's kmeans (compdemocracy/polis
    math/src/polismath/math/clusters.clj) makes them: Lloyd steps from the last clustering when there is one
    (``known``: each point's cluster id then, -1 for a new point), from the first k distinct points otherwise.

    The groups (base clusters weighted by their sizes): the clustering of lowest inertia of Lloyd's runs from the
    last clustering, from the first k base clusters (Pol.is's two starts) and from Pol.is's clean start grown
    from one cluster of everyone (the point farthest from every centre starts each new cluster). None needs
    randomness. Pol.is runs from one start only, its last clustering or at first the first k base clusters,
    which are often neighbours: a run that settled in a poor split stays in it; the farthest-point start alone
    would split a lone far voter off from everyone else."""
    w = np.ones(points.shape[0], dtype=np.float64) if weights is None else weights
    remembered = known is not None and bool((known >= 0).any())
    if weights is None:
        if remembered:
            assert known is not None
            return _kmeans(points, w, _clean_start(points, w, known, k), iterations)
        first = _first_distinct(points, k)
        start = _Centres(np.arange(first.size, dtype=np.int64), np.asarray(points[first], dtype=np.float64))
        return _kmeans(points, w, start, iterations)
    first = _first_distinct(points, k)
    starts = [
        # Pol.is's first start: the first k base clusters (by id).
        _Centres(np.arange(first.size, dtype=np.int64), np.asarray(points[first], dtype=np.float64)),
        # Pol.is's clean start from one cluster of everyone.
        _clean_start(points, w, np.zeros(points.shape[0], dtype=np.int64), k),
    ]
    if remembered:
        assert known is not None
        starts.insert(0, _clean_start(points, w, known, k))
    best: tuple[float, tuple[IntArray, _Centres]] | None = None
    for start in starts:
        run = _kmeans(points, w, start, iterations)
        inertia = _inertia(points, w, *run)
        # The remembered clustering is first: a fresh one replaces it only when clearly better (not by rounding).
        if best is None or inertia < best[0] * (1.0 - 1e-9):
            best = (inertia, run)
    assert best is not None
    return best[1]


def _inertia(points: FloatArray, w: FloatArray, labels: IntArray, centres: _Centres) -> float:
    nearest = centres.positions[np.searchsorted(centres.ids, labels)]
    return float((w * ((points - nearest) ** 2).sum(axis=1)).sum())


def _in_conversation(
    vote_counts: IntArray,
    pids: tuple[ParticipantId, ...],
    n_statements: int,
    settings: OpinionMapSettings,
    previous: ClusteringMemory | None,
) -> NDArray[np.bool_]:
    """Who is clustered, as Pol.is's in-conv: those with at least min_votes votes, or votes on every statement when
    there are fewer; once clustered, always (the last map's base clusters hold them); and while fewer than
    ``greedy_participants`` are, the most active voters up to that many, so that an early map has groups."""
    clustered = vote_counts >= min(settings.min_votes, max(n_statements, 1))
    if previous is not None:
        remembered = frozenset(previous.base.members)
        clustered |= np.fromiter((pid in remembered for pid in pids), dtype=np.bool_, count=len(pids))
    missing = settings.greedy_participants - int(clustered.sum())
    if missing > 0:
        candidates = np.flatnonzero(~clustered & (vote_counts > 0))
        # Most votes first; among equals the earlier row, which is the earlier participant id (the rows are in id
        # order, as Pol.is's).
        ranked = candidates[np.argsort(-vote_counts[candidates], kind="stable")]
        clustered[ranked[:missing]] = True
    return clustered


def _first_distinct(points: FloatArray, k: int) -> IntArray:
    """Pol.is's init-clusters: the rows of the first k distinct positions, in the order of the rows."""
    _, first = np.unique(points, axis=0, return_index=True)
    return np.asarray(np.sort(first)[:k], dtype=np.int64)


def _means(points: FloatArray, w: FloatArray, labels: IntArray) -> _Centres:
    ids, compact = np.unique(labels, return_inverse=True)
    totals = np.bincount(compact, weights=w, minlength=ids.size)
    positions = np.empty((ids.size, points.shape[1]), dtype=np.float64)
    for d in range(points.shape[1]):
        positions[:, d] = np.bincount(compact, weights=w * points[:, d], minlength=ids.size) / totals
    return _Centres(np.asarray(ids, dtype=np.int64), positions)


def _clean_start(points: FloatArray, w: FloatArray, known: IntArray, k: int) -> _Centres:
    """Pol.is's clean-start-clusters: the last clusters recentred on their members' new positions (new points
    join none yet), clusters at the same place merged, then, while fewer than k clusters and than distinct
    positions, the point farthest from every centre leaves its cluster to start a new one."""
    labels = known.copy()
    member = labels >= 0
    centres = _means(points[member], w[member], labels[member])
    # Identical centres merge into the cluster of the larger (Pol.is's uniqify-clusters).
    _, first, inverse = np.unique(centres.positions, axis=0, return_index=True, return_inverse=True)
    if first.size < centres.ids.size:
        sizes = np.bincount(np.searchsorted(centres.ids, labels[member]), minlength=centres.ids.size)
        places = inverse.ravel().tolist()
        keep: dict[int, int] = {}
        for i, place in enumerate(places):
            if place not in keep or sizes[i] > sizes[keep[place]]:
                keep[place] = i
        target = {int(centres.ids[i]): int(centres.ids[keep[place]]) for i, place in enumerate(places)}
        labels[member] = [target[int(x)] for x in labels[member]]
        centres = _means(points[member], w[member], labels[member])
    possible = min(k, np.unique(points, axis=0).shape[0])
    next_id = int(centres.ids.max()) + 1
    while centres.ids.size < possible:
        distance = np.sqrt(_squared_distances(points, centres.positions).min(axis=1))
        far = int(np.argmax(distance))
        if distance[far] <= 0.0:
            break
        labels[far] = next_id
        next_id += 1
        member = labels >= 0
        centres = _means(points[member], w[member], labels[member])
    return centres


def _squared_distances(points: FloatArray, centres: FloatArray) -> FloatArray:
    return np.asarray(((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), dtype=np.float64)


def _nearest(points: FloatArray, centres: FloatArray) -> IntArray:
    """The index of each point's nearest centre (the first of equals), a block of rows at a time so that the
    distances of 100,000 points to 100 centres never sit in memory at once."""
    labels = np.empty(points.shape[0], dtype=np.int64)
    centre_norms = (centres**2).sum(axis=1)
    for start in range(0, points.shape[0], _NEAREST_BLOCK):
        block = points[start : start + _NEAREST_BLOCK]
        # |x - c|^2 without |x|^2, which is the same for every centre of one point.
        labels[start : start + block.shape[0]] = np.argmin(centre_norms - 2.0 * block @ centres.T, axis=1)
    return labels


_NEAREST_BLOCK = 16_384
# Pol.is's same-clustering? threshold: centres closer than this to their counterparts count as unmoved.
_SAME_CLUSTERING = 0.01


def _kmeans(points: FloatArray, w: FloatArray, centres: _Centres, iterations: int) -> tuple[IntArray, _Centres]:
    """Lloyd steps as Pol.is's: a cluster left empty is dropped, and it stops when no centre moved by 0.01 or more
    (same-clustering?) or after ``iterations`` more steps. The labels are those of the last step."""
    for _ in range(iterations + 1):  # at least one step: iterations is never negative (OpinionMapSettings)
        labels = centres.ids[_nearest(points, centres.positions)]
        moved = _means(points, w, labels)
        settled = moved.positions.shape == centres.positions.shape and bool(
            np.all(
                np.linalg.norm(_sorted_rows(moved.positions) - _sorted_rows(centres.positions), axis=1)
                < _SAME_CLUSTERING
            )
        )
        centres = moved
        if settled:
            break
    return labels, centres


def _sorted_rows(positions: FloatArray) -> FloatArray:
    return np.asarray(positions[np.lexsort(positions.T[::-1])], dtype=np.float64)


def _silhouette(distances: FloatArray, labels: IntArray) -> float:
    """Pol.is's silhouette of a group clustering: the plain mean over the base clusters (not weighted by their
    sizes) of ``(b - a) / max(a, b)``, 0 for a base cluster alone in its group."""
    n = labels.size
    values = np.zeros(n, dtype=np.float64)
    groups = np.unique(labels)
    for i in range(n):
        own = labels == labels[i]
        own[i] = False
        if not own.any():
            continue
        a = float(distances[i, own].mean())
        b = min(float(distances[i, labels == g].mean()) for g in groups if g != labels[i])
        top = max(a, b)
        values[i] = 0.0 if top == 0.0 else (b - a) / top
    return float(values.mean())


def _counts(
    group_of: IntArray,
    n_groups: int,
    row: NDArray[np.integer],
    column: NDArray[np.integer],
    value: NDArray[np.integer],
    n_statements: int,
) -> tuple[list[_Counts], _Counts]:
    """Agree, disagree and seen counts per group and statement, and over every participant, in one pass over the
    votes: one bincount of (group, statement, vote) keys, the participants in no group in a slot of their own."""
    slot = np.where(group_of >= 0, group_of, n_groups)
    key = slot[row] * np.int64(n_statements)
    key += column
    key *= 3
    key += value
    key += 1  # 0 disagree, 1 pass, 2 agree
    table = np.bincount(key, minlength=(n_groups + 1) * n_statements * 3).reshape(n_groups + 1, n_statements, 3)
    del key

    def counts(votes: IntArray) -> _Counts:
        return _Counts(
            na=votes[:, 2].astype(np.float64),
            nd=votes[:, 0].astype(np.float64),
            ns=votes.sum(axis=1).astype(np.float64),
        )

    return [counts(table[g]) for g in range(n_groups)], counts(table.sum(axis=0))


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
    "ClusteringMemory",
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
    "compute_opinion_map_from_cells",
    "prop_test",
    "two_prop_test",
]
