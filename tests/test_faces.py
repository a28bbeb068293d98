"""The regression benchmark's data: drawn faces whose keypoints are where the drawing puts
them, a deterministic corrupted task, and Kaggle's CSV read from a file made here."""

import numpy as np
import pytest

from mgs_teach import faces


def test_keypoints_are_in_kaggles_layout_and_inside_the_image():
    x, y = faces.keypoint_faces(40, size=48, seed=0)
    assert x.shape == (40, 48, 48) and y.shape == (40, 30)
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert len(faces.KEYPOINTS) == 15
    assert (y > 0).all() and (y < 48).all()
    kp = y.reshape(40, 15, 2)
    name = {k: i for i, k in enumerate(faces.KEYPOINTS)}
    # "left" is the subject's left: on the image's right, at larger x
    assert (kp[:, name["left_eye_center"], 0] > kp[:, name["right_eye_center"], 0]).all()
    # eyes above the nose, the nose above the mouth (y grows downwards; heads tilt < 15°)
    eye_y = kp[:, name["left_eye_center"], 1]
    assert (eye_y < kp[:, name["nose_tip"], 1]).all()
    assert (kp[:, name["nose_tip"], 1] < kp[:, name["mouth_center_bottom_lip"], 1]).all()
    # the top lip above the bottom one, the eye's corners on either side of its centre
    top, bottom = kp[:, name["mouth_center_top_lip"], 1], kp[:, name["mouth_center_bottom_lip"], 1]
    assert (top < bottom).all()
    inner, outer = kp[:, name["left_eye_inner_corner"], 0], kp[:, name["left_eye_outer_corner"], 0]
    assert (inner < kp[:, name["left_eye_center"], 0]).all()
    assert (kp[:, name["left_eye_center"], 0] < outer).all()


def test_the_eyes_are_drawn_dark_where_their_keypoints_say():
    x, y = faces.keypoint_faces(30, size=96, seed=1)
    kp = np.round(y.reshape(30, 15, 2) - 0.5).astype(int)
    for img, points in zip(x, kp):
        eye = img[points[0, 1], points[0, 0]]  # left eye centre: (row y, column x)
        nose_side = img[points[10, 1], points[10, 0] + 8]  # skin beside the nose tip
        assert eye < nose_side - 0.2


def test_faces_are_reproducible_and_differ_between_seeds():
    a, b = faces.keypoint_faces(5, size=32, seed=3), faces.keypoint_faces(5, size=32, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[1], faces.keypoint_faces(5, size=32, seed=4)[1])
    with pytest.raises(ValueError, match="size"):
        faces.keypoint_faces(5, size=8)


def test_corrupted_faces_add_noise_of_the_papers_scale_to_training_targets_only():
    clean = faces.corrupted_faces(300, 50, target_noise=0.0, size=32, seed=0)
    noisy = faces.corrupted_faces(300, 50, target_noise=30.0, size=32, seed=0)
    np.testing.assert_array_equal(clean[0], noisy[0])  # the same faces
    np.testing.assert_array_equal(clean[3], noisy[3])  # exact test targets
    diff = noisy[1] - clean[1]
    # the paper's 30 pixels of a 96-pixel image are 10 pixels of a 32-pixel one
    assert faces.target_noise_scale(30.0, 32) == pytest.approx(10.0)
    assert diff.std() == pytest.approx(10.0, rel=0.05) and abs(diff.mean()) < 0.2
    other = faces.corrupted_faces(300, 50, target_noise=0.0, size=32, seed=1)
    assert not np.array_equal(other[1], clean[1])  # another subset of the pool
    np.testing.assert_array_equal(other[2], clean[2])  # the same test faces
    # 300 training faces are 30 % of the pool's training part: no test face among them
    train = {row.tobytes() for row in clean[0].reshape(300, -1)}
    assert not any(row.tobytes() in train for row in clean[2].reshape(50, -1))
    with pytest.raises(ValueError, match="target_noise"):
        faces.corrupted_faces(10, 5, target_noise=-1.0, size=32)


def _kaggle_csv(path, n=4, missing_row=1, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 96 * 96))
    rows = []
    for i in range(n):
        row = {f"{k}_{a}": float(rng.uniform(10, 86)) for k in faces.KEYPOINTS for a in "xy"}
        if i == missing_row:
            row["nose_tip_x"] = np.nan
        row["Image"] = " ".join(str(v) for v in images[i])
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame[list(frame.columns[::-1])]  # Kaggle's column order does not matter
    frame.to_csv(path, index=False)
    return frame, images


def test_the_kaggle_csv_loader_reads_a_generated_file(tmp_path):
    path = tmp_path / "training.csv"
    frame, images = _kaggle_csv(path)
    x, y = faces.load_kaggle_csv(path)
    assert x.shape == (3, 96, 96) and y.shape == (3, 30)  # the row with a gap is dropped
    keep = [0, 2, 3]
    np.testing.assert_allclose(x, images[keep].reshape(3, 96, 96) / 255, rtol=1e-6)
    order = [f"{k}_{a}" for k in faces.KEYPOINTS for a in "xy"]
    np.testing.assert_allclose(y, frame.loc[keep, order].to_numpy(), rtol=1e-6)
    x_all, y_all = faces.load_kaggle_csv(path, complete=False)
    assert len(y_all) == 4 and np.isnan(y_all[1, order.index("nose_tip_x")])
    small, kp = faces.resize(x, y, 48)
    assert small.shape == (3, 48, 48)
    np.testing.assert_allclose(small[0, 0, 0], x[0, :2, :2].mean(), rtol=1e-6)
    np.testing.assert_allclose(kp, y / 2)
    pool = faces.kaggle_pool(path, 48, blur=False)
    assert pool[0].shape == (3, 48, 48)
    x_tr, y_tr, x_te, y_te = faces.corrupted_faces(2, 1, size=48, pool=pool)
    assert x_tr.shape == (2, 48, 48) and y_te.shape == (1, 30)


def test_the_kaggle_loader_says_what_is_wrong(tmp_path):
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        faces.load_kaggle_csv(bad)
    path = tmp_path / "short.csv"
    frame, _ = _kaggle_csv(path, n=2, missing_row=-1)
    frame.loc[0, "Image"] = "1 2 3"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="image 0 has 3 values"):
        faces.load_kaggle_csv(path)
    with pytest.raises(ValueError, match="does not divide"):
        faces.resize(np.zeros((1, 96, 96)), np.zeros((1, 30)), 40)


def test_the_drawing_is_pinned_pixel_for_pixel():
    """Values computed before ``_face`` was split into its parts: the drawn faces (and so every
    stored regression result) depend on every random draw staying in its place."""
    x, y = faces.keypoint_faces(3, size=48, seed=5)
    pixels = {(0, 18, 32): 0.11542382836341858, (0, 27, 26): 0.2893381416797638,
              (0, 36, 27): 0.190911665558815, (0, 15, 28): 0.4021467864513397,
              (0, 24, 24): 0.5599985122680664, (1, 30, 20): 0.824358344078064,
              (1, 2, 2): 0.37732526659965515, (2, 24, 24): 0.46042490005493164,
              (2, 40, 5): 0.17069321870803833}  # fmt: skip
    for index, value in pixels.items():
        assert x[index] == pytest.approx(value, rel=1e-6, abs=1e-6), index
    np.testing.assert_allclose(y[0, :6], [32.09776, 18.536846, 18.373333, 20.082582, 29.99768,
                                          18.77337], rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(y[1, ::7], [30.105937957763672, 20.7933406829834,
                                           34.29549026489258, 29.116668701171875,
                                           21.175174713134766], rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(y[2, :6], [30.352905, 22.09859, 17.861128, 23.174406, 28.275648,
                                          22.277487], rtol=1e-6)  # fmt: skip
