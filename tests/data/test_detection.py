"""Detection data (issue 18): the generated fashion-mnist-det benchmark, COCO folders read
and written, and k-means anchors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from squeezelab.cli import main
from squeezelab.data import (
    DetectionSplit,
    fmnist_det,
    is_detection,
    kmeans_anchors,
    load_detection,
    write_coco,
)
from squeezelab.data.anchors import mean_best_iou
from squeezelab.data.detection import fashion_mnist_det
from squeezelab.errors import DatasetError

FMNIST = Path("/usr/share/datasets/fashion-mnist")
needs_fmnist = pytest.mark.skipif(
    not (FMNIST / "train-images-idx3-ubyte.gz").is_file(), reason="needs dataset-fashion-mnist"
)


def _same(a: DetectionSplit, b: DetectionSplit) -> bool:
    return (
        torch.equal(a.images, b.images)
        and all(torch.equal(x, y) for x, y in zip(a.boxes, b.boxes, strict=True))
        and all(torch.equal(x, y) for x, y in zip(a.labels, b.labels, strict=True))
        and a.classes == b.classes
        and a.image_ids == b.image_ids
    )


@pytest.fixture(scope="module")
def val6():
    if not (FMNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("needs dataset-fashion-mnist")
    return load_detection("fashion-mnist-det", "val", count=6, size=64, seed=1)


# ---- the generator --------------------------------------------------------------------------


@needs_fmnist
def test_same_seed_same_canvases_other_seed_differs():
    a = load_detection("fashion-mnist-det", "train", count=30, seed=3)
    assert _same(a, load_detection("fashion-mnist-det", "train", count=30, seed=3))
    assert not torch.equal(a.images, load_detection("fashion-mnist-det", count=30, seed=4).images)
    # canvas i depends on (seed, split, i) only: a shorter count is a prefix
    short = load_detection("fashion-mnist-det", "train", count=7, seed=3)
    assert torch.equal(short.images, a.images[:7])
    assert all(torch.equal(x, y) for x, y in zip(short.boxes, a.boxes[:7], strict=True))
    assert a.images.dtype == torch.uint8 and a.images.shape == (30, 1, 128, 128)
    assert a.image_ids == tuple(range(1, 31)) and len(a.classes) == 10


@needs_fmnist
def test_splits_draw_from_different_source_files():
    seen = {}
    for split in ("train", "val", "test"):
        ds, file, sources = fashion_mnist_det(split, count=40, seed=0)
        idx = torch.cat(sources)
        assert len(idx) == sum(len(b) for b in ds.boxes) > 40  # 1-6 items per canvas
        seen[split] = (file.name.split("-")[0], int(idx.min()), int(idx.max()))
    assert seen["train"][0] == seen["val"][0] == "train" and seen["test"][0] == "t10k"
    assert seen["train"][2] < 54_000 <= seen["val"][1]  # val: the training file's last 6,000
    assert seen["val"][2] < 60_000 and seen["test"][2] < 10_000
    # and the splits' canvases differ even at one seed
    a = load_detection("fashion-mnist-det", "val", count=3)
    b = load_detection("fashion-mnist-det", "test", count=3)
    assert not torch.equal(a.images, b.images)


@needs_fmnist
def test_boxes_inside_canvas_labels_valid_overlap_modest():
    ds = load_detection("fashion-mnist-det", "test", count=60, size=96)
    for b, lab in zip(ds.boxes, ds.labels, strict=True):
        assert b.dtype == torch.float32 and lab.dtype == torch.int64 and 1 <= len(b) <= 6
        assert (b[:, :2] >= 0).all() and (b[:, 2:] <= 96).all()
        assert (b[:, 2:] > b[:, :2]).all() and (b[:, 2:] - b[:, :2]).max() <= 56
        assert lab.min() >= 0 and lab.max() < 10
        inter = (
            (
                torch.minimum(b[:, None, 2:], b[None, :, 2:])
                - torch.maximum(b[:, None, :2], b[None, :, :2])
            )
            .clamp_min(0)
            .prod(-1)
        )
        area = (b[:, 2:] - b[:, :2]).prod(-1)
        ratio = inter / torch.minimum(area[:, None], area[None, :])
        assert (ratio.fill_diagonal_(0) <= fmnist_det.MAX_OVERLAP + 1e-6).all()


def _summary(ds: DetectionSplit) -> tuple:
    return (
        int(ds.images.long().sum()),
        [len(b) for b in ds.boxes],
        sum(int(lab.sum()) for lab in ds.labels),
        float(sum(float(b.sum()) for b in ds.boxes)),
    )


@needs_fmnist
@pytest.mark.parametrize(
    ("split", "kw", "want"),
    [
        ("train", {"count": 300, "size": 96}, (230_431_949, 1050, 4766, 201_533.0)),
        ("test", {"count": 5, "seed": 2}, (8_182_795, 23, 121, 6178.0)),
    ],
)
def test_canvases_are_those_of_the_first_generator(split, kw, want):
    """The vectorised generator draws what the first, slower one did (bit-identical at
    commit ad66f19 on the AVX2 host; recorded here as sums so that another CPU's last-ulp
    rounding of sin/grid_sample cannot fail it): a changed generator would silently change
    every published figure. Counts and labels come from the seeded RNG: exact."""
    pixels, counts, labels, coords = _summary(load_detection("fashion-mnist-det", split, **kw))
    want_pixels, want_boxes, want_labels, want_coords = want
    assert sum(counts) == want_boxes and labels == want_labels
    assert abs(pixels - want_pixels) <= want_pixels * 1e-5  # a few rounding flips at most
    assert abs(coords - want_coords) <= want_boxes  # within a pixel a box on average


@needs_fmnist
def test_source_file_read_once_per_process(monkeypatch):
    from squeezelab.data import detection, readers

    calls = []
    read = readers.read_idx_split
    monkeypatch.setattr(readers, "read_idx_split", lambda *a: calls.append(a[1]) or read(*a))
    detection._read_source.cache_clear()
    for split in ("train", "val", "train", "test"):
        load_detection("fashion-mnist-det", split, count=2, size=64)
    assert calls == ["train", "t10k"]  # train and val share the training file
    detection._read_source.cache_clear()


def _flat_pool(values):
    """Items that fill their whole 28x28 square, item i with intensity values[i]."""
    v = torch.as_tensor(values, dtype=torch.uint8)
    return v[:, None, None].expand(len(v), 28, 28).contiguous(), torch.arange(len(v)) % 10


def test_boxes_are_tight_and_sources_true(monkeypatch):
    """On a black background, an item that fills its square is drawn as its box: pixels
    brighter than two half-covered fringes lie in some box, and the item drawn last shows its own
    source's intensity all over its box's interior and on each of its box's edges."""
    monkeypatch.setattr(
        fmnist_det,
        "_background",
        lambda rng, m, size: (torch.zeros(m, size, size), rng.random())[0],
    )
    values = [120 + 8 * i for i in range(17)]
    items, labels = _flat_pool(values)
    c = fmnist_det.compose(items, labels, n=40, size=96, seed=5, split="train")
    for img, b, src, lab in zip(c.images[:, 0], c.boxes, c.sources, c.labels, strict=True):
        assert torch.equal(lab, src % 10)
        covered = torch.zeros(96, 96, dtype=torch.bool)
        for x1, y1, x2, y2 in b.long().tolist():
            covered[y1:y2, x1:x2] = True
        # a pixel outside every box has alpha <= 0.5 under each item: two such fringes make
        # at most 0.75 of the brightest intensity
        assert not ((img > 0.75 * max(values)) & ~covered).any()
        x1, y1, x2, y2 = b[-1].long().tolist()
        top = int(values[int(src[-1])])
        inner = img[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].int()
        assert (inner - top).abs().max() <= 1
        edges = (img[y1, x1:x2], img[y2 - 1, x1:x2], img[y1:y2, x1], img[y1:y2, x2 - 1])
        assert all(e.int().max() >= top / 2 for e in edges)  # tight: each edge is drawn on


# ---- COCO folders ---------------------------------------------------------------------------


def test_write_read_round_trip(tmp_path, val6):
    path = write_coco(val6, tmp_path / "d" / "val")
    assert path == tmp_path / "d" / "val" / "instances.json"
    assert len(list((tmp_path / "d" / "val" / "images").glob("*.png"))) == 6
    assert is_detection(str(tmp_path / "d")) and not is_detection(str(tmp_path))
    back = load_detection(str(tmp_path / "d"), "val", size=64)
    assert _same(back, val6)
    write_coco(val6, tmp_path / "d" / "val")  # replacing a folder it wrote is allowed
    assert _same(load_detection(str(tmp_path / "d"), "val", size=64, count=6), val6)
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.startswith(".")]


def test_single_file_is_split_by_name_hash(tmp_path, val6):
    write_coco(val6, tmp_path / "one")
    parts = {}
    for split in ("train", "val", "test"):
        try:
            parts[split] = load_detection(str(tmp_path / "one"), split, size=64).image_ids
        except DatasetError as e:
            assert "no images fall in" in str(e)
            parts[split] = ()
    ids = [i for p in parts.values() for i in p]
    assert sorted(ids) == list(val6.image_ids)  # each image in exactly one split


def test_other_sizes_are_letterboxed(tmp_path):
    from PIL import Image

    (tmp_path / "train" / "images").mkdir(parents=True)
    Image.fromarray(np.full((20, 40, 3), 90, np.uint8)).save(tmp_path / "train/images/a.png")
    doc = {
        "images": [{"id": 7, "file_name": "a.png", "width": 40, "height": 20}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [5, 2, 10, 8]}],
        "categories": [{"id": 3, "name": "part"}],
    }
    (tmp_path / "train" / "instances.json").write_text(json.dumps(doc))
    ds = load_detection(str(tmp_path), size=64)
    assert ds.images.shape == (1, 3, 64, 64) and ds.classes == ("part",)
    assert ds.boxes[0].tolist() == [[8.0, 3.2000000476837158, 24.0, 16.0]]  # x 1.6, y 1.6
    assert ds.images[0, :, 40:].sum() == 0 and ds.images[0, :, :32].min() == 90  # padded below
    assert ds.labels[0].tolist() == [0] and ds.image_ids == (7,)


def _break(root: Path, how: str) -> None:
    js = root / "val" / "instances.json"
    doc = json.loads(js.read_text())
    if how == "missing image":
        (root / "val" / "images" / "000001.png").unlink()
    elif how == "undecodable image":
        (root / "val" / "images" / "000001.png").write_bytes(b"not a png")
    elif how == "box outside":
        doc["annotations"][0]["bbox"] = [50, 50, 30, 10]
    elif how == "unknown category":
        doc["annotations"][0]["category_id"] = 99
    elif how == "zero width":
        doc["annotations"][0]["bbox"][2] = 0
    elif how == "unknown image":
        doc["annotations"][0]["image_id"] = 12345
    elif how == "path escapes":
        doc["images"][0]["file_name"] = "../../etc/passwd"
    if how != "bad json":
        js.write_text(json.dumps(doc))
    else:
        js.write_text(js.read_text()[:-20])


@pytest.mark.parametrize(
    "how,needles",
    [
        ("missing image", ("image id 1", "does not exist")),
        ("undecodable image", ("image id 1", "000001.png", "cannot decode")),
        ("box outside", ("annotation id 1", "outside image id 1 (64x64)")),
        ("unknown category", ("annotation id 1", "category_id 99 is unknown")),
        ("zero width", ("annotation id 1", "positive w and h")),
        ("unknown image", ("annotation id 1", "image_id 12345")),
        ("path escapes", ("image id 1", "relative path inside the folder")),
        ("bad json", ("not valid JSON", "line 1")),
    ],
)
def test_reader_errors_name_file_id_and_problem(tmp_path, val6, how, needles):
    write_coco(val6, tmp_path / "val")
    _break(tmp_path, how)
    with pytest.raises(DatasetError) as e:
        load_detection(str(tmp_path), "val", size=64)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "val" / "instances.json"))
    for n in needles:
        assert n in msg, msg


def test_cli_make_then_anchors(tmp_path, capsys, val6):
    out = tmp_path / "det"
    code = main(
        ["data", "make", "fashion-mnist-det", "-o", str(out), "--split", "val", "--size", "64"]
        + ["--count", "6", "--seed", "1"]
    )
    assert code == 0 and (out / "val" / "instances.json").is_file()
    assert _same(load_detection(str(out), "val", size=64), val6)
    capsys.readouterr()
    anchors = ["data", "anchors", str(out), "--split", "val", "-k", "3", "--size", "64"]
    assert main([*anchors, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert len(got["anchors"]) == 3 and 0 < got["mean_iou"] <= 1
    want = kmeans_anchors(val6.boxes, 3)
    assert np.allclose(got["anchors"], want.tolist())
    _break(out, "unknown category")
    assert main(anchors) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "annotation id 1" in err


# ---- anchors --------------------------------------------------------------------------------


def test_kmeans_recovers_hand_built_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[10.0, 10.0], [40.0, 20.0], [15.0, 45.0]])
    wh = centres.repeat_interleave(50, 0) * (1 + 0.05 * (torch.rand(150, 2, generator=g) - 0.5))
    xy = torch.rand(150, 2, generator=g) * 50
    boxes = [torch.cat([xy, xy + wh], 1)[i : i + 10] for i in range(0, 150, 10)]
    anchors = kmeans_anchors(boxes, 3, seed=1)
    assert anchors.shape == (3, 2) and anchors.dtype == torch.float32
    want = centres[(centres[:, 0] * centres[:, 1]).argsort()]  # sorted by area
    assert (anchors - want).abs().max() < 0.5
    assert torch.equal(anchors, kmeans_anchors(boxes, 3, seed=1))
    assert mean_best_iou(boxes, anchors) > 0.95 > mean_best_iou(boxes, anchors[:1])
    with pytest.raises(DatasetError, match="distinct box shapes"):
        kmeans_anchors(boxes[:1] * 2, 40)
