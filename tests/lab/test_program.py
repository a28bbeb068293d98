"""The engine's program is a pure compiled function, cached: one compilation serves a group
of any size run serially; vmapped, the run count is a shape."""

from mgs_teach import train as T
from mgs_teach.lab import engine, program

from .helpers import CFG, jobs_for, make_model


def test_the_serial_program_is_unbatched_and_shared_by_any_number_of_runs():
    """One compilation serves 2 or 3 runs serially; vmapped, the run count is a shape."""
    program.make_train.cache_clear()
    engine.train_runs(make_model, jobs_for("none")[:2], share="serial", progress=False)
    engine.train_runs(make_model, jobs_for("none"), share="serial", progress=False)
    assert program.make_train.cache_info().currsize == 1
    reg = jobs_for("none")[0].reg
    made = program.make_train(make_model, *T.compile_key(reg, CFG), 64, False, False,
                              "cross_entropy")  # fmt: skip
    assert isinstance(made, program.Program) and made.builder is not None
    assert made.chunk._cache_size() == 1  # traced once, for a run axis of one


def test_the_engine_trains_with_the_program_of_make_train():
    assert engine.make_train is program.make_train and engine.Program is program.Program
