import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mgs_teach import checkpoint as C


def test_save_load_restore_round_trip(tmp_path):
    state = {"w": jnp.arange(3.0, dtype=jnp.float32), "key": jax.random.key(7), "t": jnp.int32(5)}
    path = tmp_path / "sub" / "ck.pkl"
    C.save(path, dict(fingerprint="abc", state=state))
    saved = C.load(path, "abc")
    back = C.restore(state, saved["state"])
    assert back["w"].dtype == jnp.float32
    np.testing.assert_array_equal(back["w"], state["w"])
    assert jax.random.key_data(back["key"]).tolist() == jax.random.key_data(state["key"]).tolist()
    assert not list(path.parent.glob("*.tmp"))  # nothing half-written is left behind


def test_load_refuses_another_runs_checkpoint_and_misses_quietly(tmp_path):
    path = tmp_path / "ck.pkl"
    assert C.load(path, "x") is None
    C.save(path, dict(fingerprint="x"))
    with pytest.raises(ValueError, match="different run"):
        C.load(path, "y")


def test_fingerprint_tells_arrays_and_reprs_apart():
    a = C.fingerprint("run", np.zeros(3))
    assert a == C.fingerprint("run", np.zeros(3))
    assert a != C.fingerprint("run", np.ones(3))
    assert a != C.fingerprint("other", np.zeros(3))


def test_write_atomic_replaces_text_and_bytes(tmp_path):
    path = tmp_path / "a" / "f.txt"
    C.write_atomic(path, "one")
    C.write_atomic(path, b"two")
    assert path.read_text() == "two"
