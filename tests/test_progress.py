"""The progress display: one bar with count, target, elapsed time and ETA, whoever runs the trials."""

from __future__ import annotations

import io
import os
import pty
import re

import optuna
import pytest

from mnist_sweep.runtime import progress as progress_module
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.studies import TrialOutcome

BAR = re.compile(r"(\d+)/(\d+) \[\d\d:\d\d<(\S+)\]")  # count/target [elapsed<ETA]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Log(io.StringIO):
    def isatty(self) -> bool:
        return False


def on(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """`stream` as stderr; in the test's body, as pytest's capture sets sys.stderr again after fixtures."""
    monkeypatch.setattr(progress_module.sys, "stderr", stream)
    return stream


class FakeStudy:
    """A study the workers add to, as `follow` reads it."""

    def __init__(self, outcomes: list[TrialOutcome] | None = None):
        self.ended = list(outcomes or [])

    def outcomes(self) -> list[TrialOutcome]:
        return list(self.ended)


def ended(number: int, outcome: str = "completed", value: float | None = 0.9) -> TrialOutcome:
    return TrialOutcome(number, outcome, {}, value, 1, 2.0, [])


def last_bar(text: str) -> tuple[int, int, str]:
    count, target, eta = BAR.findall(text)[-1]
    return int(count), int(target), eta


def test_the_sweeps_process_shows_the_workers_trials_on_one_bar_with_an_eta(monkeypatch):
    terminal = on(Terminal(), monkeypatch)
    study = FakeStudy([ended(0, value=0.8)])  # a resumed study: trial 0 ended before
    with Progress(4, 1, 0.8, shown=[0]) as progress:
        assert last_bar(terminal.getvalue()) == (1, 4, "?")  # no trial of this run yet: no rate
        study.ended += [ended(1, value=0.95), ended(2, "failed", None)]
        progress.follow(study)
        progress.follow(study)  # nothing new: no line twice
        count, target, eta = last_bar(terminal.getvalue())
    out = terminal.getvalue()
    assert (count, target) == (2, 4) and re.fullmatch(r"\d\d:\d\d", eta)  # a failed trial does not count
    assert out.count("trial   1  completed") == 1 and out.count("trial   2  failed") == 1
    assert "trial   0" not in out and "best 0.9500" in out


def test_a_study_that_cannot_be_read_for_a_moment_does_not_stop_the_sweep(monkeypatch):
    class Hiccup(FakeStudy):
        def outcomes(self) -> list[TrialOutcome]:
            raise ConnectionError("server closed the connection unexpectedly")

    terminal = on(Terminal(), monkeypatch)
    with Progress(4, 1) as progress:
        progress.follow(Hiccup())
        progress.follow(FakeStudy([ended(1)]))
    assert last_bar(terminal.getvalue())[:2] == (2, 4)


def test_where_stderr_is_not_a_terminal_there_are_lines_and_no_bar(monkeypatch):
    log = on(Log(), monkeypatch)
    with Progress(4, 0) as progress:
        progress.follow(FakeStudy([ended(0), ended(1, "pruned", 0.5)]))
    assert "\r" not in log.getvalue() and not BAR.search(log.getvalue())
    assert log.getvalue().count("\n") == 2


def test_a_worker_shows_nothing_its_sweeps_process_shows_its_trials(monkeypatch):
    terminal = on(Terminal(), monkeypatch)
    with Progress(4, 0, bar=False, lines=False) as progress:
        progress.show(ended(0))
    assert terminal.getvalue() == ""


def test_an_optuna_study_is_followed_by_its_count_towards_trials(monkeypatch):
    terminal = on(Terminal(), monkeypatch)
    from mnist_sweep.engines.base import following
    from mnist_sweep.engines.optuna_study import OptunaStudy

    study = OptunaStudy(optuna.create_study(direction="maximize"), "")
    with following(study, 3) as progress:
        for state, value, attrs in [(optuna.trial.TrialState.COMPLETE, 0.9, {}),
                                    (optuna.trial.TrialState.PRUNED, None, {}),  # counts, as for --trials
                                    (optuna.trial.TrialState.PRUNED, None, {"over_budget": 120.0})]:  # does not
            study.study.add_trial(optuna.trial.create_trial(state=state, value=value, user_attrs=attrs))
        progress.follow(study)
        count, target, eta = last_bar(terminal.getvalue())
    assert (count, target) == (2, 3) and eta != "?"
    assert "refused" in terminal.getvalue()


def test_a_terminal_without_a_size_still_gets_the_bar(monkeypatch):
    """A new pty is 0 by 0, as the one `script -qc ... /dev/null` opens when its own output is a file."""
    main, side = pty.openpty()
    with open(side, "w", closefd=True) as terminal:
        on(terminal, monkeypatch)
        with Progress(4, 1):
            pass
        terminal.flush()
        shown = os.read(main, 65536).decode()
    os.close(main)
    assert last_bar(shown) == (1, 4, "?")
