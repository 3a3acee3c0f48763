import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from squeezelab.data import load_dataset, readers, split_train_val, subset
from squeezelab.errors import DatasetError, UnknownNameError
from tests.conftest import FMNIST_DIR


def write_idx(directory, prefix, images, labels, gz=True, img_magic=0x803, lbl_magic=0x801):
    directory.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    img = struct.pack(">IIII", img_magic, n, h, w) + images.astype(np.uint8).tobytes()
    lbl = struct.pack(">II", lbl_magic, len(labels)) + np.asarray(labels, np.uint8).tobytes()
    suffix = ".gz" if gz else ""
    for stem, data in ((f"{prefix}-images-idx3-ubyte", img), (f"{prefix}-labels-idx1-ubyte", lbl)):
        (directory / (stem + suffix)).write_bytes(gzip.compress(data) if gz else data)
    return directory


def idx_dir(tmp_path, gz=True, n=40, **kw):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28))
    labels = np.arange(n) % 10
    write_idx(tmp_path, "train", images, labels, gz, **kw)
    write_idx(tmp_path, "t10k", images[:20], labels[:20], gz, **kw)
    return tmp_path, images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_round_trip(tmp_path, gz):
    d, images, labels = idx_dir(tmp_path, gz)
    ds = load_dataset(str(d), "train")
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (40, 1, 28, 28)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images.astype(np.uint8)))
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels.tolist()
    assert len(load_dataset(str(d), "test")) == 20


def test_idx_wrong_magic(tmp_path):
    d, _, _ = idx_dir(tmp_path, img_magic=0x0803 + 0x100)
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz: wrong magic number"):
        load_dataset(str(d))


def test_idx_truncated(tmp_path):
    d, _, _ = idx_dir(tmp_path, gz=False)
    f = d / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: truncated: header declares"):
        load_dataset(str(d))


def test_idx_truncated_gzip(tmp_path):
    d, _, _ = idx_dir(tmp_path)
    f = d / "train-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-12])
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte.gz: truncated"):
        load_dataset(str(d))


def test_idx_label_out_of_range_for_named_dataset(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path, "train", rng.integers(0, 256, (5, 28, 28)), [0, 1, 2, 12, 3])
    with pytest.raises(DatasetError, match=r"label out of range: 12 \(allowed 0..9"):
        load_dataset("fashion-mnist", data_dir=str(tmp_path))


def test_idx_count_mismatch(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path, "train", rng.integers(0, 256, (5, 28, 28)), [0, 1, 2])
    with pytest.raises(DatasetError, match="holds 5 images but .* holds 3 labels"):
        load_dataset(str(tmp_path))


# ---- CIFAR ----------------------------------------------------------------------------------


def write_cifar(directory, labels_train=(0, 1, 2, 3), n_test=3, payload=None):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    meta = {b"label_names": [b"a", b"b", b"c", b"d"], b"num_cases_per_batch": 4}
    (directory / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    for name, labels in (("data_batch_1", list(labels_train)), ("test_batch", [0] * n_test)):
        batch = payload or {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": rng.integers(0, 256, (len(labels), 3072)).astype(np.uint8),
            b"filenames": [b"x.png"] * len(labels),
        }
        (directory / name).write_bytes(pickle.dumps(batch, protocol=2))
    return directory


def test_cifar_reader(tmp_path):
    d = write_cifar(tmp_path)
    ds = load_dataset(str(d))
    assert ds.images.shape == (4, 3, 32, 32) and ds.classes == ["a", "b", "c", "d"]
    raw = readers.load_cifar_batch(d / "data_batch_1")["data"]
    assert torch.equal(ds.images.reshape(4, -1), torch.from_numpy(raw))
    assert len(load_dataset(str(d), "test")) == 3
    assert len(ds.mean) == 3 and 0 < ds.std[0] < 1


def test_cifar_label_out_of_range(tmp_path):
    d = write_cifar(tmp_path, labels_train=(0, 1, 7, 3))
    with pytest.raises(DatasetError, match=r"data_batch_1: label out of range: 7 \(allowed 0..3"):
        load_dataset(str(d))


def test_cifar_truncated(tmp_path):
    d = write_cifar(tmp_path)
    f = d / "data_batch_1"
    f.write_bytes(f.read_bytes()[:500])
    with pytest.raises(DatasetError, match="data_batch_1: not a CIFAR python batch"):
        load_dataset(str(d))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_cifar_pickle_payload_is_rejected_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    d = write_cifar(tmp_path / "c", payload={b"data": _Evil(marker), b"labels": [0]})
    with pytest.raises(DatasetError, match=r"forbidden global (posix|os)\.system"):
        load_dataset(str(d))
    assert not marker.exists()


LAUGHS = """
import pickle, resource, sys
import numpy as np
from squeezelab.data import readers
from squeezelab.errors import DatasetError
kind, path = sys.argv[1], sys.argv[2]
if kind == "labels":  # 10**9 labels from 90 memo references
    lab = [0] * 10
    for _ in range(8):
        lab = [lab] * 10
    batch = {b"data": np.zeros((1, 3072), np.uint8), b"labels": lab}
    raw = pickle.dumps(batch, protocol=2)
elif kind == "bytes":  # one 1 MB string encoded 10**4 times (10 GB of bytes)
    s = pickle.dumps("x" * 2**20, protocol=2)[2:-3]  # BINUNICODE op (not its BINPUT)
    one = b"c_codecs\\nencode\\nq\\x00" + s + b"q\\x01"
    item = b"h\\x00h\\x01X\\x06\\x00\\x00\\x00latin1\\x86R"
    raw = b"\\x80\\x02" + one + b"0]" + b"(" + item * 10**4 + b"e."
else:  # a 9-byte pickle that sizes the C unpickler's memo at 10**8 entries
    raw = b"\\x80\\x02]r\\x00\\xe1\\xf5\\x05."
open(path, "wb").write(raw)
try:
    readers.load_cifar_batch(path)
    print("accepted")
except DatasetError as e:
    print(e)
print([int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")][0] // 1024)  # VmHWM: not inherited like ru_maxrss
"""


@pytest.mark.parametrize("kind", ["labels", "bytes", "memo"])
def test_cifar_laughs_refused_with_bounded_memory(tmp_path, kind):
    import subprocess
    import sys

    path = tmp_path / "data_batch_1"
    out = subprocess.run(
        [sys.executable, "-c", LAUGHS, kind, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stderr
    if kind == "labels":  # loading is cheap (shared references); reading the split is not
        assert lines[0] == "accepted"
        d = write_cifar(tmp_path / "c")
        path.replace(d / "data_batch_1")
        with pytest.raises(DatasetError, match=r"'labels' must be a flat list of int"):
            load_dataset(str(d))
    else:
        assert "memo" in lines[0] and lines[0].startswith(str(path))
    assert int(lines[1]) < 400  # MiB of peak RSS (the interpreter and numpy: ~100)


def test_idx_gzip_bomb_is_refused_before_inflating(tmp_path):
    # 64 MiB of zeros gzip to ~64 KiB; the header claims 10**6 images of 1000x1000
    body = struct.pack(">IIII", 0x803, 10**6, 1000, 1000) + bytes(64 * 2**20)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(body))
    write_idx(tmp_path / "l", "train", np.zeros((1, 28, 28)), [0])
    (tmp_path / "l" / "train-labels-idx1-ubyte.gz").replace(tmp_path / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DatasetError, match=r"declares shape \[1000000, 1000, 1000\].* can hold"):
        load_dataset(str(tmp_path))


# ---- ImageFolder ----------------------------------------------------------------------------


def write_folder(root, classes=("cat", "dog"), per_class=3, size=(12, 10), mode="L"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size[1], size[0]) + (() if mode == "L" else (3,))
            Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8), mode).save(
                root / c / f"{i}.png"
            )
    return root


def test_image_folder_decodes_once_then_reads_cache(tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_folder(data / "train", mode="RGB")
    write_folder(data / "test", per_class=1, mode="RGB")
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    ds = load_dataset(str(data))
    assert ds.images.shape == (6, 3, 10, 12) and ds.classes == ["cat", "dog"]
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # data untouched
    assert len(list((tmp_path / "user-cache").glob("imagefolder-*.safetensors"))) == 1
    test = load_dataset(str(data), "test")
    assert len(test) == 2 and test.mean == ds.mean  # test data uses the train statistics

    def no_decode(files, size=None):
        raise AssertionError("decoded again")

    monkeypatch.setattr(readers, "_decode", no_decode)
    again = load_dataset(str(data))
    assert torch.equal(again.images, ds.images)


def test_cache_dir_follows_xdg_and_env(tmp_path, monkeypatch):
    from squeezelab.data.files import cache_dir

    monkeypatch.delenv("SQUEEZELAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "squeezelab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "squeezelab"
    monkeypatch.setenv("SQUEEZELAB_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_edited_image_invalidates_the_cache(tmp_path):
    import os

    from PIL import Image

    root = write_folder(tmp_path / "f" / "train")
    write_folder(tmp_path / "f" / "test", per_class=1)
    first = load_dataset(str(tmp_path / "f"))
    target = root / "dog" / "1.png"
    Image.fromarray(np.full((10, 12), 7, np.uint8), "L").save(target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later mtime, surely
    second = load_dataset(str(tmp_path / "f"))
    assert not torch.equal(first.images, second.images)
    assert torch.equal(second.images[4, 0], torch.full((10, 12), 7, dtype=torch.uint8))
    caches = list((tmp_path / "user-cache").glob("imagefolder-*.safetensors"))
    assert len(caches) == 1  # the rebuilt cache replaced the stale one


def split_tree(root, **kw):
    """``root/train`` (as ``write_folder`` makes it, returned) and a one-per-class ``root/test``."""
    write_folder(root / "test", per_class=1, **{k: v for k, v in kw.items() if k == "size"})
    return write_folder(root / "train", **kw)


def test_image_folder_bad_image_names_file(tmp_path):
    root = write_folder(tmp_path / "f")
    (root / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"broken.png: cannot decode image"):
        load_dataset(str(root))


def test_mixed_sizes_are_resized_by_the_documented_rule(tmp_path):
    from PIL import Image

    from squeezelab.data.images import resize_crop

    root = split_tree(tmp_path / "f", per_class=2, size=(12, 10))
    write_folder(root, classes=("emu",), per_class=1, size=(40, 20))
    write_folder(tmp_path / "f" / "test", classes=("emu",), per_class=1, size=(40, 20))
    ds = load_dataset(str(tmp_path / "f"))  # lower median shorter side of 10,10,10,10,20: 10
    assert ds.images.shape == (5, 1, 10, 10)
    emu = Image.open(root / "emu" / "0.png")
    want = np.asarray(resize_crop(emu, 10))  # shorter side to 10 (20x10), centre 10x10
    assert torch.equal(ds.images[4, 0], torch.from_numpy(want.copy()))
    assert want.shape == (10, 10) and np.array_equal(
        want, np.asarray(emu.resize((20, 10), Image.Resampling.BILINEAR))[:, 5:15]
    )
    sized = load_dataset(str(tmp_path / "f"), "test", input_size=16)  # a model's input size
    assert sized.images.shape == (3, 1, 16, 16)


def test_flat_tree_gets_a_deterministic_split_with_a_note(tmp_path, caplog):
    root = write_folder(tmp_path / "f", per_class=20)
    with caplog.at_level("WARNING", logger="squeezelab.data"):
        train = load_dataset(str(root), "train")
        test = load_dataset(str(root), "test")
    assert "carved a fixed split by file-name hash, 36 train / 4 test" in caplog.text
    assert len(train) == 36 and len(test) == 4 and test.labels.tolist() == [0, 0, 1, 1]
    assert test.mean == train.mean
    files = readers.image_folder_files(root, "test")[2]
    chosen = {f.name for f, _, _ in files}
    again = {f.name for f, _, _ in readers.image_folder_files(root, "test")[2]}
    assert chosen == again  # same files, same split
    write_folder(root, classes=("cat",), per_class=30)  # ten more cats: 3 of 30 are test
    after = [f for f, _, _ in readers.image_folder_files(root, "test")[2]]
    assert len(after) == 5
    kept = {f.name for f in after if f.parent.name == "dog"}
    assert kept == {f.name for f, _, _ in files if f.parent.name == "dog"}  # dogs unmoved


def test_empty_class_folder_is_refused(tmp_path):
    root = write_folder(tmp_path / "f")
    (root / "emu").mkdir()
    (root / "emu" / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetError, match=r"emu: class folder holds no images"):
        load_dataset(str(root))


def test_symlink_loop_is_one_line(tmp_path):
    root = write_folder(tmp_path / "f")
    (root / "cat" / "loop.png").symlink_to(root / "cat" / "loop.png")
    with pytest.raises(DatasetError, match=r"loop.png: symlink loop"):
        load_dataset(str(root))


def test_symlinked_image_is_read(tmp_path):
    root = split_tree(tmp_path / "f")
    (root / "cat" / "link.png").symlink_to(root / "dog" / "0.png")
    assert len(load_dataset(str(tmp_path / "f"))) == 7


def _in_subprocess(code: str, timeout: float = 20.0):
    """Run ``code`` in a fresh interpreter; a hang fails the test instead of the suite."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )


def test_fifo_is_refused_quickly(tmp_path):
    import os
    import time

    root = write_folder(tmp_path / "f")
    os.mkfifo(root / "cat" / "x.png")
    os.mkfifo(tmp_path / "in.png")
    t = time.monotonic()
    out = _in_subprocess(
        "import sys\n"
        "from squeezelab.data import load_dataset\n"
        "from squeezelab.data.images import open_image\n"
        "from squeezelab.errors import DatasetError\n"
        "for call in (lambda: load_dataset(sys.argv[1]), lambda: open_image(sys.argv[2])):\n"
        "    try:\n"
        "        call()\n"
        "    except DatasetError as e:\n"
        "        print(e)\n".replace("sys.argv[1]", repr(str(root))).replace(
            "sys.argv[2]", repr(str(tmp_path / "in.png"))
        )
    )
    assert time.monotonic() - t < 20
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stderr
    assert lines[0].endswith("x.png: is a FIFO: allowed regular files only")
    assert lines[1].endswith("in.png: is a FIFO: allowed regular files only")


def test_decompression_bomb_is_refused(tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    # an 8-bit grayscale PNG header claiming 100000x100000 pixels, with almost no data
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    root = split_tree(tmp_path / "f")
    (root / "cat" / "bomb.png").write_bytes(png + chunk(b"IEND", b""))
    with pytest.raises(DatasetError, match=r"bomb.png: refused as a decompression bomb"):
        load_dataset(str(tmp_path / "f"))
    # under Pillow's own limit but far more pixels than a 100-byte file can hold
    ihdr = struct.pack(">IIBBBBB", 4000, 4000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    (root / "cat" / "bomb.png").write_bytes(png + chunk(b"IEND", b""))
    with pytest.raises(DatasetError, match=r"bomb.png: header claims 4000x4000 pixels"):
        load_dataset(str(tmp_path / "f"))


# ---- names, splits --------------------------------------------------------------------------


def test_synthetic_is_deterministic():
    a, b = load_dataset("synthetic"), load_dataset("synthetic")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(load_dataset("synthetic", "test").images[:10], a.images[:10])


@pytest.mark.skipif(not (FMNIST_DIR and __import__("os").path.isdir(FMNIST_DIR)), reason="no data")
def test_fashion_mnist_by_name():
    ds = load_dataset("fashion-mnist", "test")
    assert ds.images.shape == (10000, 1, 28, 28) and ds.classes[9] == "Ankle boot"
    assert ds.labels.bincount().tolist() == [1000] * 10


def test_missing_named_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetError, match=r"'mnist' not found .*--data-dir"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_unknown_name():
    with pytest.raises(UnknownNameError, match="did you mean fashion-mnist"):
        load_dataset("fashion-mnst")


def test_split_is_deterministic_disjoint_and_stratified():
    ds = load_dataset("synthetic")
    tr, va = split_train_val(ds, 0.2, seed=3)
    tr2, va2 = split_train_val(ds, 0.2, seed=3)
    assert torch.equal(va.images, va2.images) and len(tr) + len(va) == len(ds)
    assert va.labels.bincount().tolist() == [24] * 10
    joined = torch.cat([tr.images, va.images]).reshape(len(ds), -1)
    assert (
        torch.unique(joined, dim=0).shape[0]
        == torch.unique(ds.images.reshape(len(ds), -1), dim=0).shape[0]
    )


def test_subset_balanced_and_deterministic():
    ds = load_dataset("synthetic")
    s = subset(ds, 50, seed=1)
    assert s.labels.bincount().tolist() == [5] * 10
    assert torch.equal(s.images, subset(ds, 50, seed=1).images)
