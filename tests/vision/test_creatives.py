"""Print-ad creative recognition (vision.creatives) on synthetic ads and photos (vision.adgen).

Small pages (480x640) and photos (480x640) keep the module fast; one index of 12 creatives over
two templates is built once and shared (tests that change an index build their own).
"""

import io
import pickle
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from vision import adgen
from vision.creatives import (
    ACCEPTED_IN_PLACE,
    NOT_CONFIRMED_IN_PLACE,
    OWN_CONTENT_MISSING,
    CreativeFeatures,
    CreativeIndex,
    MatcherConfig,
    extract_features,
    extract_photo_features,
    implausible,
    plausible_ransac,
    rate_recognisability,
)

PAGE = (480, 640)
PHOTO = (480, 640)
TEMPLATES = (0, 1)
PER_TEMPLATE = 6


def creative_id(template: int, seed: int) -> str:
    return f"t{template}/c{seed}"


@pytest.fixture(scope="module")
def templates():
    return {t: adgen.make_template(t, size=PAGE) for t in TEMPLATES}


@pytest.fixture(scope="module")
def creatives(templates):
    return {creative_id(t, s): adgen.make_creative(templates[t], s, detail="rich")
            for t in TEMPLATES for s in range(PER_TEMPLATE)}


@pytest.fixture(scope="module")
def features(creatives):
    return {cid: extract_features(creative.image) for cid, creative in creatives.items()}


@pytest.fixture(scope="module")
def index(features):
    index = CreativeIndex()
    for cid, f in features.items():
        index.add(cid, f)
    index.refresh()
    return index


def photo_of(image: Image.Image, seed: int, difficulty: str = "normal"):
    return adgen.photograph(image, seed, difficulty=difficulty, size=PHOTO)


def corner_error(found: np.ndarray, true: np.ndarray, page_size) -> float:
    corners = adgen.page_corners(page_size)
    return float(np.abs(adgen.project(found, corners) - adgen.project(true, corners)).max())


def test_a_photographed_creative_is_recognised_with_its_homography(index, creatives):
    for n, cid in enumerate(["t0/c1", "t1/c2", "t1/c4"]):
        photo, true_homography = photo_of(creatives[cid].image, seed=10 + n)
        match = index.match(photo)
        assert match is not None and match.creative_id == cid
        assert 0 < match.confidence <= 1 and match.inliers >= index.config.min_inliers
        assert match.homography.shape == (3, 3)
        # within 1.5 % of the photo's diagonal at every corner of the page
        assert corner_error(match.homography, true_homography, PAGE) < 0.015 * np.hypot(*PHOTO)


def test_creatives_of_one_template_are_told_apart(index, creatives):
    found = {}
    for s in range(PER_TEMPLATE):
        cid = creative_id(0, s)
        report = index.explain(photo_of(creatives[cid].image, seed=100 + s, difficulty="easy")[0])
        found[cid] = report.match.creative_id if report.match else None
        # other creatives of the template were verified too and lost on distinctive content
        assert any(c.creative_id != cid and c.inliers > 0 for c in report.candidates) or len(report.candidates) == 1
    assert found == {cid: cid for cid in found}


def test_an_unregistered_page_of_a_registered_template_is_not_accepted(index, templates):
    template_matched = False
    for seed in range(3):
        page = adgen.make_unregistered_page(templates[seed % 2], seed, detail="rich")
        report = index.explain(photo_of(page, seed=200 + seed, difficulty="easy")[0])
        assert report.match is None, report.reason
        template_matched |= any(c.inliers >= index.config.min_inliers for c in report.candidates)
    # the template itself did match geometrically: it is the distinctive content that was missing
    assert template_matched


def words_in_place(creative, template, seed: int) -> Image.Image:
    """Another page of the creative's template that shares two of its words in place: the first
    third of its headline and its lowest price in the band; pictures and the rest of the text differ."""
    layout = adgen.page_layout(template)
    u, (x0, y0, _, _), band_top = layout.unit, layout.text, layout.band[1]
    page = adgen.make_unregistered_page(template, seed, detail="rich")
    headline = (x0, y0, min(PAGE[0], x0 + int(0.3 * PAGE[0])), y0 + int(44 * u * 1.3))
    price = (0, band_top + int(30 * u), int(0.4 * PAGE[0]), PAGE[1] - int(10 * u))
    for box in (headline, price):
        page.paste(creative.image.crop(box), box[:2])
    return page


@pytest.mark.xfail(strict=True, reason="known limitation (README, Ad scans): words shared in place count as "
                                       "distinctive evidence; pages sharing a creative's headline and price "
                                       "are taken for it in one of the two layouts here")
def test_a_page_sharing_only_a_headline_and_a_price_in_place_is_not_accepted(index, templates, creatives):
    accepted = []
    for n, cid in enumerate(["t0/c1", "t0/c4", "t1/c3", "t1/c4"]):
        page = words_in_place(creatives[cid], templates[int(cid[1])], 50 + n % 2)
        match = index.match(photo_of(page, seed=300 + n % 2, difficulty="easy")[0])
        if match is not None:
            accepted.append((cid, match.creative_id))
    assert accepted == []


def test_a_page_matching_the_template_far_better_than_the_creatives_own_content_is_refused(
        index, templates, creatives, features):
    """Where the template's content matched, the creative's own content must match at least a fifth as
    well. Pages sharing only a headline's first words and a price with a creative fail that check (in
    one of the two layouts here: the partial mend of the limitation above); without it, the same
    photos are taken for the creative."""
    unchecked = CreativeIndex(config=replace(MatcherConfig(), min_own_to_template=0.0))
    for cid, f in features.items():
        unchecked.add(cid, f)
    refused = []
    for cid in sorted(creatives):
        for k in range(2):
            page = words_in_place(creatives[cid], templates[int(cid[1])], 50 + k)
            photo = photo_of(page, seed=300 + k, difficulty="easy")[0]
            report = index.explain(photo)
            if report.match is None and report.reason == OWN_CONTENT_MISSING:
                refused.append(photo)
    assert len(refused) >= 6  # of 24 (9 here)
    assert all(unchecked.match(photo) is not None for photo in refused)


def reprint_of_a_picture(creative) -> Image.Image:
    """A magazine page that reprints the creative's product picture elsewhere, in another layout."""
    picture = creative.image.crop((0, int(0.13 * PAGE[1]), int(0.47 * PAGE[0]), int(0.75 * PAGE[1])))
    page = adgen.make_plain_page(11, size=PAGE)
    page.paste(picture, (PAGE[0] // 2, int(0.3 * PAGE[1])))
    return page


def test_another_page_showing_one_picture_of_a_creative_is_not_accepted(index, creatives):
    """A magazine page that reprints a creative's product picture (another layout, another place)
    matches that picture well, distinctive details and all; the inliers span only the picture."""
    from dataclasses import replace

    photo = photo_of(reprint_of_a_picture(creatives["t1/c3"]), seed=42, difficulty="easy")[0]
    report = index.explain(photo)
    assert report.match is None
    assert report.reason == "inliers span too little of the page"
    original, index.config = index.config, replace(index.config, min_inlier_span=0.0)
    try:  # the picture alone carries enough distinctive evidence: only the span tells the pages apart
        assert index.match(photo).creative_id == "t1/c3"
    finally:
        index.config = original


def test_the_second_look_does_not_accept_one_picture_of_a_creative_either(index, creatives):
    """The reprinted picture again, with the first pass's span and evidence checks out of the way:
    the second look finds the picture's details (distinctive ones), but they span only the picture."""
    from dataclasses import replace

    photo = photo_of(reprint_of_a_picture(creatives["t1/c3"]), seed=42, difficulty="easy")[0]
    loose = replace(index.config, min_inlier_span=0.0, min_distinctive_inliers=10**6)
    original, index.config = index.config, loose
    try:
        report = index.explain(photo)
        assert report.match is None
        best = next(c for c in report.candidates if c.creative_id == "t1/c3")
        assert best.guided_distinctive >= loose.guided_min_distinctive  # the evidence was there: the span refused
        index.config = replace(loose, guided_min_span=0.0)
        report = index.explain(photo)
        assert report.match is not None and report.match.creative_id == "t1/c3"
        assert report.reason == "accepted on a second look"
    finally:
        index.config = original


def test_a_creative_whose_picture_other_pages_reprint_still_learns_its_template(templates, creatives, features):
    """Six pages of another template reprint t0/c0's product picture elsewhere on the page: they hold
    more near-identical copies of its details than its own template's creatives, which share the
    template in place. Template learning meets the latter all the same, so a page that shares only
    the template with t0/c0 is not taken for it."""
    from dataclasses import replace

    picture = creatives["t0/c0"].image.crop((0, int(0.13 * PAGE[1]), int(0.47 * PAGE[0]), int(0.75 * PAGE[1])))
    index = CreativeIndex(config=replace(MatcherConfig(), neighbours=2))
    for seed in range(PER_TEMPLATE):
        index.add(creative_id(0, seed), features[creative_id(0, seed)])
        page = creatives[creative_id(1, seed)].image.copy()
        page.paste(picture, (PAGE[0] // 2, int(0.3 * PAGE[1])))
        index.add(f"reprint {seed}", extract_features(page))
    assert index.distinctive_fraction("t0/c0") < 0.9  # its template is learnt as shared, not its own
    for seed in range(6):
        page = adgen.make_unregistered_page(templates[0], seed, detail="rich")
        report = index.explain(photo_of(page, seed=200 + seed, difficulty="easy")[0])
        assert report.match is None, report.reason


def test_the_second_look_finds_a_creative_where_the_first_pass_had_too_little_evidence(index, creatives, templates):
    """With the first pass's distinctive evidence out of reach, only the second look (guided
    matching where the homography puts each creative feature) can accept: it finds the right
    creative and refines its homography, and still refuses a same-template page."""
    from dataclasses import replace

    strict = replace(index.config, min_distinctive_inliers=10**6)
    original, index.config = index.config, strict
    try:
        for n, cid in enumerate(["t0/c3", "t1/c2", "t1/c4"]):
            photo, true_homography = photo_of(creatives[cid].image, seed=500 + n)
            report = index.explain(photo)
            assert report.match is not None and report.match.creative_id == cid, report.reason
            assert report.reason == "accepted on a second look"
            assert report.match.distinctive_inliers >= strict.guided_min_distinctive
            assert corner_error(report.match.homography, true_homography, PAGE) < 0.015 * np.hypot(*PHOTO)
        for seed in range(3):
            page = adgen.make_unregistered_page(templates[seed % 2], seed, detail="rich")
            report = index.explain(photo_of(page, seed=200 + seed, difficulty="easy")[0])
            assert report.match is None, report.reason
        # and without the second look's evidence (nor the look in place), nothing is accepted
        index.config = replace(strict, guided_min_distinctive=10**6, in_place_min_cells=10**6)
        assert index.match(photo_of(creatives["t0/c3"].image, seed=500)[0]) is None
    finally:
        index.config = original


# Hard photos (small, blurred pages) at the edge of what the first pass and the second look recognise.
# Which of them those leave to the look in place differs from one CPU to another: OpenCV picks SIFT's
# SIMD kernels by CPU, and AVX2, AVX-512 and SSE descriptors differ in their last bits, enough to move
# a borderline photo across a threshold. On each seen so far, two to four of these five are accepted on
# a look in place (the creative is the seed's place among the sorted creatives, as the photos were found).
LOOK_IN_PLACE_SEEDS = (1113, 1217, 1255, 1296, 1368)


def test_the_look_in_place_recognises_pages_whose_details_the_photos_sift_pass_lost(index, creatives):
    """Where the photo's own features fall short (a small, blurred page), the creative's keypoints are
    described where the pose puts them: the right creative is recognised, with a homography that puts
    its corners where they are; without that look, or without what it needs (the photo's grey image,
    the creative's keypoint frames), the same photos go unrecognised. None of these photos is taken for
    another creative."""
    ids, looked_in_place = sorted(creatives), []
    for seed in LOOK_IN_PLACE_SEEDS:
        cid = ids[seed % len(ids)]
        photo, true_homography = photo_of(creatives[cid].image, seed=seed, difficulty="hard")
        report = index.explain(photo)
        assert report.match is None or report.match.creative_id == cid, (seed, report.reason)
        if report.reason != ACCEPTED_IN_PLACE:
            continue
        assert corner_error(report.match.homography, true_homography, PAGE) < 0.03 * np.hypot(*PHOTO)
        best = next(c for c in report.candidates if c.creative_id == cid)
        assert best.in_place_cells >= index.config.in_place_min_cells
        assert best.in_place_cells >= index.config.in_place_control_factor * best.in_place_control_cells
        without_grey = extract_photo_features(photo)
        without_grey.grey = None
        assert index.match(without_grey) is None
        looked_in_place.append(photo)
    assert len(looked_in_place) >= 2
    original, index.config = index.config, replace(index.config, in_place_min_cells=10**6)
    try:
        assert all(index.match(photo) is None for photo in looked_in_place)
    finally:
        index.config = original
    first_format = CreativeIndex()  # creatives stored before keypoint frames were
    for cid, entry in index._entries.items():
        first_format.add(cid, replace(entry.features, sizes=None, angles=None, octaves=None))
    assert first_format.match(looked_in_place[0]) is None


def test_a_pose_from_few_inliers_is_judged_by_the_look_in_place_alone(index, templates, creatives):
    """With every pose short of the inliers the first pass and the second look ask for, the look in
    place is the only judge: it recognises photos of creatives from their pose, and refuses pages that
    share the template, or the template and a creative's headline words and price in place."""
    few = replace(index.config, min_inliers=10**6, guided_min_inliers=10**6)
    original, index.config = index.config, few
    try:
        for n, cid in enumerate(["t0/c1", "t0/c4", "t1/c0", "t1/c5"]):
            report = index.explain(photo_of(creatives[cid].image, seed=700 + n)[0])
            assert report.match is not None and report.match.creative_id == cid, report.reason
            assert report.reason == "accepted on a look in place"
        looked = 0
        for seed in range(6):
            template = templates[seed % 2]
            pages = [adgen.make_unregistered_page(template, seed, detail="rich"),
                     words_in_place(creatives[creative_id(seed % 2, seed)], template, 50 + seed)]
            for page in pages:
                report = index.explain(photo_of(page, seed=800 + seed)[0])
                assert report.match is None, report.reason
                looked += any(c.in_place_cells is not None for c in report.candidates)
        assert looked >= 3
    finally:
        index.config = original


def test_an_answer_on_thin_evidence_is_confirmed_in_place(index, templates, creatives):
    """Pages sharing a creative's headline words and price in place: some pass the first pass or the
    second look on a few cells of evidence; described in place, the creative's own content agrees only
    along the line of words, and the answer is withdrawn. Without the confirmation they are accepted."""
    unconfirmed = replace(index.config, in_place_confirm_cells=-1)
    withdrawn = []
    for cid in sorted(creatives):
        for k in range(2):
            page = words_in_place(creatives[cid], templates[int(cid[1])], 50 + k)
            for difficulty in ("easy", "normal"):
                photo = photo_of(page, seed=300 + k, difficulty=difficulty)[0]
                report = index.explain(photo)
                if report.reason == NOT_CONFIRMED_IN_PLACE:
                    best = next(c for c in report.candidates if c.rejected == NOT_CONFIRMED_IN_PLACE)
                    assert best.in_place_extent < index.config.in_place_confirm_extent
                    withdrawn.append(photo)
    assert withdrawn
    original, index.config = index.config, unconfirmed
    try:
        assert all(index.match(photo) is not None for photo in withdrawn)
    finally:
        index.config = original


def test_the_look_in_place_refuses_pages_that_share_words_with_a_creative(index, templates, creatives):
    """Pages of a creative's template that share its headline's first words and lowest price in place
    (the known limitation above): the pose of the template and those words often take the creative to
    a look in place, which refuses nearly all of them: beyond the template, only the words, the edges of
    the picture boxes and a few glyphs agree in place, in few more places than for the template's other
    creatives described at the same pose. One or two of the 48 get 10-11 cells against a mate's 2-3 (as
    many as some photos of the creative itself: 0 to 2 of them here, by CPU); a look in place asking for
    5 cells and no margin over its mates takes a dozen."""
    looked, accepted = [], []
    for cid in sorted(creatives):
        for k in range(2):
            page = words_in_place(creatives[cid], templates[int(cid[1])], 50 + k)
            for difficulty in ("easy", "normal"):
                photo = photo_of(page, seed=300 + k, difficulty=difficulty)[0]
                report = index.explain(photo)
                if any(c.in_place_cells is not None for c in report.candidates):
                    looked.append(photo)
                accepted += [photo] if report.reason == ACCEPTED_IN_PLACE else []
    assert len(looked) >= 6 and len(accepted) <= 3
    original, index.config = index.config, replace(index.config, in_place_min_cells=5, in_place_control_factor=0)
    try:
        loose = [photo for photo in looked if index.explain(photo).reason == ACCEPTED_IN_PLACE]
    finally:
        index.config = original
    assert len(loose) >= len(accepted) + 6


def test_a_best_candidate_short_of_inliers_gets_a_second_look(index, creatives):
    """A small, blurred page gives the first pass fewer inliers than it asks for; from
    `guided_min_inliers` on, the best candidate's homography still guides a second look."""
    from dataclasses import replace

    strict = replace(index.config, min_inliers=10**6)
    original, index.config = index.config, strict
    try:
        photo, true_homography = photo_of(creatives["t1/c4"].image, seed=510)
        report = index.explain(photo)
        assert report.match is not None and report.match.creative_id == "t1/c4", report.reason
        assert report.reason == "accepted on a second look"
        assert corner_error(report.match.homography, true_homography, PAGE) < 0.015 * np.hypot(*PHOTO)
        index.config = replace(strict, guided_min_inliers=10**6)
        report = index.explain(photo)
        assert report.match is None and report.reason == "too few inliers"
    finally:
        index.config = original


def pose_matches(seed: int, true_pairs: int, chance_pairs: int, pose: np.ndarray | None = None):
    """Tentative matches creative px -> photo px: `true_pairs` that follow a photographed page's
    homography (or `pose`), to within half a pixel, among `chance_pairs` that follow nothing."""
    rng = np.random.default_rng(seed)
    _, homography = photo_of(Image.new("RGB", PAGE), seed=seed, difficulty="hard")
    homography = homography if pose is None else pose
    source = rng.uniform((0, 0), PAGE, (true_pairs + chance_pairs, 2))
    destination = adgen.project(homography, source) + rng.normal(0, 0.5, (len(source), 2))
    destination[true_pairs:] = rng.uniform((0, 0), PHOTO, (chance_pairs, 2))
    order = rng.permutation(len(source))
    return source[order], destination[order], homography, order < true_pairs


def test_the_plausible_pose_search_finds_a_page_among_three_times_as_many_chance_matches():
    cfg = MatcherConfig()
    for seed in range(5):
        source, destination, homography, true = pose_matches(seed, 12, 36)
        found, mask = plausible_ransac(source, destination, 6.0, PAGE, PHOTO, cfg)
        assert found is not None and implausible(found, PAGE, PHOTO, cfg) is None
        assert mask.ravel()[true].all() and mask.sum() <= 14
        assert corner_error(found, homography, PAGE) < 3.0
        again, _ = plausible_ransac(source, destination, 6.0, PAGE, PHOTO, cfg)
        assert np.array_equal(found, again)  # seeded: the same matches, the same answer


def test_the_plausible_pose_search_never_answers_a_pose_no_photo_of_a_page_shows():
    """Matches that all follow a mirrored page (seen through the paper, or a chance arrangement) fit
    one homography exactly: OpenCV's RANSAC takes it, the plausible search does not."""
    cfg = MatcherConfig()
    _, _, photographed, _ = pose_matches(0, 4, 0)
    mirrored = photographed @ np.array([[-1.0, 0, PAGE[0]], [0, 1, 0], [0, 0, 1]])
    source, destination, _, _ = pose_matches(1, 40, 0, pose=mirrored)
    fitted, mask = cv2.findHomography(source, destination, cv2.RANSAC, 6.0)
    assert mask.sum() == 40 and implausible(fitted, PAGE, PHOTO, cfg) == "mirrored"
    found, mask = plausible_ransac(source, destination, 6.0, PAGE, PHOTO, cfg)
    assert found is None or (implausible(found, PAGE, PHOTO, cfg) is None and mask.sum() < cfg.min_inliers)


def test_a_degenerate_ransac_pose_is_retried_among_plausible_poses(index, creatives, monkeypatch):
    """When MAGSAC's best model is one no photo of a page could show (here every MAGSAC answer
    folds the page over the horizon), the first shortlisted candidates are fitted again among
    plausible poses only, and the photographed creative is still recognised with its homography."""
    import vision.creatives as module

    find = cv2.findHomography

    def magsac_folds_the_page(source, destination, method=0, *args, **kwargs):
        homography, mask = find(source, destination, method, *args, **kwargs)
        if method == cv2.USAC_MAGSAC and homography is not None:
            homography = homography.copy()
            homography[2] = [1.0 / PAGE[0], 0.0, -0.5]  # w changes sign across the page
        return homography, mask

    monkeypatch.setattr(module.cv2, "findHomography", magsac_folds_the_page)
    photo, true_homography = photo_of(creatives["t0/c1"].image, seed=10)
    report = index.explain(photo)
    assert report.match is not None and report.match.creative_id == "t0/c1", report.reason
    assert report.reason in ("accepted after a retry among plausible poses", "accepted on a second look")
    assert corner_error(report.match.homography, true_homography, PAGE) < 0.015 * np.hypot(*PHOTO)
    original = index.config
    try:
        index.config = replace(original, retry_candidates=0)
        assert index.match(photo) is None
    finally:
        index.config = original


def test_a_photo_without_an_ad_returns_none(index):
    magazine = photo_of(adgen.make_plain_page(3, size=PAGE), seed=300)[0]
    assert index.match(magazine) is None
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (PHOTO[1], PHOTO[0], 3), dtype=np.uint8))
    assert index.match(noise) is None
    assert index.match(Image.new("RGB", PHOTO, (200, 200, 200))) is None


def test_a_flat_creative_rates_lower_than_a_detailed_one(features):
    flat = Image.new("RGB", PAGE, (235, 90, 60))
    ImageDraw.Draw(flat).rectangle((40, 40, 200, 120), fill=(250, 250, 250))
    flat_rating = rate_recognisability(extract_features(flat))
    detailed = max((rate_recognisability(f) for f in features.values()), key=lambda r: r.stars)
    assert 1 <= flat_rating.stars < detailed.stars <= 5
    assert flat_rating.feature_count < detailed.feature_count and flat_rating.spread < detailed.spread
    assert flat_rating.advice and any("texture" in line for line in flat_rating.advice)


def test_a_repeated_pattern_is_called_repetitive():
    tile = Image.new("RGB", (40, 40), (240, 240, 240))
    ImageDraw.Draw(tile).polygon([(5, 5), (35, 12), (18, 35)], fill=(30, 30, 160))
    wallpaper = Image.new("RGB", PAGE)
    for x in range(0, PAGE[0], 40):
        for y in range(0, PAGE[1], 40):
            wallpaper.paste(tile, (x, y))
    rating = rate_recognisability(extract_features(wallpaper))
    assert rating.repetitiveness > 0.5
    assert any("repeat" in line for line in rating.advice)


def test_near_duplicates_flags_an_edited_copy_but_not_a_sibling(index, creatives, features):
    edited = creatives["t1/c3"].image.copy()
    draw = ImageDraw.Draw(edited)
    draw.rectangle((10, PAGE[1] - 60, 200, PAGE[1] - 10), fill=(200, 30, 30))  # a new price sticker
    draw.text((20, PAGE[1] - 50), "NOW 19.99", fill=(255, 255, 255))
    flagged = index.near_duplicates(extract_features(edited))
    assert flagged and flagged[0][0] == "t1/c3" and flagged[0][1] >= 0.6
    assert all(cid == "t1/c3" for cid, _ in flagged)
    # a creative of the same template with other content shares only the template
    sibling = adgen.make_creative(adgen.make_template(1, size=PAGE), 50, detail="rich").image
    assert index.near_duplicates(extract_features(sibling)) == []
    # the creative itself, when it is the one being replaced
    assert index.near_duplicates(features["t1/c3"], exclude=["t1/c3"]) == []


def test_features_round_trip_through_bytes(features):
    original = features["t0/c0"]
    data = original.to_bytes()
    assert len(data) < 200_000  # a BYTEA value, not a blob store
    restored = CreativeFeatures.from_bytes(data)
    assert restored.image_size == original.image_size and restored.pixel_scale == pytest.approx(original.pixel_scale)
    np.testing.assert_array_equal(restored.keypoints, original.keypoints)
    np.testing.assert_array_equal(restored.descriptors, original.descriptors)
    np.testing.assert_allclose(restored.rootsift, original.rootsift)
    assert restored.has_frames  # each keypoint's SIFT frame, for the look in place
    for name in ("sizes", "angles", "octaves"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(original, name))
    # features stored by the first format (no frames) are still read
    first_format = io.BytesIO()
    np.savez_compressed(first_format, format=np.array("creative-features"), version=np.array(1, np.int32),
                        keypoints=original.keypoints, descriptors=original.descriptors,
                        image_size=np.array(original.image_size, np.int32),
                        pixel_scale=np.array(original.pixel_scale, np.float32))
    old = CreativeFeatures.from_bytes(first_format.getvalue())
    assert not old.has_frames and old.image_size == original.image_size
    np.testing.assert_array_equal(old.descriptors, original.descriptors)
    with pytest.raises(ValueError):
        CreativeFeatures.from_bytes(b"not an npz file")
    other_version = io.BytesIO()
    np.savez(other_version, format=np.array("creative-features"), version=np.array(99))
    with pytest.raises(ValueError, match="version 99"):
        CreativeFeatures.from_bytes(other_version.getvalue())


def test_the_shortlist_limits_verification_to_top_n():
    """50 creatives registered; a scan verifies at most top_n of them and still finds the right one."""
    index = CreativeIndex(config=MatcherConfig(top_n=5))
    pages = {}
    for i in range(50):
        template = adgen.make_template(10 + i % 5, size=(240, 320))
        pages[f"c{i}"] = adgen.make_creative(template, i // 5, detail="rich").image
        index.add(f"c{i}", extract_features(pages[f"c{i}"]))
    assert len(index) == 50
    progress = []
    index.refresh(lambda done, total: progress.append((done, total)))
    assert progress[-1] == (50, 50) and [done for done, _ in progress] == list(range(1, 51))
    before = index.verifications
    report = index.explain(photo_of(pages["c17"], seed=7, difficulty="easy")[0])
    assert 0 < len(report.candidates) <= 5
    assert index.verifications - before == len(report.candidates)
    assert report.match is not None and report.match.creative_id == "c17"


def test_remove_and_pickle(features, creatives):
    index = CreativeIndex()
    for cid, f in features.items():
        index.add(cid, f)
    photo = photo_of(creatives["t0/c2"].image, seed=400, difficulty="easy")[0]
    assert index.match(photo).creative_id == "t0/c2"
    restored = pickle.loads(pickle.dumps(index))
    assert restored.match(photo).creative_id == "t0/c2" and len(restored) == len(features)
    index.remove("t0/c2")
    assert len(index) == len(features) - 1 and "t0/c2" not in index
    assert index.match(photo) is None
    # replacing a creative keeps one entry; shared content only (matchable=False) is not a creative
    index.add("t0/c3", features["t0/c3"])
    index.add("a page of the template", features["t0/c2"], matchable=False)
    assert len(index) == len(features) - 1


class _Interrupted(Exception):
    pass


def index_of(features: dict) -> CreativeIndex:
    """A new index of these creatives, its deferred work not done yet."""
    index = CreativeIndex()
    for cid, f in features.items():
        index.add(cid, f)
    return index


def test_a_refresh_cut_short_goes_on_where_it_stopped(index, features, creatives, monkeypatch):
    # A worker builds its index inside a scan, under the task's time limit: an interrupted build
    # must neither leave creatives half-learnt nor redo the work, and end as a build in one go does.
    interrupted = index_of(features)
    compare, calls = CreativeIndex._compare_with_neighbours, []

    def cut_short(self, entry):
        calls.append(entry.creative_id)
        if len(calls) in (3, 8):
            raise _Interrupted
        return compare(self, entry)

    monkeypatch.setattr(CreativeIndex, "_compare_with_neighbours", cut_short)
    for _ in range(2):
        with pytest.raises(_Interrupted):
            interrupted.refresh()
    interrupted.refresh()
    assert len(calls) == len(features) + 2  # the two cut short are compared again, nothing else
    monkeypatch.undo()
    for cid in features:
        assert np.array_equal(interrupted._entries[cid].share_count, index._entries[cid].share_count), cid
    photo = photo_of(creatives["t1/c4"].image, seed=410, difficulty="easy")[0]
    assert interrupted.match(photo).creative_id == "t1/c4"


def test_indexing_cut_short_as_faiss_returns_adds_each_descriptor_once(features, creatives, monkeypatch):
    # A task's time limit arrives as a Python signal, raised when the running C call returns: the
    # descriptors of the creative being added are then in FAISS though the index did not record it.
    # Added twice, each of its descriptors would fail the ratio test against its own copy.
    from vision.creatives import _DescriptorIndex

    cut = index_of(features)
    add = _DescriptorIndex.add

    def add_then_interrupted(self, slot, descriptors):
        add(self, slot, descriptors)
        if cut._by_slot[slot] == "t0/c2":
            raise _Interrupted

    monkeypatch.setattr(_DescriptorIndex, "add", add_then_interrupted)
    with pytest.raises(_Interrupted):
        cut.refresh()
    monkeypatch.undo()
    cut.refresh()
    assert cut._descriptors._index.ntotal == sum(len(f) for f in features.values())
    photo = photo_of(creatives["t0/c2"].image, seed=400, difficulty="easy")[0]
    assert cut.match(photo).creative_id == "t0/c2"


def test_a_removal_cut_short_as_faiss_returns_leaves_a_working_index(features, creatives, monkeypatch):
    from vision.creatives import _DescriptorIndex

    cut = index_of(features)
    cut.refresh()
    cut.remove("t0/c0")  # its template mates are to be recounted, t0/c1 among them
    assert "t0/c1" in cut._pending
    remove = _DescriptorIndex.remove

    def remove_then_interrupted(self, slot):
        remove(self, slot)
        raise _Interrupted

    monkeypatch.setattr(_DescriptorIndex, "remove", remove_then_interrupted)
    with pytest.raises(_Interrupted):
        cut.remove("t0/c1")
    monkeypatch.undo()
    cut.refresh()
    assert "t0/c1" not in cut and not any("t0/c1" in shared for shared in cut._shared.values())
    photo = photo_of(creatives["t0/c3"].image, seed=402, difficulty="easy")[0]
    assert cut.match(photo).creative_id == "t0/c3"


def test_damaged_or_inconsistent_stored_features_are_refused_as_unreadable(features):
    """Callers leave out features that raise ValueError (one damaged creative must not fail every scan)."""
    import zipfile

    original = features["t0/c0"]
    data = original.to_bytes()
    member = zipfile.ZipFile(io.BytesIO(data)).getinfo("descriptors.npy")
    start = member.header_offset + 30 + len(member.filename) + len(member.extra)
    for offset in (100, 2000):  # inside the compressed descriptors: found only when they are read
        damaged = bytearray(data)
        damaged[start + offset] ^= 0xFF
        with pytest.raises(ValueError, match="not creative features"):
            CreativeFeatures.from_bytes(bytes(damaged))
    plain_array = io.BytesIO()
    np.save(plain_array, np.zeros(3))
    missing_members = io.BytesIO()
    np.savez_compressed(missing_members, format=np.array("creative-features"), version=np.array(2, np.int32))
    for other in (plain_array, missing_members):
        with pytest.raises(ValueError, match="not creative features|not an archive"):
            CreativeFeatures.from_bytes(other.getvalue())
    mismatched = io.BytesIO()
    np.savez_compressed(mismatched, format=np.array("creative-features"), version=np.array(2, np.int32),
                        keypoints=original.keypoints[:10], descriptors=original.descriptors,
                        image_size=np.array(original.image_size, np.int32), pixel_scale=np.array(1.0, np.float32))
    with pytest.raises(ValueError, match="descriptors for 10 keypoints"):
        CreativeFeatures.from_bytes(mismatched.getvalue())


def test_an_index_never_given_a_creative_finds_no_near_duplicates(features):
    assert CreativeIndex().near_duplicates(features["t0/c0"]) == []


def test_a_template_reference_teaches_a_lone_creative_what_is_not_its_own(templates, creatives, features):
    """With one creative of a template, its template counts as its own, unless a few other pages of the
    template are registered as non-matchable references."""
    lone = CreativeIndex()
    lone.add("t0/c0", features["t0/c0"])
    stranger = photo_of(adgen.make_unregistered_page(templates[0], 7, detail="rich"), seed=500, difficulty="easy")[0]
    for seed in (8, 9, 10):
        page = adgen.make_unregistered_page(templates[0], seed, detail="rich")
        lone.add(f"reference {seed}", extract_features(page), matchable=False)
    assert len(lone) == 1
    assert lone.match(stranger) is None
    assert lone.distinctive_fraction("t0/c0") < 0.9
    photo = photo_of(creatives["t0/c0"].image, seed=501, difficulty="easy")[0]
    assert lone.match(photo).creative_id == "t0/c0"


def test_adgen_is_deterministic_and_its_homography_is_true(templates):
    first = adgen.make_creative(templates[1], 3)
    again = adgen.make_creative(templates[1], 3)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert first.products and all(0 <= p.box[0] < p.box[2] <= PAGE[0] for p in first.products)
    photo, homography = photo_of(first.image, seed=9, difficulty="hard")
    photo_again, _ = photo_of(first.image, seed=9, difficulty="hard")
    assert np.array_equal(np.asarray(photo), np.asarray(photo_again))
    assert photo.size == PHOTO
    assert adgen.visible_fraction(homography, PAGE, PHOTO) >= 0.6
    # the page lies where the homography says: warped back, the photo looks like the page
    easy, easy_homography = photo_of(first.image, seed=9, difficulty="easy")
    back = cv2.warpPerspective(np.asarray(easy.convert("L"), np.float32), np.linalg.inv(easy_homography), PAGE)
    page = np.asarray(first.image.convert("L"), np.float32)
    inside = cv2.warpPerspective(np.ones(PHOTO[::-1], np.float32), np.linalg.inv(easy_homography), PAGE) > 0.99
    assert np.corrcoef(back[inside], page[inside])[0, 1] > 0.6


def test_an_empty_index_answers_without_looking_at_the_photo(monkeypatch):
    """Every look scan asks the ad index first: with no creative registered that must cost no SIFT pass."""
    import vision.creatives as creatives

    def extract(*args, **kwargs):
        raise AssertionError("features extracted although no creative is registered")

    monkeypatch.setattr(creatives, "extract_photo_features", extract)
    report = CreativeIndex().explain(Image.new("RGB", (640, 480), "white"))
    assert report.match is None and report.reason == "no creatives registered"
