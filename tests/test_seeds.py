import numpy as np

from mnist_sweep import seeds


def test_a_resumed_study_draws_what_its_first_release_drew():
    # Studies written by 0.1.0 resume onto the same configurations and weights only if every
    # derivation is the one it used: trial seed + number, sampler + begun + 100,003 x worker,
    # oracle seed + 1, member seed + number + 1,000 x retrain, the split the seed itself.
    assert (seeds.trial(7, 3), seeds.sampler(7, 5, 2), seeds.oracle(7), seeds.member(7, 28, 1), seeds.split(7)) == \
        (10, 200_018, 8, 1_035, 7)


def test_streams_that_must_differ_never_meet_in_a_large_study():
    trials = {seeds.trial(0, n) for n in range(1_000)}
    retrains = {seeds.member(0, n, r) for n in range(1_000) for r in (1, 2)}
    assert not trials & retrains  # a second copy of a member never trains like any trial
    samplers = [{seeds.sampler(0, begun, w) for begun in range(10_000)} for w in range(8)]
    assert all(not a & b for i, a in enumerate(samplers) for b in samplers[i + 1:])


def test_the_largest_seed_accepted_leaves_every_derivation_a_seed_numpy_takes():
    top = seeds.MAX_SEED
    for derived in (seeds.trial(top, 10_000), seeds.sampler(top, 10_000, 16), seeds.member(top, 10_000, 100),
                    seeds.oracle(top)):
        np.random.default_rng(derived)
        np.random.seed(derived)  # the legacy API refuses 2**32 and above
