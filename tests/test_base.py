"""The sweep skeleton (engines/base.py), driven by a made-up engine: rounds, workers, the stop rule."""

from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace

import pytest

from mnist_sweep.config import Settings
from mnist_sweep import deadlines
from mnist_sweep.deadlines import SearchEnds
from mnist_sweep.engines import base
from mnist_sweep.errors import SweepCannotGoOn
from mnist_sweep.outcomes import Outcome
from mnist_sweep.studies import TrialOutcome


def ended(number: int, outcome: Outcome, mflops: float | None = None) -> TrialOutcome:
    return TrialOutcome(number, outcome, {}, None, 0, 0.0, [], reason="broken" if outcome == Outcome.FAILED else None,
                        mflops=mflops)


class Tracker:
    def __init__(self) -> None:
        self.closed_on_error: list[str] = []

    @contextlib.contextmanager
    def ended_on_error(self, run_id: str):
        try:
            yield
        except BaseException:
            self.closed_on_error.append(run_id)
            raise


class Study:
    def finished(self) -> int:
        return 0

    def best_value(self) -> None:
        return None

    def outcomes(self) -> list[TrialOutcome]:
        return []


class Sweep:
    """Runs nothing; notes what the skeleton asked of it, and is short of trials for `rounds` rounds."""

    def __init__(self, rounds: int = 1):
        self.study, self.runner, self.rounds, self.calls = Study(), SimpleNamespace(parent_id="parent"), rounds, []

    def recover(self) -> None:
        self.calls.append("recover")

    def run_here(self, progress, ends, worker: int = 0) -> None:
        self.calls.append(f"here {worker}")
        self.left = ends.left()

    @contextlib.contextmanager
    def serving(self, progress):
        self.calls.append("serve")
        yield base.WorkerCare(lambda index: self.calls.append(f"recover {index}"), env=lambda index: {"ID": str(index)})
        self.calls.append("served")

    def missing(self) -> int:
        self.rounds -= 1
        return self.rounds

    def wait_for_others(self) -> None:
        self.calls.append("wait")


class Engine:
    def __init__(self, sweep: Sweep):
        self.sweep, self.prepared, self.attached = sweep, 0, 0

    def prepare(self, job) -> Sweep:
        self.prepared += 1
        return self.sweep

    def attach(self, job) -> Sweep:
        self.attached += 1
        return self.sweep


def job(settings: Settings, worker: int | None = None, ends: SearchEnds = SearchEnds()) -> SimpleNamespace:
    return SimpleNamespace(settings=settings, tracker=Tracker(), argv=["optuna"], worker=worker, ends=ends)


@pytest.fixture
def pools(monkeypatch) -> list[SimpleNamespace]:
    """The skeleton's worker processes, not started: what each pool was given; worker 1 dies once."""
    made = []

    def workers(argv, count, recover, env, gpus):
        pool = SimpleNamespace(argv=argv, count=count, envs=[env(index) for index in range(count)])
        made.append(pool)
        return SimpleNamespace(run=lambda watch: (recover(1), watch()))

    monkeypatch.setattr(base, "Workers", workers)
    monkeypatch.setattr(base.devices, "gpu_count", lambda: 0)  # --workers 2 on a CPU machine
    return made


def test_the_sweep_recovers_first_then_runs_rounds_until_nothing_is_missing(monkeypatch):
    monkeypatch.setattr(base, "worker_plan", lambda settings: (1, lambda index: {}))
    sweep = Sweep(rounds=2)
    engine = Engine(sweep)
    assert base.search(engine, job(Settings(trials=3))) is sweep.study
    assert engine.prepared == 1 and engine.attached == 0
    assert sweep.calls == ["recover", "here 0", "wait", "here 0", "wait"]


def test_with_several_workers_the_sweep_starts_them_in_every_round_timeout_or_not(pools):
    """A round ended short with time left (a trial another process seemed to run failed meanwhile)
    is followed by another: CI once saw a resumed default sweep (with `minutes`) end on 3 of 4."""
    sweep = Sweep(rounds=2)
    base.search(Engine(sweep), job(Settings(trials=3, workers=2), ends=SearchEnds(time.monotonic() + 60)))
    # Each round: the engine serves its workers while they run; a dead one's trial is recovered.
    assert sweep.calls == ["recover", *["serve", "recover 1", "served", "wait"] * 2]
    assert [(p.argv, p.count, p.envs) for p in pools] == [(["optuna"], 2, [{"ID": "0"}, {"ID": "1"}])] * 2


def test_a_spent_time_ends_the_sweep_after_its_round_with_trials_missing(pools, monkeypatch):
    monkeypatch.setattr(deadlines, "SPENT_GRACE_SECONDS", 0.0)
    sweep = Sweep(rounds=5)
    base.search(Engine(sweep), job(Settings(trials=3, workers=2), ends=SearchEnds(time.monotonic() - 1)))
    assert sweep.calls == ["recover", "serve", "recover 1", "served", "wait"] and len(pools) == 1
    here = Sweep(rounds=5)
    base.search(Engine(here), job(Settings(trials=3, workers=1), ends=SearchEnds(time.monotonic() - 1)))
    assert here.calls == ["recover", "here 0", "wait"]


def test_a_search_whose_time_was_spent_before_its_first_round_still_gets_its_grace_to_start_a_trial(monkeypatch):
    # Loading the data, opening the study and recovering trials take time the command's clock counts.
    monkeypatch.setattr(base, "worker_plan", lambda settings: (1, lambda index: {}))
    sweep = Sweep()
    base.search(Engine(sweep), job(Settings(trials=3), ends=SearchEnds(time.monotonic() - 10)))
    assert sweep.left == pytest.approx(deadlines.SPENT_GRACE_SECONDS, abs=0.2)
    monkeypatch.setattr(base, "use_threads", lambda count: None)  # a worker's share of the cores: not here
    worker = Sweep()
    base.search(Engine(worker), job(Settings(trials=3, workers=2), worker=0, ends=SearchEnds(time.monotonic() - 10)))
    assert worker.left == pytest.approx(deadlines.SPENT_GRACE_SECONDS, abs=0.2)


def test_a_worker_process_attaches_and_runs_trials_only_with_its_share_of_the_cores(monkeypatch):
    threads = []
    monkeypatch.setattr(base, "use_threads", threads.append)
    monkeypatch.setattr(base, "threads_per_worker", lambda workers: 10 * workers)
    sweep = Sweep()
    engine = Engine(sweep)
    assert base.search(engine, job(Settings(trials=3, workers=2), worker=1)) is None
    assert (engine.prepared, engine.attached, threads, sweep.calls) == (0, 1, [20], ["here 2"])


def test_whatever_stops_the_sweep_closes_its_parent_run(monkeypatch):
    monkeypatch.setattr(base, "worker_plan", lambda settings: (1, lambda index: {}))
    sweep = Sweep()
    sweep.run_here = lambda progress, worker=0: (_ for _ in ()).throw(SweepCannotGoOn("no"))
    running = job(Settings(trials=3))
    with pytest.raises(SweepCannotGoOn):
        base.search(Engine(sweep), running)
    assert running.tracker.closed_on_error == ["parent"]


def test_trials_that_keep_failing_stop_the_sweep_and_refused_ones_do_not_break_the_run():
    failing = [ended(0, Outcome.FAILED), ended(1, Outcome.REFUSED), ended(2, Outcome.FAILED), ended(3, Outcome.FAILED)]
    with pytest.raises(SweepCannotGoOn, match="the last 3 trials all failed"):
        base.check_going("s", failing, target=10)
    base.check_going("s", [ended(0, Outcome.COMPLETED), *failing[1:]], target=10)  # one worked: go on
    base.check_going("s", failing, target=10, in_a_row=4)  # fewer trained trials than the round's size
    with pytest.raises(SweepCannotGoOn, match="the last 2 trials all failed"):
        base.check_going("s", failing, target=10, in_a_row=2)


def test_refusals_far_beyond_the_trials_asked_for_stop_the_sweep_and_name_the_smallest_cost():
    refused = [ended(n, Outcome.REFUSED, mflops=100.0 + n) for n in range(21)]
    base.check_going("s", refused[:20], target=2)
    with pytest.raises(SweepCannotGoOn, match=r"21 sampled models were refused untrained \(the smallest over "
                                              r"max_mflops needed 100.0\)"):
        base.check_going("s", refused, target=2)


def test_every_trial_runner_stops_trials_at_the_jobs_share_end_and_knows_the_studys_completed_trials():
    class Done(Study):
        def outcomes(self) -> list[TrialOutcome]:
            return [ended(0, Outcome.COMPLETED), ended(1, Outcome.PRUNED), ended(2, Outcome.COMPLETED)]

    job = SimpleNamespace(settings=Settings(), space=None, data=None, tracker=None, tags={},
                          ends=SearchEnds(100.0, 123.0))
    runner = base.trial_runner(job, "parent", Done())
    # A process begun after the study completed trials (a resume, a worker, a memory recycle) may stop its first.
    assert (runner.stop_at, runner.has_completed) == (123.0, True)
    assert base.trial_runner(job, "parent", Study()).has_completed is False
