"""Recognise which registered print-ad creative a phone photo shows (local features + geometry).

Method
------
1. Features: SIFT keypoints on the grey image reduced to `max_side` (on photos at a lower contrast
   threshold than on the artwork, for small and blurred pages), stored with their SIFT
   descriptors (uint8, lossless) and compared as RootSIFT (square root of the L1-normalised
   descriptor, a unit vector: dot products are cosine similarities).
2. Shortlist: all registered descriptors sit in one FAISS index (IVF over ~8 sqrt(n) inverted lists
   reached through an HNSW graph, 8-bit scalar quantiser).
   Each photo descriptor looks up its nearest indexed descriptors and votes for the creative
   owning the nearest one, but only when it is clearly nearer (ratio test) than the nearest
   descriptor of any *other* creative. Content that many creatives share (a retailer's logo,
   typeface, price band) is about as near in all of them and casts no vote, so votes come from
   what is distinctive. Only the `top_n` creatives with most votes are verified: a scan never
   touches most of the index.
3. Verification, per shortlisted creative: nearest-neighbour matching with Lowe's ratio test,
   one match per creative feature, then a homography by RANSAC (`cv2.USAC_MAGSAC`), checked for
   plausibility (finite, not mirrored, convex page outline, bounded perspective, anisotropy and
   size in the photo).
4. Template awareness: when creatives are added, each one is verified against its nearest
   neighbours in the index (same machinery, creative against creative): those holding the most
   near-identical copies of its details, and those holding the most of them in the same place on
   the page (a template's content is where the template puts it; the most copies may be a product
   shot that pages of other templates reprint elsewhere). Features that are
   geometric inliers between two creatives are content the two share, in the same place: the
   retailer's template (logo, header, price band, small print). Each feature counts how many
   creatives share it; its weight in the verification score is 1 / (1 + that count), and a
   feature shared with none is *distinctive*.
5. Decision: the verified candidate with the highest weighted inlier score wins only if its
   inliers span the page (not one picture on it, which another page may share: the same product
   shot in another layout), include enough distinctive features, spread over enough of the
   creative's distinctive area (grid cells), match it at least a fifth as well as the template's
   content where that is visible (`min_own_to_template`: blur and occlusion cost both alike, a page
   sharing only the template and a few words does not), and its score clearly beats the runner-up's
   (`margin`). Otherwise `None`:
   a page that shares only the template, or a few words, with registered creatives is rejected.
6. Second look: when the best candidate's geometry held (a plausible homography, the margin, and
   enough inliers or at least `guided_min_inliers`) but its distinctive evidence fell short, as
   for a small or blurred page whose
   details are not among the nearest of their descriptors over a large index, each creative
   feature is looked for where the homography puts it in the photo (guided matching, with a ratio
   test against the creative's own other features). Enough distinctive matches, spread in two
   dimensions and held to the same own-versus-template check, accept it.
   When they fall short, a look in place (`described_in_place`): the photo is rectified onto the
   creative by the homography and SIFT descriptors are computed in the creative's own keypoint frames
   (stored since features format 2), so details that the photo's SIFT pass did not detect again still
   count where they belong. They must cover many grid cells, spread in two dimensions, span the page,
   pass the own-versus-template check, and agree in clearly more places than the creatives the
   creative shares its template with, described at the same pose (what agrees for those is layout:
   picture-box edges, a headline's words in place). An answer accepted on distinctive evidence in few
   grid cells is confirmed the same way: its own content, described in place, must spread across the
   page (`_confirmed_in_place`), not lie along one line of words or in one spot.

7. Pose retry: when nothing was accepted, the first `retry_candidates` shortlisted creatives whose
   MAGSAC homography was implausible are fitted again by `plausible_ransac`, a RANSAC that only
   scores poses a photo of a page could show (MAGSAC can prefer a degenerate model when a quarter
   of the tentative matches are true). A pose found so is held to `min_inliers` (no second look
   from fewer: a search among plausible poses fits chance matches too), then decided as above.

Distinctiveness is learnt from the registered set: a template is recognised as such once a few
creatives of it are registered (or a few other pages of it, with `add(..., matchable=False)`).
With a single creative of a template, its template content counts as its own.

No Django here: the Django side stores `CreativeFeatures.to_bytes()` per creative and builds a
`CreativeIndex` per worker process.
"""

from __future__ import annotations

import io
import math
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable

import cv2
import numpy as np
from PIL import Image

FEATURES_FORMAT = "creative-features"
FEATURES_VERSION = 2  # 2 adds each keypoint's SIFT frame (size, angle, octave); 1 is still read

CREATIVE_MAX_SIDE = 1024  # the ad's artwork is reduced to this many pixels on its long side
CREATIVE_MAX_FEATURES = 2000
PHOTO_MAX_SIDE = 1024  # phone photos likewise; SIFT time grows with the pixel count
PHOTO_MAX_FEATURES = 2000  # the strongest; more cost SIFT descriptors and index lookups, and found no more pages
SIFT_CONTRAST = 0.04  # OpenCV's default, for the artwork: lower values add weak, blur-sensitive features
PHOTO_SIFT_CONTRAST = 0.02  # photos: a small, blurred or dim page keeps enough details (the cap keeps the strongest)
GRID = 8  # coverage and spread are measured on a GRID x GRID grid over the creative
SAME_DETAIL_DISTANCE = 0.3  # RootSIFT distance under which two creatives show the same detail
IN_PLACE = 0.02  # of the page's width and height: two creatives' details this close are in the same place
SIMILAR_NEIGHBOURS = 16  # nearest descriptors looked up per creative descriptor when creatives are added
SIMILAR_NPROBE = 4  # ... in this many inverted lists (template learning runs once per creative: recall first)
SIMILAR_EF = 16  # ... found by an HNSW search this deep


# the first pass's rejections for want of distinctive evidence (the geometry itself held)
TOO_FEW_DISTINCTIVE = "too few distinctive inliers (template only?)"
TOO_FEW_PLACES = "distinctive inliers in too few places"
TOO_LITTLE_COVERAGE = "inliers cover too little of the distinctive content"
ALONG_A_LINE = "distinctive inliers lie along a line"
OWN_CONTENT_MISSING = "the template matched, the creative's own content much less (another page of its template?)"
EVIDENCE_REJECTIONS = frozenset({TOO_FEW_DISTINCTIVE, TOO_FEW_PLACES, TOO_LITTLE_COVERAGE, ALONG_A_LINE,
                                 OWN_CONTENT_MISSING})
ONE_PICTURE = "inliers span too little of the page"
ACCEPTED_IN_PLACE = "accepted on a look in place"
NOT_CONFIRMED_IN_PLACE = "described in place, the creative's own content agrees only along a line or in one spot"
TOO_FEW_INLIERS = "too few inliers"  # a second look too, from `guided_min_inliers` on
TOO_FEW_RETRY_INLIERS = "too few inliers for a pose found on the retry"  # no second look
# why a homography cannot be a photo of a flat page (`implausible`)
NOT_FINITE = "homography not finite"
CROSSES_HORIZON = "the page would cross the horizon"
TOO_MUCH_PERSPECTIVE = "perspective too strong"
NOT_CONVEX = "page outline not convex"
MIRRORED = "mirrored"
SIZE_OUT_OF_RANGE = "page size in the photo out of range"
OUTSIDE_THE_PHOTO = "most of the page would lie outside the photo"
TOO_MUCH_SHEAR = "too much shear or stretch"
IMPLAUSIBLE_POSES = frozenset({NOT_FINITE, CROSSES_HORIZON, TOO_MUCH_PERSPECTIVE, NOT_CONVEX, MIRRORED,
                               SIZE_OUT_OF_RANGE, OUTSIDE_THE_PHOTO, TOO_MUCH_SHEAR})
GUIDED_SEARCH = 10.0  # px (at the photo's extraction resolution) around a projected creative feature
GUIDED_REFIT_DISTANCE = 0.6  # guided matches this similar refit the homography before the final look


@dataclass(frozen=True)
class MatcherConfig:
    """Thresholds of the matcher; the defaults are tuned on `bench/ad_recognition.py` (see README)."""

    top_n: int | None = 8  # shortlisted creatives verified per scan; None verifies every creative (reference)
    vote_neighbours: int = 20  # nearest indexed descriptors looked up per photo descriptor (10 left a
    # large index's template rivals with too few tentative matches to be rivals: same-template false accepts)
    nprobe: int = 3  # inverted lists of the descriptor index searched per photo lookup (speed vs recall)
    quantizer_ef: int = 8  # HNSW search depth for those lists' centroids (finds 97 % of the 4 nearest)
    vote_ratio: float = 0.85  # a vote needs: nearest < vote_ratio x nearest of any other creative
    ratio: float = 0.85  # Lowe's ratio test on RootSIFT distances
    min_matches: int = 10  # tentative matches needed to try RANSAC
    ransac_threshold: float = 6.0  # reprojection error (px at the extraction resolution)
    ransac_iterations: int = 2000
    min_inliers: int = 12
    min_inlier_ratio: float = 0.15  # inliers / tentative matches: a chance homography explains few of them
    min_inlier_span: float = 0.55  # inliers' major-axis extent (4 sigma) over the page, in page widths/heights
    min_distinctive_inliers: int = 3  # inliers that are neither template nor a common detail
    min_distinctive_cells: int = 3  # grid cells holding a distinctive inlier
    min_distinctive_coverage: float = 0.05  # share of the visible distinctive cells that hold one
    min_distinctive_extent: float = 0.05  # distinctive inliers' minor-axis extent / the creative's short side
    min_own_to_template: float = 0.2  # distinctive coverage / template coverage: where the template's content
    # matched, the creative's own content must match too (a page sharing only the template and a few words)
    margin: float = 1.5  # best weighted score / runner-up weighted score
    # the second look (guided matching where the homography puts each creative feature), for a best
    # candidate whose geometry holds but whose distinctive evidence fell short in the first pass
    guided_max_distance: float = 0.7  # RootSIFT distance of a guided match
    guided_ratio: float = 0.8  # ... and against the creative's best other feature (not the same spot)
    guided_min_distinctive: int = 5  # distinctive guided matches needed (the extent keeps out lines of text)
    guided_min_cells: int = 4  # grid cells holding one
    guided_min_extent: float = 0.15  # their minor-axis extent / the creative's short side: not a line of text
    guided_min_span: float = 0.55  # all guided matches' major-axis extent over the page, as `min_inlier_span`
    guided_min_inliers: int = 8  # a best candidate short of `min_inliers` still gets a second look from this many
    # the look in place, when the guided matches fall short (it needs the photo's grey image and the
    # creative's keypoint frames): the photo is rectified onto the creative by the pose and SIFT
    # descriptors are computed at the creative's own keypoints (`described_in_place`)
    in_place_max_distance: float = 0.55  # RootSIFT distance to the creative's descriptor there
    in_place_ratio: float = 0.8  # ... and against the creative's best other feature (not the same spot)
    in_place_min_octave: int = 0  # keypoints of finer octaves are left out (a blurred page has lost them;
    # leaving them out spares the rectified image's upsampled octave: about 3 times faster)
    in_place_min_cells: int = 10  # grid cells holding a distinctive feature described in place
    in_place_min_extent: float = 0.3  # their minor-axis extent / the creative's short side
    in_place_controls: int = 2  # creatives of its template looked at in place alike, as controls
    in_place_control_factor: float = 3.0  # own cells >= this x the most cells of a control
    in_place_confirm_cells: int = 8  # an answer with distinctive evidence in this many grid cells or fewer
    in_place_confirm_extent: float = 0.2  # ... needs its own content found in place over this much of the
    # creative's short side across its main direction (`_confirmed_in_place`)
    in_place_min_inliers: int = 5  # a best candidate whose pose has fewer inliers than `guided_min_inliers`
    # (or than `min_inliers`, found on the pose retry) gets the look in place from this many
    # the pose retry: when nothing was accepted, the first shortlisted candidates whose RANSAC
    # homography was implausible are fitted again by a RANSAC that only considers plausible page poses
    retry_candidates: int = 2
    retry_hypotheses: int = 2000  # 4-pair samples drawn (finds a pose from about a quarter of the matches)
    neighbours: int = 6  # creatives each new creative is compared with to find shared content
    max_perspective: float = 4.0  # max/min of the homography's w over the creative's corners
    max_anisotropy: float = 5.0  # singular value ratio of the local affine map at the creative's centre
    min_area_fraction: float = 0.02  # the creative's outline covers at least this share of the photo
    max_area_fraction: float = 1.5  # ... and at most this
    min_in_frame: float = 0.5  # share of the creative's area that lands inside the photo frame


@dataclass
class CreativeFeatures:
    """SIFT features of an image (a creative's artwork or a photo), in the image's own pixels."""

    keypoints: np.ndarray  # float32 [n, 2] x, y in pixels of the source image
    descriptors: np.ndarray  # uint8 [n, 128] SIFT
    image_size: tuple[int, int]  # width, height of the source image
    pixel_scale: float = 1.0  # source pixels per pixel of the image the features were found in
    # each keypoint's SIFT frame, as OpenCV found it in the reduced image: diameter (px of that image),
    # angle (degrees) and packed octave; None for features stored before format version 2
    sizes: np.ndarray | None = None  # float32 [n]
    angles: np.ndarray | None = None  # float32 [n]
    octaves: np.ndarray | None = None  # int32 [n]
    # a photo's grey image the features were found in (uint8 [h, w], not stored): lets the matcher
    # describe a creative's keypoints where a pose puts them (`described_in_place`)
    grey: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def rootsift(self) -> np.ndarray:
        """float32 [n, 128] unit vectors, computed on each use (an index of thousands of creatives
        keeps only the uint8 descriptors: a quarter of the memory)."""
        return rootsift(self.descriptors)

    @property
    def has_frames(self) -> bool:
        return self.sizes is not None and self.angles is not None and self.octaves is not None

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        frames = {}
        if self.has_frames:
            frames = dict(sizes=self.sizes.astype(np.float32), angles=self.angles.astype(np.float32),
                          octaves=self.octaves.astype(np.int32))
        np.savez_compressed(
            buffer,
            format=np.array(FEATURES_FORMAT),
            version=np.array(FEATURES_VERSION, np.int32),
            keypoints=self.keypoints.astype(np.float32),
            descriptors=self.descriptors.astype(np.uint8),
            image_size=np.array(self.image_size, np.int32),
            pixel_scale=np.array(self.pixel_scale, np.float32),
            **frames,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CreativeFeatures:
        """Read `to_bytes` output (versions 1 and 2; version 1 has no keypoint frames); ValueError for
        anything else, or for a newer format version."""
        try:
            stored = np.load(io.BytesIO(data), allow_pickle=False)
            if not isinstance(stored, np.lib.npyio.NpzFile):
                raise ValueError("not an archive")
            with stored:
                if "format" not in stored.files or str(stored["format"]) != FEATURES_FORMAT:
                    raise ValueError("not creative features")
                version = int(stored["version"])
                if version not in (1, FEATURES_VERSION):
                    raise ValueError(f"creative features version {version}, this code reads 1 to {FEATURES_VERSION}")
                frames = {"sizes", "angles", "octaves"} <= set(stored.files)
                features = cls(
                    keypoints=stored["keypoints"],
                    descriptors=stored["descriptors"],
                    image_size=tuple(int(v) for v in stored["image_size"]),
                    pixel_scale=float(stored["pixel_scale"]),
                    sizes=stored["sizes"] if frames else None,
                    angles=stored["angles"] if frames else None,
                    octaves=stored["octaves"] if frames else None,
                )
        # a member damaged inside the archive fails only when it is read: as unreadable, not as a crash
        except (OSError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ValueError(f"not creative features ({type(exc).__name__})") from exc
        problem = features._inconsistency()
        if problem:
            raise ValueError(f"damaged creative features: {problem}")
        return features

    def _inconsistency(self) -> str | None:
        """What makes stored features unusable (arrays of other shapes or lengths), or None."""
        n = len(self.keypoints)
        if self.keypoints.ndim != 2 or self.keypoints.shape[1] != 2 or not np.isfinite(self.keypoints).all():
            return f"keypoints of shape {self.keypoints.shape}"
        if self.descriptors.shape != (n, 128) or self.descriptors.dtype != np.uint8:
            return f"{self.descriptors.shape} {self.descriptors.dtype} descriptors for {n} keypoints"
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            return f"image size {self.image_size}"
        if not (math.isfinite(self.pixel_scale) and self.pixel_scale > 0):
            return f"pixel scale {self.pixel_scale}"
        for name in ("sizes", "angles", "octaves"):
            values = getattr(self, name)
            if values is not None and values.shape != (n,):
                return f"{name} of shape {values.shape} for {n} keypoints"
        return None


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
    distinctive_cells: int = 0  # grid cells holding a distinctive inlier
    distinctive_coverage: float = 0.0
    template_coverage: float = 0.0  # share of the visible template cells holding a template inlier
    distinctive_extent: float = 0.0  # 4 sigma of the distinctive inliers along their minor axis / short side
    inlier_span: float = 0.0  # 4 sigma of all inliers along their major axis, in page widths/heights
    homography: np.ndarray | None = None
    rejected: str | None = None  # why it cannot be the answer, None when it verified
    guided_distinctive: int | None = None  # distinctive guided matches, when a second look was taken
    guided_extent: float = 0.0
    in_place_cells: int | None = None  # grid cells with a distinctive feature described in place, when looked
    in_place_control_cells: int | None = None  # ... the most of its template's controls had (when it got so far)
    in_place_extent: float | None = None  # minor-axis extent of its own content found in place, when confirmed


@dataclass
class MatchReport:
    match: Match | None
    candidates: list[Candidate]  # in shortlist order; all of them were verified
    reason: str  # why `match` is what it is


def extract_features(
    image: Image.Image, *, max_side: int = CREATIVE_MAX_SIDE, max_features: int = CREATIVE_MAX_FEATURES,
    contrast: float = SIFT_CONTRAST, keep_grey: bool = False,
) -> CreativeFeatures:
    """SIFT keypoints and descriptors of `image`, reduced to `max_side` pixels on its long side first;
    `contrast` is SIFT's contrast threshold (the `max_features` strongest are kept either way).
    `keep_grey`: keep the reduced grey image with the features (photos; see `described_in_place`)."""
    grey = np.asarray(image.convert("L"))
    height, width = grey.shape
    factor = min(1.0, max_side / max(width, height))
    if factor < 1.0:
        grey = cv2.resize(grey, (max(1, round(width * factor)), max(1, round(height * factor))),
                          interpolation=cv2.INTER_AREA)
    sift = cv2.SIFT_create(nfeatures=max_features, contrastThreshold=contrast)
    keypoints, descriptors = sift.detectAndCompute(grey, None)
    kept = grey if keep_grey else None
    if descriptors is None or not keypoints:
        return CreativeFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8), (width, height),
                                1.0 / factor, np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32),
                                kept)
    points = np.array([kp.pt for kp in keypoints], np.float32) / factor
    return CreativeFeatures(
        keypoints=points,
        descriptors=np.clip(np.rint(descriptors), 0, 255).astype(np.uint8),
        image_size=(width, height),
        pixel_scale=1.0 / factor,
        sizes=np.array([kp.size for kp in keypoints], np.float32),
        angles=np.array([kp.angle for kp in keypoints], np.float32),
        octaves=np.array([kp.octave for kp in keypoints], np.int32),
        grey=kept,
    )


def extract_photo_features(image: Image.Image) -> CreativeFeatures:
    """A phone photo's features, at half the artwork's contrast threshold: a blurred page filling a
    third of the frame offers few details at the artwork's threshold (about a hundred, where a
    typical photo offers a thousand); a busy photo still keeps its `PHOTO_MAX_FEATURES` strongest.
    The grey image is kept with them for the matcher's look in place."""
    return extract_features(image, max_side=PHOTO_MAX_SIDE, max_features=PHOTO_MAX_FEATURES,
                            contrast=PHOTO_SIFT_CONTRAST, keep_grey=True)


def rootsift(descriptors: np.ndarray) -> np.ndarray:
    values = descriptors.astype(np.float32)
    values /= np.maximum(values.sum(axis=1, keepdims=True), 1e-6)
    return np.sqrt(values)


# --- recognisability --------------------------------------------------------------------------------

# Calibrated on synthetic ads photographed over the whole operating range (bench/ad_recognition.py):
# recognition rate rises with the number of details and most of all with how much of the page they cover.
RATING_COUNTS = (900, 1400)  # feature counts (at the default extraction) worth one and two stars
RATING_SPREADS = (0.5, 0.6)  # spread worth one and two stars
TWIN_DISTANCE = 0.1  # RootSIFT distance under which two features of one image are the same detail
REPETITIVE = (0.35, 0.5)  # repetitiveness costing one and two stars (text alone reaches ~0.2-0.3)


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


# --- the descriptor index ---------------------------------------------------------------------------

SLOT_BITS = 20  # a descriptor's id in the FAISS index: (creative slot << SLOT_BITS) | feature number


def inverted_lists(total: int) -> int:
    """Inverted lists of the descriptor index for `total` descriptors: ~8 sqrt(total), a power of
    two (16,384 for the 3.7 million descriptors of 10,000 creatives: ~230 descriptors per list)."""
    return int(min(65536, max(16, 2 ** round(math.log2(max(8 * math.sqrt(max(total, 1)), 1))))))


class _DescriptorIndex:
    """Every registered creative's RootSIFT descriptors in one FAISS IVF index with 8-bit scalar
    quantisation (128 bytes per descriptor). Many short lists keep the scan of `nprobe` lists per
    photo descriptor short; the lists' centroids are found by an HNSW graph rather than compared
    one by one. The centroids are trained on a sample of the registered descriptors and retrained
    when their number has grown fourfold."""

    def __init__(self, seed: int):
        self._seed = seed
        self._index = None
        self._trained_on = 0

    def needs_training(self, total: int) -> bool:
        return self._index is None or total >= 4 * max(self._trained_on, 1)

    def train(self, sample: np.ndarray, total: int) -> None:
        import faiss

        lists = max(1, min(inverted_lists(total), len(sample) // 8))
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexHNSWFlat(128, 32), 128, lists,
                                              faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
        index.cp.niter = 10
        index.cp.min_points_per_centroid = 4
        index.cp.seed = self._seed
        index.train(np.ascontiguousarray(sample, np.float32))
        self._index = index
        self._trained_on = total

    def add(self, slot: int, descriptors: np.ndarray) -> None:
        if len(descriptors):
            ids = (np.int64(slot) << SLOT_BITS) + np.arange(len(descriptors), dtype=np.int64)
            self._index.add_with_ids(np.ascontiguousarray(descriptors, np.float32), ids)

    def remove(self, slot: int) -> None:
        import faiss

        if self._index is not None:
            self._index.remove_ids(faiss.IDSelectorRange(int(slot) << SLOT_BITS, (int(slot) + 1) << SLOT_BITS))

    def search(self, descriptors: np.ndarray, k: int, nprobe: int,
               ef: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distances [n, k] between unit vectors, owning slots [n, k] (-1 where fewer than k were
        found), feature numbers within the owner [n, k]). `ef`: the HNSW search depth for the
        lists' centroids."""
        import faiss

        if self._index is None:  # nothing registered yet
            return (np.full((len(descriptors), k), np.inf, np.float32), np.full((len(descriptors), k), -1, np.int64),
                    np.zeros((len(descriptors), k), np.int64))
        self._index.nprobe = nprobe
        faiss.downcast_index(self._index.quantizer).hnsw.efSearch = max(ef, nprobe)
        squared, ids = self._index.search(np.ascontiguousarray(descriptors, np.float32), k)
        slots = np.where(ids >= 0, ids >> SLOT_BITS, -1)
        return np.sqrt(np.maximum(squared, 0.0)), slots, ids & ((1 << SLOT_BITS) - 1)

    def __getstate__(self):
        import faiss

        state = dict(self.__dict__)
        state["_index"] = None if self._index is None else faiss.serialize_index(self._index)
        return state

    def __setstate__(self, state):
        import faiss

        self.__dict__.update(state)
        if self._index is not None:
            self._index = faiss.deserialize_index(self._index)


# --- the creative index -----------------------------------------------------------------------------


@dataclass
class _Entry:
    creative_id: Hashable
    slot: int
    features: CreativeFeatures
    matchable: bool
    cells: np.ndarray
    share_count: np.ndarray | None = None  # per feature: how many other creatives share it in place
    weight: np.ndarray | None = None  # 1 / (1 + share_count)


@dataclass
class _Verified:
    inliers: np.ndarray  # bool [n_matches]
    query_index: np.ndarray  # [n_matches] feature indices in the query (photo or creative)
    entry_index: np.ndarray  # [n_matches] feature indices in the registered creative
    homography: np.ndarray  # entry pixels -> query pixels


class CreativeIndex:
    """Registered creatives, a shortlist by descriptor votes, and geometric verification.

    `add` and `remove` are cheap; the work they imply (indexing descriptors, counting shared
    content) is done at the next `match`, `near_duplicates` or `refresh`. Not thread-safe: one index
    per worker process, guarded by the caller if threads share it. Picklable (for a snapshot).
    """

    def __init__(self, *, config: MatcherConfig | None = None, seed: int = 0):
        self.config = config or MatcherConfig()
        self._seed = seed
        self._descriptors = _DescriptorIndex(seed)
        self._entries: dict[Hashable, _Entry] = {}
        self._matchable = 0  # len(self), kept as entries come and go (a scan asks for it first)
        self._by_slot: dict[int, Hashable] = {}
        self._next_slot = 0
        self._unindexed: set[Hashable] = set()  # not yet in the descriptor index
        self._indexing: int | None = None  # the slot being added to the descriptor index (cut short: some may be in)
        self._pending: set[Hashable] = set()  # to compare with their neighbours, then (re)count
        self._uncounted: set[Hashable] = set()  # compared (or a neighbour changed): shared content to recount
        # creative -> {creative it was compared with: its own features that are geometric inliers with it}
        self._shared: dict[Hashable, dict[Hashable, np.ndarray]] = {}
        self.verifications = 0  # creatives verified against photos so far (for tests and benchmarks)

    # registration ------------------------------------------------------------------------------

    def add(self, creative_id: Hashable, features: CreativeFeatures, *, matchable: bool = True) -> None:
        """Register (or replace) a creative. `matchable=False` registers shared content only, e.g.
        other pages of a retailer's template: they teach the index what is not distinctive and are
        never returned by `match`."""
        if creative_id in self._entries:
            self.remove(creative_id)
        if len(features) >= 1 << SLOT_BITS:
            raise ValueError("too many features")
        slot, self._next_slot = self._next_slot, self._next_slot + 1
        cells = _cells(features.keypoints, features.image_size)
        self._entries[creative_id] = _Entry(creative_id, slot, features, matchable, cells)
        self._matchable += matchable
        self._by_slot[slot] = creative_id
        self._unindexed.add(creative_id)
        self._pending.add(creative_id)

    def remove(self, creative_id: Hashable) -> None:
        # the bookkeeping first and FAISS's removal last: a time limit's signal arriving as that returns
        # leaves no trace of the creative for a later refresh to trip on
        entry = self._entries.pop(creative_id, None)
        if entry is None:
            return
        self._matchable -= entry.matchable
        del self._by_slot[entry.slot]
        self._pending.discard(creative_id)
        self._uncounted.discard(creative_id)
        for other in self._shared.pop(creative_id, {}):
            self._shared.get(other, {}).pop(creative_id, None)
            if other in self._entries:
                self._pending.add(other)  # recount its shared content, maybe meet another neighbour
        in_faiss = creative_id not in self._unindexed or self._indexing == entry.slot
        self._unindexed.discard(creative_id)
        if in_faiss:
            self._descriptors.remove(entry.slot)

    def __len__(self) -> int:
        return self._matchable

    def __contains__(self, creative_id: Hashable) -> bool:
        return creative_id in self._entries

    def distinctive_fraction(self, creative_id: Hashable) -> float:
        """Share of a creative's features that no other registered creative shares."""
        self.refresh()
        entry = self._entries[creative_id]
        return float((entry.share_count == 0).mean()) if len(entry.features) else 0.0

    def refresh(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Do the work that `add`/`remove` deferred. `match` and `near_duplicates` call it.

        `progress(done, total)` is called as creatives are compared with their neighbours (the
        long part when thousands of creatives are added at once).

        Interrupted (a task's time limit), it leaves the index consistent and the next call goes on
        where it stopped: each step is marked done only once it is."""
        if not self._pending and not self._unindexed and not self._uncounted:
            return
        total = sum(len(entry.features) for entry in self._entries.values())
        if self._descriptors.needs_training(total):
            self._train()
        for creative_id in sorted(self._unindexed, key=lambda c: self._entries[c].slot):
            entry = self._entries[creative_id]
            if self._indexing == entry.slot:  # a time limit's signal arrived as FAISS returned: they are in
                self._descriptors.remove(entry.slot)  # (twice in, each would fail the other's ratio test)
            self._indexing = entry.slot
            self._descriptors.add(entry.slot, entry.features.rootsift)
            self._unindexed.discard(creative_id)
            self._indexing = None
        pending = sorted(self._pending, key=lambda c: self._entries[c].slot)
        for done, creative_id in enumerate(pending, 1):
            self._compare_with_neighbours(self._entries[creative_id])
            self._uncounted.add(creative_id)
            self._pending.discard(creative_id)
            if progress is not None:
                progress(done, len(pending))
        for creative_id in list(self._uncounted):
            self._count_shared(self._entries[creative_id])
            self._uncounted.discard(creative_id)

    # queries -------------------------------------------------------------------------------------

    def match(self, photo: Image.Image | CreativeFeatures) -> Match | None:
        return self.explain(photo).match

    def explain(self, photo: Image.Image | CreativeFeatures) -> MatchReport:
        """`match` with the shortlist, every verified candidate's figures and the decision's reason."""
        self.refresh()
        cfg = self.config
        if not len(self):  # before the SIFT pass on the photo: an empty index costs nothing
            return MatchReport(None, [], "no creatives registered")
        features = photo if isinstance(photo, CreativeFeatures) else extract_photo_features(photo)
        if len(features) < cfg.min_matches:
            return MatchReport(None, [], "too few features in the photo")
        root = features.rootsift
        neighbours = self._descriptors.search(root, cfg.vote_neighbours, cfg.nprobe, cfg.quantizer_ef)
        voted_for = _votes(neighbours, cfg.vote_ratio)
        candidates = []
        implausible_fits = []  # (candidate, entry, its tentative matches) whose homography was implausible
        for creative_id, votes in self._shortlist(voted_for):
            entry = self._entries[creative_id]
            candidate = Candidate(creative_id, votes)
            self.verifications += 1
            # the reference mode matches every descriptor pair; the shortlist's lookups suffice otherwise
            pairs = None if cfg.top_n is None else _pairs_from_neighbours(neighbours, entry.slot, cfg.ratio)
            verified = self._verify(features, entry, candidate, pairs, query_root=root)
            if verified is not None:
                self._score(features, entry, verified, candidate, voted_for == entry.slot)
            elif candidate.rejected in IMPLAUSIBLE_POSES:
                implausible_fits.append((candidate, entry, pairs))
            candidates.append(candidate)
        report = self._conclude(features, root, candidates)
        retry = implausible_fits[:cfg.retry_candidates]
        if report.match is None and retry:
            # MAGSAC's best model can be a degenerate one that no photo of a page could show, while a
            # plausible pose explains a quarter of the matches: fit the first few again among plausible
            # poses only, then decide (and take a second look) as before
            for candidate, entry, pairs in retry:
                verified = self._verify(features, entry, candidate, pairs, query_root=root, plausible_only=True)
                if verified is not None:
                    self._score(features, entry, verified, candidate, voted_for == entry.slot)
                    if candidate.inliers < cfg.min_inliers:  # no second look from fewer: a search among
                        candidate.rejected = TOO_FEW_RETRY_INLIERS  # plausible poses fits chance matches too
            report = self._conclude(features, root, candidates, "accepted after a retry among plausible poses")
        return report

    def near_duplicates(
        self, features: CreativeFeatures, threshold: float = 0.6, *, exclude: Iterable[Hashable] = ()
    ) -> list[tuple[Hashable, float]]:
        """Registered creatives that scans could confuse with `features` (a creative's artwork).

        similarity = the smaller of the two creatives' shares of feature-bearing grid cells covered
        by geometric inliers between them: ~1 for the same artwork with small edits, ~0.2-0.4 for
        two creatives that share only their template. Sorted by similarity, highest first.
        """
        self.refresh()
        excluded = set(exclude)
        found = []
        root = features.rootsift
        for creative_id in self._similar(root, self.config.top_n or 8, excluded, matchable_only=True):
            entry = self._entries[creative_id]
            verified = self._verify(features, entry, Candidate(creative_id, 0.0), query_root=root)
            if verified is None:
                continue
            similarity = min(
                _cell_coverage(entry.cells, verified.entry_index[verified.inliers]),
                _cell_coverage(_cells(features.keypoints, features.image_size), verified.query_index[verified.inliers]),
            )
            if similarity >= threshold:
                found.append((creative_id, round(similarity, 4)))
        return sorted(found, key=lambda item: -item[1])

    # internals: shortlist ------------------------------------------------------------------------

    def _train(self) -> None:
        rng = np.random.default_rng(self._seed)
        parts = [entry.features.descriptors for entry in self._entries.values() if len(entry.features)]
        descriptors = np.concatenate(parts) if parts else np.zeros((0, 128), np.uint8)
        total = len(descriptors)
        sample_size = max(100_000, 10 * inverted_lists(total))
        if total > sample_size:
            descriptors = descriptors[np.sort(rng.choice(total, sample_size, replace=False))]
        if len(descriptors) < 64:  # too little to train on: spread random unit vectors instead
            descriptors = np.abs(rng.normal(size=(256, 128))).astype(np.float32)
            descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
        else:
            descriptors = rootsift(descriptors)
        self._descriptors = _DescriptorIndex(self._seed)
        self._descriptors.train(descriptors, total)
        self._unindexed, self._indexing = set(self._entries), None

    def _shortlist(self, voted_for: np.ndarray) -> list[tuple[Hashable, float]]:
        """The `top_n` matchable creatives with the most votes (see `_votes`), most first; with
        `top_n=None` every matchable creative."""
        cfg = self.config
        votes = np.bincount(voted_for[voted_for >= 0], minlength=self._next_slot).astype(np.float64)
        if cfg.top_n is None:
            return [(cid, float(votes[self._entries[cid].slot])) for cid in sorted(
                (cid for cid, entry in self._entries.items() if entry.matchable),
                key=lambda cid: (-votes[self._entries[cid].slot], self._entries[cid].slot))]
        ranked = []
        for slot in np.argsort(-votes, kind="stable"):
            if votes[slot] <= 0 or len(ranked) == cfg.top_n:
                break
            creative_id = self._by_slot.get(int(slot))
            if creative_id is not None and self._entries[creative_id].matchable:
                ranked.append((creative_id, float(votes[slot])))
        return ranked

    def _similar(self, root: np.ndarray, n: int, excluded: set, *, matchable_only: bool,
                 features: CreativeFeatures | None = None) -> list[Hashable]:
        """The `n` creatives holding the most near-identical copies of the RootSIFT descriptors
        `root`; with `features` (whose descriptors `root` are), also the `n` holding the most of them
        in the same place on the page: a template's content is where the template puts it, while the
        most near-identical copies may be a product shot that other layouts show elsewhere."""
        distance, slots, numbers = self._descriptors.search(root, SIMILAR_NEIGHBOURS, SIMILAR_NPROBE, SIMILAR_EF)
        close = (distance < SAME_DETAIL_DISTANCE) & (slots >= 0)
        rankings = [np.bincount(slots[close], minlength=self._next_slot)]
        if features is not None and close.any():
            rows, columns = np.nonzero(close)
            hit_slots, hit_numbers = slots[rows, columns], numbers[rows, columns]
            there = np.full((len(rows), 2), np.inf)
            order = np.argsort(hit_slots, kind="stable")
            starts = np.r_[0, np.nonzero(np.diff(hit_slots[order]))[0] + 1, len(order)]
            for lo, hi in zip(starts[:-1], starts[1:]):
                creative_id = self._by_slot.get(int(hit_slots[order[lo]]))
                if creative_id is not None:
                    other = self._entries[creative_id].features
                    chosen = order[lo:hi]
                    there[chosen] = other.keypoints[hit_numbers[chosen]] / np.array(other.image_size, np.float32)
            here = features.keypoints[rows] / np.array(features.image_size, np.float32)
            in_place = np.abs(there - here).max(axis=1) < IN_PLACE
            rankings.append(np.bincount(hit_slots[in_place], minlength=self._next_slot))
        found: list[Hashable] = []
        for counts in rankings:
            taken = 0
            for slot in np.argsort(-counts, kind="stable"):
                if counts[slot] < self.config.min_matches or taken == n:
                    break
                creative_id = self._by_slot.get(int(slot))
                if creative_id is None or creative_id in excluded:
                    continue
                if matchable_only and not self._entries[creative_id].matchable:
                    continue
                taken += 1
                if creative_id not in found:
                    found.append(creative_id)
        return found

    # internals: shared content -------------------------------------------------------------------

    def _compare_with_neighbours(self, entry: _Entry) -> None:
        """Verify `entry` against the creatives most like it; record the inliers as shared content,
        and each neighbour met as one whose shared content is to be recounted."""
        mine = self._shared.setdefault(entry.creative_id, {})
        if not len(entry.features):
            return
        root = entry.features.rootsift
        for other_id in self._similar(root, self.config.neighbours, {entry.creative_id}, matchable_only=False,
                                      features=entry.features):
            if other_id in mine:
                continue
            self._uncounted.add(other_id)  # before the record: a cut-short refresh recounts it anyway
            verified = self._verify(entry.features, self._entries[other_id], Candidate(other_id, 0.0),
                                    query_root=root)
            if verified is None:
                mine[other_id] = self._shared.setdefault(other_id, {})[entry.creative_id] = np.zeros(0, np.int64)
            else:
                mine[other_id] = verified.query_index[verified.inliers]
                self._shared.setdefault(other_id, {})[entry.creative_id] = verified.entry_index[verified.inliers]

    def _count_shared(self, entry: _Entry) -> None:
        """share_count: for each feature, the compared creatives that hold the same content around it.

        Content is shared around a geometric inlier between two creatives (within SHARED_RADIUS of
        the page's long side): a template region is marked as a whole, including the details that
        SIFT happened to find in one creative but not in the other."""
        points = entry.features.keypoints
        counts = np.zeros(len(points), np.int32)
        for shared in self._shared.get(entry.creative_id, {}).values():
            if len(shared):
                counts += _near(points, points[shared], entry.features.image_size)
        entry.share_count = counts
        entry.weight = (1.0 / (1.0 + counts)).astype(np.float32)

    # internals: verification -------------------------------------------------------------------

    def _verify(self, query: CreativeFeatures, entry: _Entry, candidate: Candidate,
                pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, *,
                query_root: np.ndarray | None = None, plausible_only: bool = False) -> _Verified | None:
        """Ratio-test matches from the query's features to the entry's (`pairs` when the caller has
        them; `query_root`: the query's RootSIFT when the caller has it), then a checked homography
        (`plausible_only`: found by `plausible_ransac` instead of MAGSAC)."""
        cfg = self.config
        if len(entry.features) < 2 or len(query) < 2:
            candidate.rejected = "too few features"
            return None
        if pairs is None:
            similarity = (query.rootsift if query_root is None else query_root) @ entry.features.rootsift.T
            best = similarity.argmax(axis=1)
            rows = np.arange(len(query))
            s1 = similarity[rows, best]
            similarity[rows, best] = -1.0
            s2 = similarity.max(axis=1)
            # distances of unit vectors: d^2 = 2 - 2 s; ratio test d1 < ratio * d2
            keep = (2.0 - 2.0 * s1) < (cfg.ratio**2) * (2.0 - 2.0 * s2)
            query_index, entry_index, d1 = rows[keep], best[keep], 2.0 - 2.0 * s1[keep]
        else:
            query_index, entry_index, d1 = pairs
        order = np.argsort(d1, kind="stable")  # one match per entry feature: the most similar
        _, first = np.unique(entry_index[order], return_index=True)
        query_index, entry_index = query_index[order][first], entry_index[order][first]
        candidate.matches = len(query_index)
        if len(query_index) < cfg.min_matches:
            candidate.rejected = "too few matches"
            return None
        source = entry.features.keypoints[entry_index].astype(np.float64)
        destination = query.keypoints[query_index].astype(np.float64)
        threshold = cfg.ransac_threshold * query.pixel_scale
        if plausible_only:
            homography, mask = plausible_ransac(source, destination, threshold, entry.features.image_size,
                                                query.image_size, cfg)
        else:
            homography, mask = cv2.findHomography(source, destination, cv2.USAC_MAGSAC, threshold,
                                                  maxIters=cfg.ransac_iterations, confidence=0.999)
        if homography is None or mask is None:
            candidate.rejected = "no plausible homography" if plausible_only else "no homography"
            return None
        inliers = mask.ravel().astype(bool)
        problem = implausible(homography, entry.features.image_size, query.image_size, cfg)
        if problem:
            candidate.rejected = problem
            return None
        candidate.rejected = None  # (the pose retry follows an implausible first fit)
        candidate.homography = homography
        candidate.inliers = int(inliers.sum())
        return _Verified(inliers, query_index, entry_index, homography)

    def _score(self, query: CreativeFeatures, entry: _Entry, verified: _Verified, candidate: Candidate,
               unambiguous: np.ndarray) -> None:
        """Figures of a verified candidate. An inlier is distinctive when its creative feature is
        shared with no other creative in place (not template) and its photo descriptor voted for
        this creative (no other creative has a look-alike detail anywhere: not a common glyph)."""
        cfg = self.config
        inlier_idx = verified.entry_index[verified.inliers]
        distinctive_mask = (entry.share_count == 0)[inlier_idx] & unambiguous[verified.query_index[verified.inliers]]
        distinctive = inlier_idx[distinctive_mask]
        candidate.score = float(entry.weight[inlier_idx].sum())
        candidate.coverage = _cell_coverage(entry.cells, inlier_idx)
        _set_evidence(candidate, entry, inlier_idx, distinctive, verified.homography, query.image_size)
        candidate.inlier_span = _span(entry, inlier_idx)
        if candidate.inliers < cfg.min_inliers:
            candidate.rejected = TOO_FEW_INLIERS
        elif candidate.inliers < cfg.min_inlier_ratio * candidate.matches:
            # the photo's details match this creative's, but not in one page geometry: a chance fit
            candidate.rejected = "too few of the matches agree with the homography"
        elif candidate.inlier_span < cfg.min_inlier_span:
            # one picture of the page matched (another page with the same product shot), not the page
            candidate.rejected = ONE_PICTURE
        elif candidate.distinctive_inliers < cfg.min_distinctive_inliers:
            candidate.rejected = TOO_FEW_DISTINCTIVE
        elif candidate.distinctive_cells < cfg.min_distinctive_cells:
            candidate.rejected = TOO_FEW_PLACES
        elif candidate.distinctive_coverage < cfg.min_distinctive_coverage:
            candidate.rejected = TOO_LITTLE_COVERAGE
        elif candidate.distinctive_extent < cfg.min_distinctive_extent:
            # a word or a line of text that two pages share, perhaps even in the same place
            candidate.rejected = ALONG_A_LINE
        elif _own_content_missing(candidate, cfg):
            candidate.rejected = OWN_CONTENT_MISSING

    def _second_look(self, query: CreativeFeatures, query_root: np.ndarray, candidates: list[Candidate],
                     report: MatchReport) -> MatchReport:
        """Guided matching for the best candidate when its geometry held (a plausible homography, a
        clear margin, enough inliers or at least `guided_min_inliers`) but the first pass found too little distinctive
        evidence: typical of a small or blurred page, whose details are not among the nearest of
        their descriptors over the whole index. Each creative feature is looked for only where the
        homography puts it, and must be the creative's most similar feature to what is there. The
        distinctive matches found must be many and spread in two dimensions (a headline shared word
        for word with another page lies along a line). When they are not, the look in place (see the
        module's notes) may still accept."""
        cfg = self.config
        ranked = sorted(candidates, key=lambda c: -c.score)
        if not ranked:
            return report
        best = ranked[0]
        held = best.rejected in EVIDENCE_REJECTIONS or (best.rejected == TOO_FEW_INLIERS
                                                        and best.inliers >= cfg.guided_min_inliers)
        # a pose from fewer inliers gets the look in place only: chance poses among plausible ones
        # explain that many matches too, and only the look in place asks the creative's own content to
        # agree in many more places than its template's other creatives' at that pose
        few = best.rejected in (TOO_FEW_INLIERS, TOO_FEW_RETRY_INLIERS) and best.inliers >= cfg.in_place_min_inliers
        if not (held or few) or (len(ranked) > 1 and best.score < cfg.margin * ranked[1].score):
            return report
        if best.guided_distinctive is not None or best.in_place_cells is not None:  # looked at already (before
            return report  # the pose retry): nothing changed
        entry = self._entries[best.creative_id]
        if not held:
            return self._look_in_place(query, best, entry, best.homography, candidates, report)
        creative_index, homography = _guided_matches(query, query_root, entry.features, best.homography, cfg)
        guided = Candidate(best.creative_id, best.shortlist_score)
        _set_evidence(guided, entry, creative_index, _own(entry, creative_index),
                      homography, query.image_size)
        best.guided_distinctive, best.guided_extent = guided.distinctive_inliers, guided.distinctive_extent
        # like the first pass's inliers, the guided matches must span the page, not one picture on it
        if not (guided.distinctive_inliers < cfg.guided_min_distinctive or guided.distinctive_cells < cfg.guided_min_cells
                or guided.distinctive_extent < cfg.guided_min_extent
                or _span(entry, creative_index) < cfg.guided_min_span or _own_content_missing(guided, cfg)):
            return self._accept_on_look(best, guided, homography, candidates, "accepted on a second look")
        return self._look_in_place(query, best, entry, homography, candidates, report)

    def _look_in_place(self, query: CreativeFeatures, best: Candidate, entry: _Entry, homography: np.ndarray,
                       candidates: list[Candidate], report: MatchReport) -> MatchReport:
        """The photo's SIFT pass did not find the page's details again (blurred, small): describe the
        creative's keypoints where the pose puts them, and ask for more of them, spread wider."""
        cfg = self.config
        described = described_in_place(query, entry.features, homography, cfg)
        if described is None:
            return report
        in_place = Candidate(best.creative_id, best.shortlist_score)
        _set_evidence(in_place, entry, described, _own(entry, described), homography,
                      query.image_size)
        best.in_place_cells = in_place.distinctive_cells
        if (in_place.distinctive_cells < cfg.in_place_min_cells or in_place.distinctive_extent < cfg.in_place_min_extent
                or _span(entry, described) < cfg.guided_min_span or _own_content_missing(in_place, cfg)):
            return report
        # the same look for the creatives it shares most content with (its template's, laid out alike):
        # described in place at the same pose, only what the template does not teach agrees for them
        # (the edges of its picture boxes, words of a headline in the same place); the creative's own
        # content must agree in clearly more places than theirs
        mates = self._template_mates(entry, cfg.in_place_controls)
        if not mates:  # its template is not learnt: what is its own is not known well enough
            return report
        for mate in mates:
            found = described_in_place(query, mate.features, homography, cfg)
            cells = len(np.unique(mate.cells[_own(mate, found)]))
            best.in_place_control_cells = max(best.in_place_control_cells or 0, cells)
        if in_place.distinctive_cells < cfg.in_place_control_factor * best.in_place_control_cells:
            return report
        return self._accept_on_look(best, in_place, homography, candidates, ACCEPTED_IN_PLACE)

    def _template_mates(self, entry: _Entry, n: int) -> list[_Entry]:
        """Up to `n` creatives of `entry`'s size that share the most of its features (its template), of
        those with keypoint frames."""
        shared = self._shared.get(entry.creative_id, {})
        ranked = sorted((other for other in shared if len(shared[other]) and self._entries[other].features.has_frames
                         and self._entries[other].features.image_size == entry.features.image_size),
                        key=lambda other: (-len(shared[other]), self._entries[other].slot))
        return [self._entries[other] for other in ranked[:n]]

    def _accept_on_look(self, best: Candidate, evidence: Candidate, homography: np.ndarray,
                        candidates: list[Candidate], reason: str) -> MatchReport:
        best.rejected = None
        best.homography = homography
        for figure in ("distinctive_inliers", "distinctive_cells", "distinctive_coverage", "template_coverage",
                       "distinctive_extent"):
            setattr(best, figure, getattr(evidence, figure))
        return self._decide(candidates, reason=reason)

    def _conclude(self, query: CreativeFeatures, query_root: np.ndarray, candidates: list[Candidate],
                  reason: str = "accepted") -> MatchReport:
        """The decision on the verified candidates, with a second look when it found no match; an
        answer on thin evidence is then confirmed in place."""
        report = self._decide(candidates, reason)
        if report.match is None:
            report = self._second_look(query, query_root, candidates, report)
        if report.match is None or report.reason == ACCEPTED_IN_PLACE:
            return report
        return self._confirmed_in_place(query, candidates, report)

    def _confirmed_in_place(self, query: CreativeFeatures, candidates: list[Candidate],
                            report: MatchReport) -> MatchReport:
        """An answer whose distinctive evidence lies in few grid cells (`in_place_confirm_cells`) must
        show the creative's own content spread across the page when described in place at its pose
        (`in_place_confirm_extent`): pages of its template with a few of its details in the same
        place (a word, a price, a picture's edge) pass the first pass and the second look at times,
        and in place their agreement stays in those few places."""
        cfg = self.config
        best = next(c for c in candidates if c.creative_id == report.match.creative_id)
        if best.distinctive_cells > cfg.in_place_confirm_cells:
            return report
        entry = self._entries[best.creative_id]
        described = described_in_place(query, entry.features, report.match.homography, cfg)
        if described is None:  # no grey image or no keypoint frames: the answer stands as before
            return report
        minor, _ = _extents(entry.features.keypoints[_own(entry, described)])
        best.in_place_extent = minor / min(entry.features.image_size)
        if best.in_place_extent >= cfg.in_place_confirm_extent:
            return report
        best.rejected = NOT_CONFIRMED_IN_PLACE
        return MatchReport(None, candidates, NOT_CONFIRMED_IN_PLACE)

    def _decide(self, candidates: list[Candidate], reason: str = "accepted") -> MatchReport:
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
        return MatchReport(match, candidates, reason)


def _votes(neighbours: tuple[np.ndarray, np.ndarray, np.ndarray], ratio: float) -> np.ndarray:
    """For each photo descriptor, the slot of the creative it votes for, or -1.

    A descriptor votes for the creative owning its nearest indexed descriptor when that one is
    clearly nearer (`ratio`) than the nearest descriptor of any other creative. Template content
    (logo, price band) and common glyphs are about as near in many creatives and cast no vote: the
    votes come from what makes a creative itself.
    """
    distance, slots, _ = neighbours
    first = slots[:, 0]
    other = (slots != first[:, None]) & (slots >= 0)
    runner_up = np.where(other.any(axis=1), distance[np.arange(len(slots)), other.argmax(axis=1)], distance[:, -1])
    return np.where((first >= 0) & (distance[:, 0] < ratio * runner_up), first, -1)


def _pairs_from_neighbours(neighbours: tuple[np.ndarray, np.ndarray, np.ndarray], slot: int, ratio: float):
    """Tentative matches with one creative, read from the shortlist's nearest-neighbour lists: a
    photo descriptor whose list holds features of the creative is matched to the nearest of them,
    if it is clearly nearer than the creative's next one in the list (when the list holds one).
    Returns (photo feature numbers, creative feature numbers, distances)."""
    distance, slots, numbers = neighbours
    mine = slots == slot
    rows = np.nonzero(mine.any(axis=1))[0]
    mine = mine[rows]
    first = mine.argmax(axis=1)
    later = mine.copy()
    later[np.arange(len(rows)), first] = False
    d1 = distance[rows, first]
    keep = ~later.any(axis=1) | (d1 < ratio * distance[rows, later.argmax(axis=1)])
    return rows[keep], numbers[rows[keep], first[keep]], d1[keep]


def _guided_matches(query: CreativeFeatures, query_root: np.ndarray, creative: CreativeFeatures,
                    homography: np.ndarray, cfg: MatcherConfig) -> tuple[np.ndarray, np.ndarray]:
    """Creative features found where `homography` puts them in the photo: (creative feature
    numbers, the homography refitted on them). A match lies within the RANSAC threshold of the
    projected feature, its descriptors are similar (`guided_max_distance`), and the photo feature
    is clearly more like it than like any other feature of the creative (`guided_ratio`; a
    repeated motif or a common glyph is not). One match per feature on either side."""
    creative_root = creative.rootsift
    pairs = _pairs_near(query, query_root, creative, creative_root, homography, GUIDED_SEARCH * query.pixel_scale)
    close = np.nonzero(pairs[3] < GUIDED_REFIT_DISTANCE)[0]
    close = close[_one_to_one(pairs[0][close], pairs[1][close], pairs[3][close])]
    if len(close) >= 8:  # a first-pass homography from few inliers is refined on the guided matches
        source = creative.keypoints[pairs[0][close]].astype(np.float64)
        destination = query.keypoints[pairs[1][close]].astype(np.float64)
        threshold = 5.0 * query.pixel_scale
        refit, mask = cv2.findHomography(source, destination, cv2.RANSAC, threshold)
        # ... when it explains more of them than the first pass's homography does: in a dense
        # texture a homography that squeezes the page can land many features near look-alikes
        if (refit is not None and implausible(refit, creative.image_size, query.image_size, cfg) is None
                and mask.sum() > (np.linalg.norm(_project(homography, source) - destination, axis=1)
                                  <= threshold).sum()):
            homography = refit
            pairs = _pairs_near(query, query_root, creative, creative_root, homography,
                                GUIDED_SEARCH * query.pixel_scale)
    creative_index, query_index, error, distance = pairs
    keep = (error <= cfg.ransac_threshold * query.pixel_scale) & (distance <= cfg.guided_max_distance)
    creative_index, query_index, distance = creative_index[keep], query_index[keep], distance[keep]
    if len(creative_index):
        # the photo feature's best match among the creative's other features (not the same spot:
        # SIFT reports one spot several times with different orientations)
        photo_features, row = np.unique(query_index, return_inverse=True)
        similarity = (query_root[photo_features] @ creative_root.T)[row]
        other = np.sqrt(np.maximum(2.0 - 2.0 * _best_elsewhere(similarity, creative_index, creative), 0.0))
        keep = distance <= cfg.guided_ratio * other
        creative_index, query_index, distance = creative_index[keep], query_index[keep], distance[keep]
    chosen = _one_to_one(creative_index, query_index, distance)
    return creative_index[chosen], homography


def described_in_place(query: CreativeFeatures, creative: CreativeFeatures, homography: np.ndarray,
                       cfg: MatcherConfig) -> np.ndarray | None:
    """Creative features found in the photo by describing them in place: the photo's grey image is
    rectified onto the creative (at the resolution the creative's features were found at) by
    `homography`, and a SIFT descriptor is computed in each creative keypoint's own frame (position,
    size, angle, octave); a feature is found when that descriptor is similar to the creative's
    (`in_place_max_distance`) and clearly more like it than like any other feature of the creative
    (`in_place_ratio`: not a repeated motif or a common glyph). Nothing is detected: a blurred or
    small page whose details the photo's SIFT pass did not find again still shows them where they
    belong, where another page of the same template shows other content.
    None when the photo's grey image or the creative's keypoint frames (features format 1) are missing."""
    if query.grey is None or not creative.has_frames:
        return None
    octave = creative.octaves.astype(np.int64) & 255
    octave = np.where(octave >= 128, octave - 256, octave)  # OpenCV packs a signed octave in the low byte
    scale = creative.pixel_scale
    size = (max(1, round(creative.image_size[0] / scale)), max(1, round(creative.image_size[1] / scale)))
    # creative pixels as its features were found -> photo pixels as its features were found
    to_photo = np.diag([1.0 / query.pixel_scale, 1.0 / query.pixel_scale, 1.0]) @ homography \
        @ np.diag([scale, scale, 1.0])
    points = creative.keypoints.astype(np.float64) / scale
    grey_size = (query.grey.shape[1], query.grey.shape[0])
    chosen = np.nonzero((octave >= cfg.in_place_min_octave) & _inside(_project(to_photo, points), grey_size))[0]
    if not len(chosen):
        return chosen
    rectified = cv2.warpPerspective(query.grey, to_photo, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_REPLICATE)
    frames = [cv2.KeyPoint(float(points[i, 0]), float(points[i, 1]), float(creative.sizes[i]),
                           float(creative.angles[i]), 0.0, int(creative.octaves[i])) for i in chosen]
    found, descriptors = cv2.SIFT_create().compute(rectified, frames)
    if descriptors is None or len(found) != len(chosen):  # OpenCV keeps the keypoints it is given; be sure
        return np.zeros(0, np.int64)
    root = rootsift(np.clip(np.rint(descriptors), 0, 255).astype(np.uint8))
    creative_root = creative.rootsift
    distance = np.sqrt(np.maximum(2.0 - 2.0 * np.einsum("ij,ij->i", root, creative_root[chosen]), 0.0))
    close = distance < cfg.in_place_max_distance
    chosen, root, distance = chosen[close], root[close], distance[close]
    if not len(chosen):
        return chosen
    other = np.sqrt(np.maximum(2.0 - 2.0 * _best_elsewhere(root @ creative_root.T, chosen, creative), 0.0))
    return chosen[distance < cfg.in_place_ratio * other]


def _best_elsewhere(similarity: np.ndarray, creative_index: np.ndarray, creative: CreativeFeatures) -> np.ndarray:
    """Per row, the highest `similarity` [n, creative features] to a creative feature that is not at
    the same spot as the row's own feature `creative_index` (within 3 px). The best is taken, and
    while it lies at the same spot it is struck out and the next best taken: a spot holds a few
    features, so this touches a few entries where masking every same-spot pair measured n x features
    distances. Changes `similarity`."""
    points = creative.keypoints
    radius = 3.0 * creative.pixel_scale
    best = similarity.argmax(axis=1)
    pending = np.arange(len(similarity))
    while len(pending):
        gap = points[creative_index[pending]] - points[best[pending]]
        at_spot = (np.sqrt((gap * gap).sum(axis=1)) < radius) & (similarity[pending, best[pending]] > -1.0)
        pending = pending[at_spot]
        similarity[pending, best[pending]] = -1.0
        best[pending] = similarity[pending].argmax(axis=1)
    return similarity[np.arange(len(similarity)), best]


def _one_to_one(creative_index: np.ndarray, query_index: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Positions of the pairs kept when each feature on either side keeps its most similar pair."""
    chosen = np.arange(len(distance))
    for side in (creative_index, query_index):
        order = chosen[np.argsort(distance[chosen], kind="stable")]
        _, first = np.unique(side[order], return_index=True)
        chosen = order[first]
    return chosen


def _pairs_near(query: CreativeFeatures, query_root: np.ndarray, creative: CreativeFeatures,
                creative_root: np.ndarray, homography: np.ndarray, radius: float):
    """Every (creative feature, photo feature) pair within `radius` photo px of where `homography`
    puts the creative feature: (creative numbers, photo numbers, distances in px, RootSIFT distances)."""
    projected = _project(homography, creative.keypoints)
    inside = np.nonzero(_inside(projected, query.image_size))[0]
    photo = query.keypoints.astype(np.float64)
    columns = int(query.image_size[0] / radius) + 3
    bucket = (np.floor(photo[:, 1] / radius).astype(np.int64) + 1) * columns \
        + np.floor(photo[:, 0] / radius).astype(np.int64) + 1
    order = np.argsort(bucket, kind="stable")
    sorted_buckets = bucket[order]
    cx = np.floor(projected[inside, 0] / radius).astype(np.int64) + 1
    cy = np.floor(projected[inside, 1] / radius).astype(np.int64) + 1
    creative_parts, photo_parts = [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            key = (cy + dy) * columns + cx + dx
            lo = np.searchsorted(sorted_buckets, key, "left")
            counts = np.searchsorted(sorted_buckets, key, "right") - lo
            if not counts.sum():
                continue
            creative_parts.append(np.repeat(inside, counts))
            photo_parts.append(order[np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())])
    if not creative_parts:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0), np.zeros(0)
    creative_index, query_index = np.concatenate(creative_parts), np.concatenate(photo_parts)
    error = np.linalg.norm(projected[creative_index] - photo[query_index], axis=1)
    near = error <= radius
    creative_index, query_index, error = creative_index[near], query_index[near], error[near]
    similarity = np.einsum("ij,ij->i", creative_root[creative_index], query_root[query_index])
    return creative_index, query_index, error, np.sqrt(np.maximum(2.0 - 2.0 * similarity, 0.0))


SHARED_MIN = 1
SHARED_RADIUS = 0.005  # of a creative's long side: content within it of a shared inlier is shared


def _near(points: np.ndarray, anchors: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Which `points` lie within about SHARED_RADIUS of an anchor (on a raster of that cell size)."""
    cell = max(size) * SHARED_RADIUS
    shape = (int(size[1] / cell) + 2, int(size[0] / cell) + 2)
    ay = np.clip((anchors[:, 1] / cell).astype(int), 0, shape[0] - 1)
    ax = np.clip((anchors[:, 0] / cell).astype(int), 0, shape[1] - 1)
    anchors_per_cell = np.bincount(ay * shape[1] + ax, minlength=shape[0] * shape[1]).reshape(shape)
    raster = (anchors_per_cell >= SHARED_MIN).astype(np.uint8)
    raster = cv2.dilate(raster, np.ones((3, 3), np.uint8))
    py = np.clip((points[:, 1] / cell).astype(int), 0, shape[0] - 1)
    px = np.clip((points[:, 0] / cell).astype(int), 0, shape[1] - 1)
    return raster[py, px].astype(bool)


def _project(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    mapped = np.c_[points.astype(np.float64), np.ones(len(points))] @ homography.T
    return mapped[:, :2] / np.where(np.abs(mapped[:, 2:3]) < 1e-12, 1e-12, mapped[:, 2:3])


def _inside(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return (points[:, 0] >= 0) & (points[:, 1] >= 0) & (points[:, 0] < size[0]) & (points[:, 1] < size[1])


def _extents(points: np.ndarray) -> tuple[float, float]:
    """4 standard deviations of `points` along their covariance's minor and major axes (0, 0 for
    fewer than 3 points)."""
    if len(points) < 3:
        return 0.0, 0.0
    smallest, largest = np.linalg.eigvalsh(np.cov(points.astype(np.float64), rowvar=False))[[0, -1]]
    return 4.0 * math.sqrt(max(float(smallest), 0.0)), 4.0 * math.sqrt(max(float(largest), 0.0))


def _span(entry: _Entry, indices: np.ndarray) -> float:
    """Major-axis extent of the entry's features `indices`, in page widths/heights: whole page or one picture."""
    return _extents(entry.features.keypoints[indices] / np.array(entry.features.image_size, np.float32))[1]


def _own(entry: _Entry, indices: np.ndarray) -> np.ndarray:
    """Those of the entry's features `indices` that no other creative shares (its own content)."""
    return indices[entry.share_count[indices] == 0]


def _set_evidence(candidate: Candidate, entry: _Entry, matched: np.ndarray, distinctive: np.ndarray,
                  homography: np.ndarray, photo_size: tuple[int, int]) -> None:
    """The candidate's evidence figures from its matched creative features (`matched`, of which
    `distinctive` count as its own content): distinctive count, grid cells, coverage and minor-axis
    extent, and the coverage of the template's content (matched features shared with other creatives)."""
    candidate.distinctive_inliers = len(distinctive)
    candidate.distinctive_cells = len(np.unique(entry.cells[distinctive]))
    # of the distinctive content that the homography puts inside the photo, how much matched:
    # a shared word or price in the same place covers a sliver of it, the right creative most
    visible = _inside(_project(homography, entry.features.keypoints), photo_size)
    candidate.distinctive_coverage = _cell_coverage(entry.cells[(entry.share_count == 0) & visible], None,
                                                    hits=entry.cells[distinctive])
    candidate.template_coverage = _cell_coverage(entry.cells[(entry.share_count > 0) & visible], None,
                                                 hits=entry.cells[matched[entry.share_count[matched] > 0]])
    minor, _ = _extents(entry.features.keypoints[distinctive])
    candidate.distinctive_extent = minor / min(entry.features.image_size)


def _own_content_missing(candidate: Candidate, cfg: MatcherConfig) -> bool:
    """The template's content matched where it is visible, the creative's own content far less: the
    page shares the template and a few details (a headline's first words, a price in the band), not
    the pictures and the rest. Blur and occlusion cost both kinds of content alike."""
    return candidate.distinctive_coverage < cfg.min_own_to_template * candidate.template_coverage


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


# `implausible`'s checks that are cheap enough to run on thousands of homographies at once, in its order
_OUTLINE_CHECKS = (NOT_FINITE, CROSSES_HORIZON, TOO_MUCH_PERSPECTIVE, NOT_CONVEX, MIRRORED, SIZE_OUT_OF_RANGE)


def implausible(homography: np.ndarray, creative_size: tuple[int, int], photo_size: tuple[int, int],
                cfg: MatcherConfig) -> str | None:
    """Why `homography` (creative px -> photo px) cannot be a photo of a flat page, or None."""
    failed, quads, areas = _outline_problems(np.asarray(homography, np.float64)[None], creative_size,
                                             photo_size, cfg)
    if failed[0] < len(_OUTLINE_CHECKS):
        return _OUTLINE_CHECKS[failed[0]]
    quad, area = quads[0], float(areas[0])
    width, height = creative_size
    frame = np.array([[0, 0], [photo_size[0], 0], [photo_size[0], photo_size[1]], [0, photo_size[1]]], np.float32)
    in_frame, _ = cv2.intersectConvexConvex(quad.astype(np.float32), frame)
    if in_frame < cfg.min_in_frame * area:
        return OUTSIDE_THE_PHOTO
    centre = np.array([width / 2, height / 2, 1.0])
    a = homography @ centre
    jacobian = (homography[:2, :2] * a[2] - np.outer(a[:2], homography[2, :2])) / a[2] ** 2
    singular = np.linalg.svd(jacobian, compute_uv=False)
    if singular[1] <= 1e-9 or singular[0] / singular[1] > cfg.max_anisotropy:
        return TOO_MUCH_SHEAR
    return None


def plausible_ransac(source: np.ndarray, destination: np.ndarray, threshold: float,
                     creative_size: tuple[int, int], photo_size: tuple[int, int], cfg: MatcherConfig,
                     seed: int = 0) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A homography source -> destination by RANSAC among plausible page poses only: (homography,
    inlier mask [n, 1] uint8) or (None, None).

    MAGSAC ranks every model its samples give, and with a few true matches among many chance ones a
    degenerate model (the page crossing the horizon, folded, mirrored) can outrank the true pose.
    Here `cfg.retry_hypotheses` 4-pair samples are solved at once, the poses no photo of a page could
    show are dropped (`implausible`'s outline checks, run on all of them at once), the rest are scored
    by truncated squared reprojection error (MSAC), and the best is refitted on its inliers while that
    keeps it plausible and gains inliers.
    Seeded: the same matches give the same answer."""
    n = len(source)
    if n < 4:
        return None, None
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, (2 * cfg.retry_hypotheses, 4))
    ordered = np.sort(draws, axis=1)
    samples = draws[(np.diff(ordered, axis=1) > 0).all(axis=1)][: cfg.retry_hypotheses]  # 4 different pairs
    homographies, solved = _four_point_homographies(source[samples], destination[samples])
    failed, _, _ = _outline_problems(homographies, creative_size, photo_size, cfg)
    homographies = homographies[solved & (failed == len(_OUTLINE_CHECKS))]  # the rest: as `implausible` does
    if not len(homographies):
        return None, None
    projected = np.einsum("kij,nj->kni", homographies, np.c_[source, np.ones(n)])
    w = projected[..., 2:3]
    error = ((projected[..., :2] / np.where(np.abs(w) < 1e-12, 1e-12, w) - destination) ** 2).sum(axis=2)
    def within(homography: np.ndarray) -> np.ndarray:
        return np.linalg.norm(_project(homography, source) - destination, axis=1) <= threshold

    best = homographies[np.argmin(np.minimum(error, threshold**2).sum(axis=1))]
    inliers = within(best)
    for _ in range(3):  # local optimisation: least squares on the inliers
        if inliers.sum() < 5:
            break
        refit, _ = cv2.findHomography(source[inliers], destination[inliers], 0)
        if refit is None or implausible(refit, creative_size, photo_size, cfg):
            break
        more = within(refit)
        if more.sum() < inliers.sum():
            break
        best, inliers = refit, more
    return best / best[2, 2], inliers.astype(np.uint8)[:, None]


def _four_point_homographies(source: np.ndarray, destination: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Homographies [k, 3, 3] from k samples of 4 point pairs ([k, 4, 2] each; the 8x8 linear system
    with h33 = 1, on coordinates scaled to about 1), and which samples were not degenerate [k]."""
    k = len(source)
    source_scale = max(float(np.abs(source).max()), 1.0)
    destination_scale = max(float(np.abs(destination).max()), 1.0)
    x, y = source[..., 0] / source_scale, source[..., 1] / source_scale
    u, v = destination[..., 0] / destination_scale, destination[..., 1] / destination_scale
    a = np.zeros((k, 8, 8))
    a[:, 0::2, 0], a[:, 0::2, 1], a[:, 0::2, 2] = x, y, 1.0
    a[:, 0::2, 6], a[:, 0::2, 7] = -x * u, -y * u
    a[:, 1::2, 3], a[:, 1::2, 4], a[:, 1::2, 5] = x, y, 1.0
    a[:, 1::2, 6], a[:, 1::2, 7] = -x * v, -y * v
    b = np.zeros((k, 8))
    b[:, 0::2], b[:, 1::2] = u, v
    solved = np.abs(np.linalg.det(a)) > 1e-12
    h = np.zeros((k, 8))
    if solved.any():
        h[solved] = np.linalg.solve(a[solved], b[solved][..., None])[..., 0]
    homographies = np.concatenate([h, np.ones((k, 1))], axis=1).reshape(k, 3, 3)
    homographies = np.diag([destination_scale, destination_scale, 1.0]) @ homographies \
        @ np.diag([1.0 / source_scale, 1.0 / source_scale, 1.0])
    return homographies, solved


def _outline_problems(homographies: np.ndarray, creative_size: tuple[int, int], photo_size: tuple[int, int],
                      cfg: MatcherConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For homographies [k, 3, 3]: the position in `_OUTLINE_CHECKS` of the first check each fails
    (len(_OUTLINE_CHECKS) when it passes them all), and the creative's outline in the photo [k, 4, 2]
    with its area [k]: finite, the page's corners on one side of the horizon, bounded perspective, a
    convex outline that is not mirrored, a size in the photo in range."""
    width, height = creative_size
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float64)
    with np.errstate(all="ignore"):  # a homography failing one check may divide by zero in the next
        mapped = np.einsum("kij,cj->kci", homographies, corners)
        w = mapped[..., 2]
        size = np.abs(w)
        quads = mapped[..., :2] / w[..., None]
        edges = np.roll(quads, -1, axis=1) - quads
        following = np.roll(edges, -1, axis=1)
        turns = edges[..., 0] * following[..., 1] - edges[..., 1] * following[..., 0]
        clockwise, counter = (turns > 0).all(axis=1), (turns < 0).all(axis=1)
        areas = 0.5 * np.abs((quads[..., 0] * np.roll(quads[..., 1], -1, axis=1)
                              - np.roll(quads[..., 0], -1, axis=1) * quads[..., 1]).sum(axis=1))
        photo_area = float(photo_size[0] * photo_size[1])
        failed = np.stack([
            ~np.isfinite(homographies).all(axis=(1, 2)),
            (w <= 1e-9).any(axis=1) & (w >= -1e-9).any(axis=1),
            size.max(axis=1) / size.min(axis=1) > cfg.max_perspective,
            ~(clockwise | counter),
            counter,  # image coordinates (y down): the page's own corners turn positively
            ~((areas >= cfg.min_area_fraction * photo_area) & (areas <= cfg.max_area_fraction * photo_area)),
        ], axis=1)
    return np.where(failed.any(axis=1), failed.argmax(axis=1), len(_OUTLINE_CHECKS)), quads, areas
