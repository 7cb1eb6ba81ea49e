import numpy as np
from PIL import Image

from vision.synthetic import make_scene, place_on_background


def test_same_seed_same_scene_other_seed_other_scene():
    first, again, other = make_scene(3), make_scene(3), make_scene(4)

    np.testing.assert_array_equal(np.asarray(first.image), np.asarray(again.image))
    assert [i.box for i in first.items] == [i.box for i in again.items]
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))


def test_ground_truth_boxes_enclose_their_masks():
    scene = make_scene(8, n_items=4, size=(500, 400))

    assert scene.image.size == (500, 400) and scene.image.mode == "RGB"
    assert len(scene.items) >= 3
    for item in scene.items:
        ys, xs = np.nonzero(item.mask)
        assert item.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert item.category in ("t-shirt", "jacket", "trousers", "dress", "skirt", "bag", "shoe", "hat")


def test_background_photos_are_used_when_given(tmp_path):
    paths = []
    for index, color in enumerate([(10, 120, 200), (200, 160, 20)]):
        path = tmp_path / f"photo{index}.jpg"
        Image.new("RGB", (800, 600), color).save(path)
        paths.append(str(path))

    scene = make_scene(1, background_paths=paths)

    assert scene.background in paths
    photo_color = [(10, 120, 200), (200, 160, 20)][paths.index(scene.background)]
    outside_items = ~np.any([item.mask for item in scene.items], axis=0)
    background = np.median(np.asarray(scene.image)[outside_items], axis=0)
    assert np.abs(background - np.array(photo_color)).max() < 50  # only lighting changes it


def test_product_image_is_placed_with_its_white_background_cut_away():
    product = Image.new("RGB", (300, 400), (255, 255, 255))
    product.paste((30, 60, 170), (60, 50, 240, 350))  # a blue item on a white catalog background

    scene = place_on_background(product, seed=2, size=(640, 480))

    (item,) = scene.items
    x0, y0, x1, y1 = item.box
    crop = np.asarray(scene.image)[y0:y1, x0:x1]
    assert item.mask.sum() > 0.8 * (x1 - x0) * (y1 - y0)  # only the blue part, not the white margin
    pixels = crop[item.mask[y0:y1, x0:x1]]
    assert pixels.mean(0)[2] > pixels.mean(0)[0] + 60
    assert (pixels.min(axis=1) > 200).mean() < 0.02  # no white margin left in the item
