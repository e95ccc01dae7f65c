"""Every seed the project draws from the one `--seed`: each derivation named, here and only here.

A study is reproducible from its seed because each random stream has its own derivation, and
streams that must differ (trials, workers' samplers, ensemble members) never share a value for
any realistic study. Changing a derivation changes what every seed draws: existing studies
would resume onto other configurations, so each is kept as the first release made it.
"""

from __future__ import annotations

# numpy and Keras take seeds below 2**32; the derivations below add at most this much to --seed
# (a trial its number, a worker 100,003 times its index), so the largest seed accepted leaves it.
SEED_ROOM = 2**24
MAX_SEED = 2**32 - 1 - SEED_ROOM

# A prime far above any count of trials a study begins: worker w's sampler stream starts where
# no other worker's can reach.
WORKER_STRIDE = 100_003
# Above any trial number a study reaches: a member retrained again (more members than distinct
# configurations) draws other weights than every trial and every other member.
RETRAIN_STRIDE = 1_000
# Keras Tuner reads a seed of 0 as none (`seed or random.randint(1, 10000)`): the default
# --seed 0 drew other trials at every start. Shifted by one, every seed is a seed.
ORACLE_SHIFT = 1


def split(seed: int) -> int:
    """Which training images are held out for validation (the same for every trial)."""
    return seed


def trial(seed: int, number: int) -> int:
    """Trial `number`'s initial weights, dropout and augmentation."""
    return seed + number


def sampler(seed: int, begun: int, worker: int) -> int:
    """Optuna's sampler in worker `worker` of a study that has begun `begun` trials.

    A resumed process (Ctrl-C, kill, a memory recycle) seeded like the first would draw the same
    random start-up configurations again; offset by the trials so far, it goes on. Workers
    starting together see the same count, so each also gets its own offset."""
    return seed + begun + WORKER_STRIDE * worker


def sequence(seed: int) -> int:
    """The scrambling of Optuna's QMC sampler: the same in every process of the study, which each
    take the next point of one sequence by trial number. Unscrambled (Optuna's default), the
    sequence was the same for every seed after the first trial."""
    return seed


def oracle(seed: int) -> int:
    """Keras Tuner's oracle."""
    return seed + ORACLE_SHIFT


def member(seed: int, number: int, retrain: int) -> int:
    """The final step's retrain of trial `number` (its `retrain`-th copy, 0 for the first)."""
    return seed + number + RETRAIN_STRIDE * retrain


def repeat(seed: int, k: int) -> int:
    """The `k`-th of several trainings of one configuration (`baselines --seeds`)."""
    return seed + k
