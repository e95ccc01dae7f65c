"""The final step's members: what each trains with, as the user's model gets it."""

import pytest

from mnist_sweep.budget import Choice, Member
from mnist_sweep.members import train_members
from mnist_sweep.studies import TrialOutcome

MLP = {"n_layers": 1, "units_l0": 16, "optimizer": "adam", "learning_rate": 1e-2, "batch_size": 64,
       "schedule": "constant"}


def rates_trained(tiny_mnist, tmp_path, params, recorded, epochs, own_epochs):
    """The learning rate of each epoch a lone member trained, its trial having recorded `recorded`."""
    trial = TrialOutcome(3, "completed", {**MLP, **params, "epochs": own_epochs}, 0.9, len(recorded), 1.0,
                         learning_rates=recorded)
    seen = []
    train_members("mlp", Choice((Member(trial, epochs, own_epochs),)), 0, tiny_mnist.x_train, tiny_mnist.y_train,
                  tmp_path, on_epoch=lambda epoch, metrics: seen.append(metrics["learning_rate"]))
    return seen


def test_a_flat_rate_cut_short_falls_to_nearly_nothing_by_the_last_epoch(tiny_mnist, tmp_path):
    rates = rates_trained(tiny_mnist, tmp_path, {}, [1e-2, 1e-2], epochs=5, own_epochs=20)
    assert rates[0] == pytest.approx(1e-2) and rates == sorted(rates, reverse=True) and rates[-1] < 0.2 * rates[0]


def test_an_annealing_a_short_trial_never_reached_falls_too(tiny_mnist, tmp_path):
    # Notebook 001 anneals on plateaus of the validation loss; its 2-epoch trial recorded a flat rate.
    annealing = {"anneal": True, "anneal_factor": 0.3, "anneal_patience": 2}
    rates = rates_trained(tiny_mnist, tmp_path, annealing, [1e-2, 1e-2], epochs=5, own_epochs=5)
    assert rates[-1] < 0.2 * rates[0]


def test_an_annealing_recorded_whole_is_replayed_and_a_flat_rate_trained_whole_stays_flat(tiny_mnist, tmp_path):
    annealing = {"anneal": True, "anneal_factor": 0.3, "anneal_patience": 1}
    recorded = [1e-2, 1e-2, 3e-3, 9e-4]
    assert rates_trained(tiny_mnist, tmp_path, annealing, recorded, epochs=4, own_epochs=4) == pytest.approx(recorded)
    assert rates_trained(tiny_mnist, tmp_path, {}, [1e-2] * 3, epochs=3, own_epochs=3) == pytest.approx([1e-2] * 3)


def test_a_member_whose_process_dies_tells_the_user_to_run_the_command_again(tiny_mnist, tmp_path, monkeypatch):
    from mnist_sweep import members
    from mnist_sweep.runtime.parallel import ChildDied

    def dies(*args):
        raise ChildDied("its process died (exit -9) before it finished")
        yield

    monkeypatch.setattr(members, "run_each", dies)
    trial = TrialOutcome(3, "completed", {**MLP, "epochs": 1}, 0.9, 1, 1.0, learning_rates=[1e-2])
    two = Choice((Member(trial, 1, 1), Member(trial, 1, 1)), cores=2)
    with pytest.raises(ChildDied, match=r"final step: its process died \(exit -9\).*run the same command again"):
        train_members("mlp", two, 0, tiny_mnist.x_train, tiny_mnist.y_train, tmp_path)
