"""Recognise which registered print-ad creative a phone photo shows (local features + geometry).

Method
------
1. Features: SIFT keypoints on the grey image reduced to `max_side`, stored with their SIFT
   descriptors (uint8, lossless) and compared as RootSIFT (square root of the L1-normalised
   descriptor, a unit vector: dot products are cosine similarities).
2. Shortlist: a two-level vocabulary tree (k-means of k-means, `Vocabulary`) turns descriptors into
   visual words; an inverted file scores every creative by tf-idf cosine similarity with the
   photo's words. Only the best `top_n` creatives are verified, so a scan never touches most of
   the index. Words present in many creatives (a retailer's logo, typeface, price band) get a low
   idf and count little.
3. Verification, per shortlisted creative: nearest-neighbour matching with Lowe's ratio test,
   one match per creative feature, then a homography by RANSAC (`cv2.USAC_MAGSAC`), checked for
   plausibility (finite, not mirrored, convex page outline, bounded perspective, anisotropy and
   size in the photo).
4. Template awareness: when creatives are added, each one is verified against its nearest
   neighbours in the index (same machinery, creative against creative). Features that are
   geometric inliers between two creatives are content the two share, in the same place: the
   retailer's template (logo, header, price band, small print). Each feature counts how many
   creatives share it; its weight in the verification score is 1 / (1 + that count), and a
   feature shared with none is *distinctive*.
5. Decision: the verified candidate with the highest weighted inlier score wins only if its
   inliers include enough distinctive features, spread over enough of the creative's distinctive
   area (grid cells), and its score clearly beats the runner-up's (`margin`). Otherwise `None`:
   a page that shares only the template, or a few words, with registered creatives is rejected.

Distinctiveness is learnt from the registered set: a template is recognised as such once at
least two creatives of it are registered (or a blank page of it is registered with
`add(..., matchable=False)`). With a single creative of a template, its template content counts
as its own.

No Django here: the Django side stores `CreativeFeatures.to_bytes()` per creative and builds a
`CreativeIndex` per worker process.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Hashable, Iterable

import cv2
import numpy as np
from PIL import Image

FEATURES_FORMAT = "creative-features"
FEATURES_VERSION = 1
VOCABULARY_FORMAT = "creative-vocabulary"
VOCABULARY_VERSION = 1

CREATIVE_MAX_SIDE = 800  # the ad's artwork is reduced to this many pixels on its long side
CREATIVE_MAX_FEATURES = 1200
PHOTO_MAX_SIDE = 800  # phone photos likewise; SIFT time grows with the pixel count
PHOTO_MAX_FEATURES = 2000
GRID = 8  # coverage and spread are measured on a GRID x GRID grid over the creative


@dataclass(frozen=True)
class MatcherConfig:
    """Thresholds of the matcher; the defaults are tuned on `bench/ad_recognition.py` (see README)."""

    top_n: int = 8  # shortlisted creatives that get geometric verification per scan
    ratio: float = 0.8  # Lowe's ratio test on RootSIFT distances
    min_matches: int = 10  # tentative matches needed to try RANSAC
    ransac_threshold: float = 6.0  # reprojection error (px at the extraction resolution)
    ransac_iterations: int = 2000
    min_inliers: int = 12
    min_distinctive_inliers: int = 8
    min_distinctive_coverage: float = 0.12  # share of the creative's distinctive cells that hold an inlier
    margin: float = 1.5  # best weighted score / runner-up weighted score
    neighbours: int = 6  # creatives each new creative is compared with to find shared content
    max_perspective: float = 4.0  # max/min of the homography's w over the creative's corners
    max_anisotropy: float = 5.0  # singular value ratio of the local affine map at the creative's centre
    min_area_fraction: float = 0.005  # the creative's outline covers at least this share of the photo
    max_area_fraction: float = 8.0  # ... and at most this (close-ups show part of the page)


@dataclass
class CreativeFeatures:
    """SIFT features of an image (a creative's artwork or a photo), in the image's own pixels."""

    keypoints: np.ndarray  # float32 [n, 2] x, y in pixels of the source image
    descriptors: np.ndarray  # uint8 [n, 128] SIFT
    image_size: tuple[int, int]  # width, height of the source image
    pixel_scale: float = 1.0  # source pixels per pixel of the image the features were found in
    _root: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def rootsift(self) -> np.ndarray:
        """float32 [n, 128] unit vectors."""
        if self._root is None:
            self._root = rootsift(self.descriptors)
        return self._root

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            format=np.array(FEATURES_FORMAT),
            version=np.array(FEATURES_VERSION, np.int32),
            keypoints=self.keypoints.astype(np.float32),
            descriptors=self.descriptors.astype(np.uint8),
            image_size=np.array(self.image_size, np.int32),
            pixel_scale=np.array(self.pixel_scale, np.float32),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CreativeFeatures:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            if str(stored["format"]) != FEATURES_FORMAT:
                raise ValueError("not creative features")
            version = int(stored["version"])
            if version != FEATURES_VERSION:
                raise ValueError(f"creative features version {version}, this code reads {FEATURES_VERSION}")
            return cls(
                keypoints=stored["keypoints"],
                descriptors=stored["descriptors"],
                image_size=tuple(int(v) for v in stored["image_size"]),
                pixel_scale=float(stored["pixel_scale"]),
            )


@dataclass(frozen=True)
class Rating:
    stars: int  # 1..5
    feature_count: int
    spread: float  # share of grid cells holding at least two features
    repetitiveness: float  # share of features with a near-identical twin elsewhere in the image
    advice: list[str]


@dataclass(frozen=True)
class Match:
    creative_id: Hashable
    confidence: float  # 0..1
    inliers: int
    homography: np.ndarray  # 3x3, creative pixels -> photo pixels
    coverage: float  # share of the creative's feature-bearing cells that hold an inlier
    distinctive_inliers: int = 0
    distinctive_coverage: float = 0.0


@dataclass
class Candidate:
    """One shortlisted creative and what its verification found (for `explain` and benchmarks)."""

    creative_id: Hashable
    shortlist_score: float
    matches: int = 0
    inliers: int = 0
    distinctive_inliers: int = 0
    score: float = 0.0  # weighted inliers: sum of 1 / (1 + share count)
    coverage: float = 0.0
    distinctive_coverage: float = 0.0
    homography: np.ndarray | None = None
    rejected: str | None = None  # why it cannot be the answer, None when it verified


@dataclass
class MatchReport:
    match: Match | None
    candidates: list[Candidate]  # in shortlist order; all of them were verified
    reason: str  # why `match` is what it is


def extract_features(
    image: Image.Image, *, max_side: int = CREATIVE_MAX_SIDE, max_features: int = CREATIVE_MAX_FEATURES
) -> CreativeFeatures:
    """SIFT keypoints and descriptors of `image`, reduced to `max_side` pixels on its long side first."""
    grey = np.asarray(image.convert("L"))
    height, width = grey.shape
    factor = min(1.0, max_side / max(width, height))
    if factor < 1.0:
        grey = cv2.resize(grey, (max(1, round(width * factor)), max(1, round(height * factor))),
                          interpolation=cv2.INTER_AREA)
    sift = cv2.SIFT_create(nfeatures=max_features)
    keypoints, descriptors = sift.detectAndCompute(grey, None)
    if descriptors is None or not keypoints:
        return CreativeFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8), (width, height),
                                1.0 / factor)
    points = np.array([kp.pt for kp in keypoints], np.float32) / factor
    return CreativeFeatures(
        keypoints=points,
        descriptors=np.clip(np.rint(descriptors), 0, 255).astype(np.uint8),
        image_size=(width, height),
        pixel_scale=1.0 / factor,
    )


def extract_photo_features(image: Image.Image) -> CreativeFeatures:
    return extract_features(image, max_side=PHOTO_MAX_SIDE, max_features=PHOTO_MAX_FEATURES)


def rootsift(descriptors: np.ndarray) -> np.ndarray:
    values = descriptors.astype(np.float32)
    values /= np.maximum(values.sum(axis=1, keepdims=True), 1e-6)
    return np.sqrt(values)


# --- recognisability --------------------------------------------------------------------------------

RATING_COUNTS = (250, 600)  # feature counts worth one and two stars
RATING_SPREADS = (0.4, 0.7)  # spread worth one and two stars
TWIN_DISTANCE = 0.25  # RootSIFT distance under which two features of one image are the same detail
REPETITIVE = (0.2, 0.4)  # repetitiveness costing one and two stars


def rate_recognisability(features: CreativeFeatures) -> Rating:
    """Stars for how reliably photos of this creative will be recognised, with advice.

    stars = 1 + count points (0-2) + spread points (0-2) - repetition penalty (0-2), within 1..5.
    Computed on the creative's own features (at the default extraction settings): a flat page has
    few features, a page whose details sit in one corner has poor spread, a page of repeated
    motifs has features that cannot be told apart.
    """
    count = len(features)
    spread = _spread(features)
    repetitiveness = _repetitiveness(features)
    stars = 1 + sum(count >= c for c in RATING_COUNTS) + sum(spread >= s for s in RATING_SPREADS)
    stars -= sum(repetitiveness >= r for r in REPETITIVE)
    stars = int(min(5, max(1, stars)))
    advice: list[str] = []
    if count < RATING_COUNTS[1]:
        advice.append(
            f"Only {count} details were found: add texture, product photography or text; large flat areas of "
            "colour give a scanner nothing to recognise."
        )
    if spread < RATING_SPREADS[1]:
        advice.append(
            f"Details cover {spread:.0%} of the page: spread imagery or text over the page, so that a photo "
            "with part of the page covered or cut off still shows enough of it."
        )
    if repetitiveness >= REPETITIVE[0]:
        advice.append(
            f"{repetitiveness:.0%} of the details repeat elsewhere on the page (a repeated logo, pattern or "
            "line of text): vary them or add unique content, because repeated details cannot be told apart."
        )
    return Rating(stars=stars, feature_count=count, spread=spread, repetitiveness=repetitiveness, advice=advice)


def _spread(features: CreativeFeatures) -> float:
    if not len(features):
        return 0.0
    counts = np.bincount(_cells(features.keypoints, features.image_size), minlength=GRID * GRID)
    return float((counts >= 2).mean())


def _repetitiveness(features: CreativeFeatures) -> float:
    n = len(features)
    if n < 2:
        return 0.0
    root = features.rootsift
    distance = np.sqrt(np.maximum(2.0 - 2.0 * (root @ root.T), 0.0))
    # SIFT reports one spot several times with different orientations: those are not repeats
    gap = np.linalg.norm(features.keypoints[:, None, :] - features.keypoints[None, :, :], axis=2)
    distance[gap < 3.0 * features.pixel_scale] = np.inf
    return float((distance.min(axis=1) < TWIN_DISTANCE).mean())


def _cells(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    cx = np.clip((points[:, 0] / max(width, 1) * GRID).astype(np.int64), 0, GRID - 1)
    cy = np.clip((points[:, 1] / max(height, 1) * GRID).astype(np.int64), 0, GRID - 1)
    return cy * GRID + cx


# --- vocabulary -------------------------------------------------------------------------------------


class Vocabulary:
    """A two-level vocabulary tree over RootSIFT: `branching` coarse cells, each split in up to
    `branching` words (fewer where a cell holds few training descriptors)."""

    def __init__(self, coarse: np.ndarray, fine: np.ndarray, offsets: np.ndarray):
        self.coarse = coarse.astype(np.float32)  # [B, 128]
        self.fine = fine.astype(np.float32)  # [n_words, 128], cell c's words are offsets[c]:offsets[c+1]
        self.offsets = offsets.astype(np.int64)  # [B + 1]
        self._coarse_sq = (self.coarse**2).sum(axis=1)
        self._fine_sq = (self.fine**2).sum(axis=1)

    @property
    def size(self) -> int:
        return len(self.fine)

    @classmethod
    def train(cls, descriptors: np.ndarray, *, branching: int, seed: int = 0, iterations: int = 12) -> Vocabulary:
        """Train on RootSIFT descriptors (float32 [n, 128]) with k-means (faiss)."""
        import faiss

        data = np.ascontiguousarray(descriptors, np.float32)
        branching = max(2, min(branching, len(data) // 4))
        coarse_km = faiss.Kmeans(data.shape[1], branching, niter=iterations, seed=seed, verbose=False,
                                 min_points_per_centroid=1, max_points_per_centroid=100000)
        coarse_km.train(data)
        coarse = coarse_km.centroids.copy()
        cells = _nearest(data, coarse, (coarse**2).sum(axis=1))
        fine_parts, offsets = [], [0]
        for cell in range(branching):
            members = data[cells == cell]
            k = min(branching, max(1, len(members) // 8))
            if k <= 1:
                centroids = members.mean(axis=0, keepdims=True) if len(members) else coarse[cell : cell + 1]
            else:
                km = faiss.Kmeans(data.shape[1], k, niter=iterations, seed=seed + 1 + cell, verbose=False,
                                  min_points_per_centroid=1, max_points_per_centroid=100000)
                km.train(np.ascontiguousarray(members))
                centroids = km.centroids
            fine_parts.append(np.asarray(centroids, np.float32))
            offsets.append(offsets[-1] + len(centroids))
        return cls(coarse, np.concatenate(fine_parts), np.array(offsets))

    def assign(self, descriptors: np.ndarray) -> np.ndarray:
        """The word (int64) of each RootSIFT descriptor."""
        if not len(descriptors):
            return np.zeros(0, np.int64)
        cells = _nearest(descriptors, self.coarse, self._coarse_sq)
        words = np.empty(len(descriptors), np.int64)
        order = np.argsort(cells, kind="stable")
        bounds = np.searchsorted(cells[order], np.arange(len(self.coarse) + 1))
        for cell in np.unique(cells):
            rows = order[bounds[cell] : bounds[cell + 1]]
            lo, hi = self.offsets[cell], self.offsets[cell + 1]
            words[rows] = lo + _nearest(descriptors[rows], self.fine[lo:hi], self._fine_sq[lo:hi])
        return words

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, format=np.array(VOCABULARY_FORMAT), version=np.array(VOCABULARY_VERSION, np.int32),
                 coarse=self.coarse, fine=self.fine.astype(np.float16), offsets=self.offsets)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Vocabulary:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            if str(stored["format"]) != VOCABULARY_FORMAT or int(stored["version"]) != VOCABULARY_VERSION:
                raise ValueError("not a creative vocabulary of this version")
            return cls(stored["coarse"], stored["fine"].astype(np.float32), stored["offsets"])


def _nearest(data: np.ndarray, centroids: np.ndarray, centroid_sq: np.ndarray) -> np.ndarray:
    return np.argmin(centroid_sq[None, :] - 2.0 * (data @ centroids.T), axis=1)


def vocabulary_branching(total_descriptors: int) -> int:
    """Words ~ descriptors / 20 (at least 16 x 16, at most 128 x 128), rounded to a power of two."""
    target = math.sqrt(max(total_descriptors, 1) / 20)
    return int(min(128, max(16, 2 ** round(math.log2(max(target, 1))))))


# --- the index --------------------------------------------------------------------------------------


@dataclass
class _Entry:
    creative_id: Hashable
    features: CreativeFeatures
    matchable: bool
    words: np.ndarray | None = None
    cells: np.ndarray | None = None
    share_count: np.ndarray | None = None  # per feature: how many other creatives share it
    weight: np.ndarray | None = None  # 1 / (1 + share_count)


@dataclass
class _Verified:
    inliers: np.ndarray  # bool [n_matches]
    query_index: np.ndarray  # [n_matches] feature indices in the query (photo or creative)
    entry_index: np.ndarray  # [n_matches] feature indices in the registered creative
    homography: np.ndarray  # entry pixels -> query pixels


class CreativeIndex:
    """Registered creatives, a shortlist over their visual words, and geometric verification.

    `add` and `remove` are cheap; the work they imply (words, inverted file, shared-content counts)
    is done at the next `match`, `near_duplicates` or `refresh`. Not thread-safe: one index per
    worker process, guarded by the caller if it is shared between threads.
    """

    def __init__(self, *, config: MatcherConfig | None = None, vocabulary: Vocabulary | None = None, seed: int = 0):
        self.config = config or MatcherConfig()
        self._vocabulary = vocabulary
        self._trained_own_vocabulary = vocabulary is None
        self._trained_on = 0
        self._seed = seed
        self._entries: dict[Hashable, _Entry] = {}
        self._pending: set[Hashable] = set()  # need words and neighbour comparison
        self._pairs: dict[frozenset, tuple[Hashable, np.ndarray, Hashable, np.ndarray]] = {}
        self._dirty_files = True
        self._rows: list[Hashable] = []
        self.verifications = 0  # creatives verified against a photo since creation (for tests/benchmarks)

    # registration ------------------------------------------------------------------------------

    def add(self, creative_id: Hashable, features: CreativeFeatures, *, matchable: bool = True) -> None:
        """Register (or replace) a creative. `matchable=False` registers shared content only, e.g. a
        retailer's blank template page: it teaches the index what is not distinctive, and is never
        returned by `match`."""
        if creative_id in self._entries:
            self.remove(creative_id)
        self._entries[creative_id] = _Entry(creative_id, features, matchable)
        self._pending.add(creative_id)
        self._dirty_files = True

    def remove(self, creative_id: Hashable) -> None:
        if self._entries.pop(creative_id, None) is None:
            return
        self._pending.discard(creative_id)
        for key in [key for key in self._pairs if creative_id in key]:
            first, _, second, _ = self._pairs.pop(key)
            other = second if first == creative_id else first
            if other in self._entries:
                self._pending.add(other)  # recount its shared content, maybe find another neighbour
        self._dirty_files = True

    def __len__(self) -> int:
        return sum(entry.matchable for entry in self._entries.values())

    def __contains__(self, creative_id: Hashable) -> bool:
        return creative_id in self._entries

    @property
    def vocabulary(self) -> Vocabulary | None:
        return self._vocabulary

    def distinctive_fraction(self, creative_id: Hashable) -> float:
        """Share of a creative's features that no other registered creative shares."""
        self.refresh()
        entry = self._entries[creative_id]
        return float((entry.share_count == 0).mean()) if len(entry.features) else 0.0

    def refresh(self) -> None:
        """Do the work that `add`/`remove` deferred. Called by `match` and `near_duplicates`."""
        if not self._pending and not self._dirty_files:
            return
        if self._needs_vocabulary():
            self._train_vocabulary()
        for creative_id in self._pending:
            entry = self._entries[creative_id]
            if entry.words is None:
                entry.words = self._vocabulary.assign(entry.features.rootsift)
                entry.cells = _cells(entry.features.keypoints, entry.features.image_size)
        self._build_inverted_file()
        pending, self._pending = sorted(self._pending, key=str), set()
        touched = set(pending)
        for creative_id in pending:
            touched |= self._compare_with_neighbours(self._entries[creative_id])
        for creative_id in touched:
            self._count_shared(self._entries[creative_id])

    # queries -------------------------------------------------------------------------------------

    def match(self, photo: Image.Image | CreativeFeatures) -> Match | None:
        return self.explain(photo).match

    def explain(self, photo: Image.Image | CreativeFeatures) -> MatchReport:
        """`match` with the shortlist, every verified candidate's figures and the decision's reason."""
        features = photo if isinstance(photo, CreativeFeatures) else extract_photo_features(photo)
        self.refresh()
        cfg = self.config
        if not self._rows or len(features) < cfg.min_matches:
            return MatchReport(None, [], "no creatives registered" if not self._rows else "too few features in the photo")
        shortlist = self._shortlist(features, cfg.top_n, matchable_only=True)
        candidates = []
        for creative_id, shortlist_score in shortlist:
            entry = self._entries[creative_id]
            candidate = Candidate(creative_id, shortlist_score)
            self.verifications += 1
            verified = self._verify(features, entry, candidate)
            if verified is not None:
                self._score(entry, verified, candidate)
            candidates.append(candidate)
        return self._decide(candidates)

    def near_duplicates(
        self, features: CreativeFeatures, threshold: float = 0.6, *, exclude: Iterable[Hashable] = ()
    ) -> list[tuple[Hashable, float]]:
        """Registered creatives that a scan could confuse with `features` (a creative's artwork).

        similarity = the smaller of the two creatives' shares of feature-bearing grid cells covered
        by geometric inliers between them: ~1 for the same artwork with small edits, ~0.2-0.4 for
        two creatives that share only their template. Sorted by similarity, highest first.
        """
        self.refresh()
        excluded = set(exclude)
        found = []
        for creative_id, _ in self._shortlist(features, self.config.top_n + len(excluded), matchable_only=True):
            if creative_id in excluded:
                continue
            entry = self._entries[creative_id]
            verified = self._verify(features, entry, Candidate(creative_id, 0.0))
            if verified is None:
                continue
            similarity = min(
                _cell_coverage(entry.cells, verified.entry_index[verified.inliers]),
                _cell_coverage(_cells(features.keypoints, features.image_size), verified.query_index[verified.inliers]),
            )
            if similarity >= threshold:
                found.append((creative_id, round(similarity, 4)))
        return sorted(found, key=lambda item: -item[1])

    # internals: vocabulary and inverted file -----------------------------------------------------

    def _needs_vocabulary(self) -> bool:
        if self._vocabulary is None:
            return True
        total = sum(len(entry.features) for entry in self._entries.values())
        return self._trained_own_vocabulary and total >= 4 * max(self._trained_on, 1)

    def _train_vocabulary(self, sample: int = 150_000) -> None:
        """(Re)train on a sample of the registered descriptors; every creative gets new words."""
        rng = np.random.default_rng(self._seed)
        parts = [entry.features.descriptors for entry in self._entries.values() if len(entry.features)]
        if not parts:
            parts = [np.zeros((1, 128), np.uint8)]
        descriptors = np.concatenate(parts)
        if len(descriptors) > sample:
            descriptors = descriptors[np.sort(rng.choice(len(descriptors), sample, replace=False))]
        self._vocabulary = Vocabulary.train(rootsift(descriptors), branching=vocabulary_branching(
            sum(len(p) for p in parts)), seed=self._seed)
        self._trained_on = sum(len(p) for p in parts)
        for entry in self._entries.values():
            entry.words = None
        self._pending |= set(self._entries)

    def _build_inverted_file(self) -> None:
        """CSR postings word -> (row, tf) over all creatives, with idf and per-row norms."""
        self._rows = list(self._entries)
        n_words = self._vocabulary.size
        rows, words, tfs = [], [], []
        for row, creative_id in enumerate(self._rows):
            unique, counts = np.unique(self._entries[creative_id].words, return_counts=True)
            rows.append(np.full(len(unique), row, np.int32))
            words.append(unique)
            tfs.append(counts.astype(np.float32))
        rows_a = np.concatenate(rows) if rows else np.zeros(0, np.int32)
        words_a = np.concatenate(words) if words else np.zeros(0, np.int64)
        tfs_a = np.concatenate(tfs) if tfs else np.zeros(0, np.float32)
        df = np.bincount(words_a, minlength=n_words).astype(np.float32)
        self._idf = np.log((len(self._rows) + 1) / (df + 1)).astype(np.float32)
        weights = np.sqrt(tfs_a) * self._idf[words_a]  # sqrt(tf) damps bursts of one repeated detail
        norms = np.sqrt(np.bincount(rows_a, weights**2, minlength=len(self._rows)))
        order = np.argsort(words_a, kind="stable")
        self._post_rows = rows_a[order]
        self._post_weights = (weights / np.maximum(norms[rows_a], 1e-9))[order].astype(np.float32)
        self._word_ptr = np.searchsorted(words_a[order], np.arange(n_words + 1)).astype(np.int64)
        self._matchable = np.array([self._entries[c].matchable for c in self._rows], bool)
        self._dirty_files = False

    def _shortlist(self, features: CreativeFeatures, n: int, *, matchable_only: bool,
                   words: np.ndarray | None = None) -> list[tuple[Hashable, float]]:
        if words is None:
            words = self._vocabulary.assign(features.rootsift)
        unique, counts = np.unique(words, return_counts=True)
        query = np.sqrt(counts.astype(np.float32)) * self._idf[unique]
        starts, ends = self._word_ptr[unique], self._word_ptr[unique + 1]
        lengths = ends - starts
        if not lengths.sum():
            return []
        # all postings of the query's words, gathered without a Python loop
        owner = np.repeat(np.arange(len(unique)), lengths)
        index = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + starts[owner]
        scores = np.bincount(self._post_rows[index], self._post_weights[index] * query[owner],
                             minlength=len(self._rows))
        if matchable_only:
            scores[~self._matchable] = 0.0
        n = min(n, int((scores > 0).sum()))
        if n <= 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        return [(self._rows[i], float(scores[i])) for i in top]

    # internals: shared content -------------------------------------------------------------------

    def _compare_with_neighbours(self, entry: _Entry) -> set[Hashable]:
        """Verify `entry` against its nearest creatives; record the inliers as shared content."""
        touched = set()
        if not len(entry.features):
            return touched
        for other_id, _ in self._shortlist(entry.features, self.config.neighbours + 1, matchable_only=False,
                                           words=entry.words):
            key = frozenset((entry.creative_id, other_id))
            if other_id == entry.creative_id or key in self._pairs:
                continue
            other = self._entries[other_id]
            verified = self._verify(entry.features, other, Candidate(other_id, 0.0))
            if verified is None:
                shared_self, shared_other = np.zeros(0, np.int64), np.zeros(0, np.int64)
            else:
                shared_self = verified.query_index[verified.inliers]
                shared_other = verified.entry_index[verified.inliers]
            self._pairs[key] = (entry.creative_id, shared_self, other_id, shared_other)
            touched.add(other_id)
        return touched

    def _count_shared(self, entry: _Entry) -> None:
        counts = np.zeros(len(entry.features), np.int32)
        for key, (first, first_idx, second, second_idx) in self._pairs.items():
            if entry.creative_id in key:
                counts[np.unique(first_idx if first == entry.creative_id else second_idx)] += 1
        entry.share_count = counts
        entry.weight = (1.0 / (1.0 + counts)).astype(np.float32)

    # internals: verification -------------------------------------------------------------------

    def _verify(self, query: CreativeFeatures, entry: _Entry, candidate: Candidate) -> _Verified | None:
        """Ratio-test matches from the query's features to the entry's, then a checked homography."""
        cfg = self.config
        if len(entry.features) < 2 or len(query) < 2:
            candidate.rejected = "too few features"
            return None
        similarity = query.rootsift @ entry.features.rootsift.T
        best = similarity.argmax(axis=1)
        rows = np.arange(len(query))
        s1 = similarity[rows, best]
        similarity[rows, best] = -1.0
        s2 = similarity.max(axis=1)
        # distances of unit vectors: d^2 = 2 - 2 s; ratio test d1 < ratio * d2
        keep = (2.0 - 2.0 * s1) < (cfg.ratio**2) * (2.0 - 2.0 * s2)
        query_index, entry_index, s1 = rows[keep], best[keep], s1[keep]
        order = np.argsort(-s1)  # one match per entry feature: the most similar
        _, first = np.unique(entry_index[order], return_index=True)
        query_index, entry_index = query_index[order][first], entry_index[order][first]
        candidate.matches = len(query_index)
        if len(query_index) < cfg.min_matches:
            candidate.rejected = "too few matches"
            return None
        source = entry.features.keypoints[entry_index].astype(np.float64)
        destination = query.keypoints[query_index].astype(np.float64)
        homography, mask = cv2.findHomography(
            source, destination, cv2.USAC_MAGSAC, cfg.ransac_threshold * query.pixel_scale,
            maxIters=cfg.ransac_iterations, confidence=0.999,
        )
        if homography is None or mask is None:
            candidate.rejected = "no homography"
            return None
        inliers = mask.ravel().astype(bool)
        problem = implausible(homography, entry.features.image_size, query.image_size, cfg)
        if problem:
            candidate.rejected = problem
            return None
        candidate.homography = homography
        candidate.inliers = int(inliers.sum())
        return _Verified(inliers, query_index, entry_index, homography)

    def _score(self, entry: _Entry, verified: _Verified, candidate: Candidate) -> None:
        cfg = self.config
        inlier_idx = verified.entry_index[verified.inliers]
        distinctive = inlier_idx[entry.share_count[inlier_idx] == 0]
        candidate.score = float(entry.weight[inlier_idx].sum())
        candidate.distinctive_inliers = len(distinctive)
        candidate.coverage = _cell_coverage(entry.cells, inlier_idx)
        distinctive_cells = entry.cells[entry.share_count == 0]
        candidate.distinctive_coverage = _cell_coverage(distinctive_cells, None, hits=entry.cells[distinctive])
        if candidate.inliers < cfg.min_inliers:
            candidate.rejected = "too few inliers"
        elif candidate.distinctive_inliers < cfg.min_distinctive_inliers:
            candidate.rejected = "too few distinctive inliers (template only?)"
        elif candidate.distinctive_coverage < cfg.min_distinctive_coverage:
            candidate.rejected = "inliers cover too little of the distinctive content"

    def _decide(self, candidates: list[Candidate]) -> MatchReport:
        cfg = self.config
        ranked = sorted(candidates, key=lambda c: -c.score)
        if not ranked or ranked[0].rejected:
            reason = ranked[0].rejected if ranked and ranked[0].score > 0 else "no candidate verified"
            return MatchReport(None, candidates, reason or "no candidate verified")
        best = ranked[0]
        runner_up = ranked[1].score if len(ranked) > 1 else 0.0
        if best.score < cfg.margin * runner_up:
            return MatchReport(None, candidates, f"ambiguous: {best.creative_id!r} scores {best.score:.1f}, "
                                                 f"{ranked[1].creative_id!r} {runner_up:.1f}")
        strength = 1.0 - math.exp(-best.distinctive_inliers / 20.0)
        spread = min(1.0, best.distinctive_coverage / 0.3)
        separation = 1.0 - runner_up / best.score if best.score > 0 else 0.0
        confidence = round(strength * (0.5 + 0.5 * spread) * (0.5 + 0.5 * separation), 4)
        match = Match(
            creative_id=best.creative_id,
            confidence=confidence,
            inliers=best.inliers,
            homography=best.homography,
            coverage=best.coverage,
            distinctive_inliers=best.distinctive_inliers,
            distinctive_coverage=best.distinctive_coverage,
        )
        return MatchReport(match, candidates, "accepted")


def _cell_coverage(cells: np.ndarray, indices: np.ndarray | None, *, hits: np.ndarray | None = None) -> float:
    """Share of the cells holding at least two features (of `cells`) that hold a hit."""
    counts = np.bincount(cells, minlength=GRID * GRID)
    eligible = counts >= 2
    if not eligible.any():
        return 0.0
    hit_cells = cells[indices] if indices is not None else hits
    hit = np.zeros(GRID * GRID, bool)
    hit[hit_cells] = True
    return float((hit & eligible).sum() / eligible.sum())


def implausible(homography: np.ndarray, creative_size: tuple[int, int], photo_size: tuple[int, int],
                cfg: MatcherConfig) -> str | None:
    """Why `homography` (creative px -> photo px) cannot be a photo of a flat page, or None."""
    if not np.all(np.isfinite(homography)):
        return "homography not finite"
    width, height = creative_size
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float64)
    mapped = corners @ homography.T
    w = mapped[:, 2]
    if np.any(w <= 1e-9) and np.any(w >= -1e-9):
        return "the page would cross the horizon"
    w = np.abs(w)
    if w.max() / w.min() > cfg.max_perspective:
        return "perspective too strong"
    quad = mapped[:, :2] / mapped[:, 2:3]
    edges = np.roll(quad, -1, axis=0) - quad
    turns = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    if not (np.all(turns > 0) or np.all(turns < 0)):
        return "page outline not convex"
    if np.all(turns < 0):  # image coordinates (y down): the page's own corners turn positively
        return "mirrored"
    area = 0.5 * abs(float(np.sum(quad[:, 0] * np.roll(quad[:, 1], -1) - np.roll(quad[:, 0], -1) * quad[:, 1])))
    photo_area = float(photo_size[0] * photo_size[1])
    if not cfg.min_area_fraction * photo_area <= area <= cfg.max_area_fraction * photo_area:
        return "page size in the photo out of range"
    centre = np.array([width / 2, height / 2, 1.0])
    a = homography @ centre
    jacobian = (homography[:2, :2] * a[2] - np.outer(a[:2], homography[2, :2])) / a[2] ** 2
    singular = np.linalg.svd(jacobian, compute_uv=False)
    if singular[1] <= 1e-9 or singular[0] / singular[1] > cfg.max_anisotropy:
        return "too much shear or stretch"
    return None
