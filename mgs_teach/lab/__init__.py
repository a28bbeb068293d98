"""mgs_teach.lab: the machinery that runs the paper's experiments at scale.

The teaching core (:mod:`mgs_teach`) never imports this package. Modules, in the order a
run passes through them:

experiment   an experiment as a value, and its canonical, versioned key
plan         a plan as a frozen value: tuning, tables, figures, test bench
plans        the plans themselves (quick, cpu, paper; MNIST and regression)
jobs         a group of runs: checked, and its data as (sharded) device arrays
program      a group's training as one pure compiled function (``make_train``)
engine       the one driver: chunks, checkpoints, progress, stopping
store        the results store: one folder per experiment, atomic writes
grid         the grid runner, with sharding and resume
tuner        the one tuner: candidates, the selection rule
aggregate    the paper's aggregation (Appendix D.1)
runner       running a plan: tune each network, then its grids
summaries    what the chapters read, never training; ``summary.json``
provenance   where a stored result comes from
budget       a plan's cost from measured rates and its arithmetic
bench        the penalty benchmark (and neural-tangents); ``bench_training`` the engine's
cli          ``python -m mgs_teach.lab mnist --plan cpu`` and the other commands
"""
