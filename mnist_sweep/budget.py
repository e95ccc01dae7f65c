"""What the final step retrains: which configurations, how many models, for how many epochs.

The search judges configurations on 10,000 validation images, where one standard error at
99% is about 0.1 points: the top few trials are rarely told apart by it. So the final step
does not bet on the single best number. With `final_models: K` it retrains the K best
*distinct* configurations (the best again, with another seed, where fewer than K completed)
on all training images, side by side, a process per core, and averages their class
probabilities into one model. `benchmarks/finals.py` measured which K pays. Among the trials
tied with the best (TIE_STANDARD_ERRORS), augmented configurations come first: short trials
rank them low, and augmentation pays over a long retrain. A sweep file may name one configuration
it enqueues in `final_include`: it joins every team right after the best, whatever its short trial
scored (a benchmark measured it over a long retrain, which short trials cannot judge), as
`final_include_models` of its members, each with its own seed (never all of them: the best
searched configuration leads every team).

A CNN that wins on 10,000 images can cost an hour to retrain on 60,000 on two cores, so a sweep
may set `final_minutes`, or `minutes` for the whole command: the final step then gets what the
search left of it, less RESERVE_SHARE of it for the evaluation, the export and the report. Members
are added only while they fit: side by side, a core each, each for its own epochs or as many as
fit, never fewer than its trial trained (the search judged it on those). More members than cores
take turns on them: where the search judged configurations on their own epochs, only as whole
retrains; where it cut every trial (`trial_epochs`), each fills an even share of its core's time,
and none trains fewer than MIN_MEMBER_EPOCHS (small networks trained long and averaged are what
two cores can afford, sweeps/cnn-optuna.yaml). A single model that does not fit retrains for as
many epochs as fit, but never for fewer gradient steps than its trial took; a trial that cannot
fit even that is passed over. Where trials were cut at `trial_epochs`, the search judged every
configuration on the same first epochs, not on its own number: a member then trains as many as
fit the budget (at most MOST_FILLED_EPOCHS), not that untested number.

A retrain's rate is fitted to the epochs it trains (`Rate`): a cosine ends at its last epoch, an
annealing its trial recorded whole is replayed over them, and any other flat rate trained for
other epochs than its own, or an annealing on plateaus that a short trial never reached, falls
along a cosine to nearly nothing (a retrain has no validation set to anneal on, and a flat rate
to the end leaves the weights noisy). The note says what was cut or filled, and why.
Estimates scale what each trial measured, its last epoch of training alone (older studies: its
seconds per epoch, validation counted by its cost), by the images the retrain trains on, the
threads each model gets against the trial's, and the slowdown retrains showed (RETRAIN_SLOWDOWN).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from enum import Enum

from mnist_sweep.config import Settings
from mnist_sweep.deadlines import seconds_since
from mnist_sweep.outcomes import Outcome
from mnist_sweep.studies import Study, StudySettings, TrialOutcome

# Two TensorFlow threads against one on a CNN epoch (benchmarks/throughput.py, threads): 1.6x on
# the Intel Xeon of 2026-12-01, 1.13x on the AMD EPYC of 2026-12-02. The larger errs towards
# retrains that run over (RETRAIN_SLOWDOWN errs the other way).
TWO_THREAD_SPEEDUP = 1.6
# For older studies, whose trials recorded only their whole time: a trial's epoch also validated,
# and a validation image costs about a third of a training image (one forward pass, against a
# forward and two backward). Estimated so, an augmented CNN's retrain took 62 s an epoch against
# 51 s estimated (augmentation costs training only), an unaugmented one's at most 75 s against 106
# (its trial's 2 epochs held its tracing): 2026-12-06, Intel Xeon, 12bc2d8. So trials now record
# their last epoch's training alone (TrialOutcome.epoch_seconds), and estimates start from that.
VALIDATION_COST = 1 / 3
# Estimated so, from a trial's last epoch on 20,000 images, a retrain's epoch on 60,000 still took
# longer: 1.08x (with its start-up) and 1.25x (2026-12-06, Intel Xeon, 4dc8e35: 56 s estimated,
# 70 s taken), so the command overran its 29 minutes by 1.6. The larger is assumed.
RETRAIN_SLOWDOWN = 1.25
# Trials this short rank configurations only roughly (shared/notes/cnn-recipes.md), and they rank
# augmented ones low: augmentation pays over long training on many images, as the final step's, not
# over a short one. Judged on 2 epochs of 20,000 images, the CNN sweep's augmented networks trailed
# by 0.2-0.5 points and were never members; its final steps of two augmented members tested
# 99.57% and 99.48% (one cut to 6 epochs), its three with an unaugmented one 99.37-99.48%
# (2026-12-06, Intel Xeon): a prior, not yet a measured gain. So among the
# trials tied with the best, within this many standard errors of its validation accuracy, augmented
# configurations come first.
TIE_STANDARD_ERRORS = 2.0
# Where trials are cut at trial_epochs, a configuration's own `epochs` was never tried, so the
# budget sets a member's: as many as fit, at most notebook 001's 30 (the field's schedules reach
# their accuracy in 10 to 35, shared/notes/cnn-recipes.md), never fewer than its own unless cut.
MOST_FILLED_EPOCHS = 30
# The fewest epochs a member trains where the search cut every trial: warm-up cosine schedules reach
# their accuracy in about 10 (shared/notes/cnn-recipes.md), and the CNN sweep's members cut to 6-8
# tested 99.37-99.48% (2026-12-06, Intel Xeon; docs/benchmarks.md). A configuration too slow for
# that on its core is passed over for the next.
MIN_MEMBER_EPOCHS = 10
# What a command under `minutes` leaves after the final step's training, as a share of them: the test
# evaluation, the export (SavedModel, MLflow model, registry) and the report took under 30 s after a
# CNN ensemble's training and 13 s after an MLP pair's (2026-12-06, Intel Xeon); the rest is for
# estimates that run short. A share, not a fixed time: 90 s, right for the CNN's 29 minutes, would
# leave a 5.4-minute MLP sweep's final step nothing.
RESERVE_SHARE = 0.05


@dataclass(frozen=True)
class Images:
    """The images of a study's epochs: each trial's training and validation, and the final step's."""

    trial: int
    final: int
    validation: int = 0

    def per_trial_epoch(self) -> float:
        """The final step's training images per image a trial's epoch processed."""
        return self.final / (self.trial + VALIDATION_COST * self.validation)


class Rate(Enum):
    """How a member's learning rate runs over the epochs it trains."""

    OWN = "own"            # its configuration's: a cosine over the member's epochs, or a flat rate trained whole
    REPLAYED = "replayed"  # the annealing its trial recorded, over all its epochs, fitted to the member's
    ANNEALED = "annealed"  # a cosine to nearly nothing: cut flat, or an annealing its short trial never reached


@dataclass(frozen=True)
class Member:
    """One model of the final step: a trial's configuration, retrained once with its own seed."""

    trial: TrialOutcome
    epochs: int        # the retrain's
    own_epochs: int    # the configuration's; more than `epochs` when the budget cut it
    retrain: int = 0   # the configuration's k-th model in this ensemble (its seed)

    @property
    def cut(self) -> bool:
        return self.epochs < self.own_epochs

    @property
    def filled(self) -> bool:
        """Trains more than its configuration's epochs: the budget set them, where the search cut all trials."""
        return self.epochs > self.own_epochs

    @property
    def rate(self) -> Rate:
        params, recorded = self.trial.params, self.trial.learning_rates or []
        if params.get("schedule") == "cosine":
            return Rate.OWN
        if params.get("anneal") and len(recorded) >= self.own_epochs:
            return Rate.REPLAYED
        return Rate.ANNEALED if self.epochs != self.own_epochs or params.get("anneal") else Rate.OWN


@dataclass(frozen=True)
class Choice:
    members: tuple[Member, ...]
    cores: int = 1                 # the final step's processes share this many
    passed_over: tuple[tuple[TrialOutcome, float], ...] = ()  # better trials, with their estimates
    asked: int = 1                 # final_models
    overrun: bool = False          # nothing fits the budget: the best is retrained as briefly as judged
    minutes: float | None = None   # the budget: final_minutes, or what `minutes` left
    best_value: TrialOutcome | None = None  # the best on validation, where tied augmented ones went before it
    include: str | None = None     # final_include: the enqueued configuration put right after the best

    @property
    def trial(self) -> TrialOutcome:
        """The best configuration among the members: the study's choice."""
        return self.members[0].trial

    @property
    def epochs(self) -> int:
        return self.members[0].epochs

    @property
    def processes(self) -> int:
        """Members trained at once, each in a process of its own: one per core, at most one per member."""
        return max(1, min(len(self.members), self.cores))

    @property
    def threads(self) -> int:
        return max(1, self.cores // self.processes)

    @classmethod
    def whole(cls, trial: TrialOutcome, trial_epochs: int | None = None, members: int = 1) -> Choice:
        """`trial` retrained `members` times for its configuration's own epochs, with no budget to fit."""
        own = own_epochs(trial, trial_epochs)
        return cls(tuple(Member(trial, own, own, k) for k in range(members)), asked=members)

    def note(self) -> str | None:
        notes, budget = [], f"the final step's {self.minutes:.1f} minutes" if self.minutes is not None else ""
        firsts = [m for m in self.members if m.retrain == 0]  # a configuration's other seeds train as it does
        if self.best_value is not None and self.best_value not in [m.trial for m in self.members]:
            notes.append(f"the final step leaves out trial {self.best_value.number}, the best on validation: "
                         "augmented configurations tied with it (within two standard errors) go first, as short "
                         "trials rank augmentation low")
        included = [m for m in self.members[1:] if _included(m.trial, self.include)]
        if included:
            times = f" {len(included)} times, each with its own seed," if len(included) > 1 else ""
            notes.append(f"the final step includes trial {included[0].trial.number} ('{included[0].trial.enqueued}', "
                         f"which the sweep file enqueues and names in final_include){times} whatever its short trial "
                         "scored: a benchmark measured it over a long retrain")
        if self.passed_over:
            skipped = ", ".join(f"trial {t.number} ({s / 60:.0f} min)" for t, s in self.passed_over)
            notes.append(f"the final step retrains trial {self.trial.number}, the best whose retrain fits "
                         f"{budget}; ranked ahead of it but estimated too long to retrain: {skipped}")
        for m in filter(lambda m: m.cut, firsts):
            notes.append(f"the final step retrains trial {m.trial.number} for {m.epochs} of its {m.own_epochs} "
                         f"epochs, as many as fit {budget}, its learning-rate schedule fitted to the {m.epochs}")
        for m in filter(lambda m: m.filled, firsts):
            rate = "its rate falling along a cosine" if m.rate is Rate.ANNEALED else "its schedule fitted"
            notes.append(f"the final step retrains trial {m.trial.number} for {m.epochs} epochs, as many as fit "
                         f"{budget}, {rate} to them: the search judged every configuration on its first "
                         f"{m.trial.epochs}, not on its own {m.own_epochs}")
        for m in filter(lambda m: m.rate is Rate.ANNEALED and m.epochs == m.own_epochs, firsts):
            notes.append(f"the final step anneals trial {m.trial.number}'s rate along a cosine over its {m.epochs} "
                         f"epochs: its trial trained {len(m.trial.learning_rates)}, too few to reach its annealing "
                         "on plateaus, which a retrain without validation images cannot do")
        if self.overrun:
            notes.append(f"no retrain is estimated to fit {budget}: the final step retrains trial "
                         f"{self.trial.number} for {self.epochs} epochs anyway, as many gradient steps as its trial "
                         "took (fewer would not be the configuration the search judged)")
        if len(self.members) < self.asked:
            notes.append(f"the final step trains {len(self.members)} of the {self.asked} models final_models "
                         f"asks for, as many whole retrains as fit {budget}")
        return "\n".join(notes) or None


def own_epochs(trial: TrialOutcome, trial_epochs: int | None) -> int:
    """The configuration's epochs: those it trained, or its own where the search cut them short."""
    planned = int(trial.params.get("epochs", trial.epochs))
    return planned if trial_epochs is not None and trial.epochs >= trial_epochs else trial.epochs


def epoch_seconds(trial: TrialOutcome, images: Images, final_threads: int) -> float:
    """A retrain's epoch, estimated from its trial: from the trial's last epoch of training alone
    where it recorded one; else (older studies) from its whole time, validation counted by cost."""
    faster = TWO_THREAD_SPEEDUP if trial.threads and final_threads > trial.threads else 1.0
    if trial.epoch_seconds > 0:
        return RETRAIN_SLOWDOWN * trial.epoch_seconds * images.final / images.trial / faster
    per_epoch = trial.seconds / max(1, trial.trained or trial.epochs)
    return per_epoch * images.per_trial_epoch() / faster


def distinct(completed: list[TrialOutcome]) -> list[TrialOutcome]:
    """The completed trials best first, one per configuration (the earliest of equal ones)."""
    ranked = sorted(completed, key=lambda t: (-(t.value or 0.0), t.number))
    seen: set[str] = set()
    unique = []
    for trial in ranked:
        key = json.dumps(trial.params, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append(trial)
    return unique


def augmented_first(ranked: list[TrialOutcome], validation: int) -> list[TrialOutcome]:
    """`ranked` with the trials tied with its best on `validation` images reordered, augmented
    configurations first (the sort is stable: otherwise as ranked)."""
    tied = len([t for t in ranked if _tied(t, ranked[0], validation)]) if ranked else 0
    return sorted(ranked[:tied], key=lambda t: not t.params.get("augment")) + ranked[tied:]


def included_next(ranked: list[TrialOutcome], include: str | None, copies: int = 1) -> list[TrialOutcome]:
    """`ranked` with the enqueued configuration named `include` moved right after its best, `copies`
    times (each a member of its own, with its own seed)."""
    picked = [t for t in ranked[1:] if _included(t, include)]
    return ranked[:1] + picked * copies + [t for t in ranked[1:] if t not in picked]


def _included(trial: TrialOutcome, include: str | None) -> bool:
    """`trial` ran the enqueued configuration final_include names."""
    return include is not None and trial.enqueued == include


def _tied(trial: TrialOutcome, best: TrialOutcome, validation: int) -> bool:
    """Within TIE_STANDARD_ERRORS of the best's accuracy on `validation` images (none: no ties)."""
    if validation <= 0 or best.value is None:
        return trial is best
    error = math.sqrt(best.value * (1 - best.value) / validation)
    return (trial.value or 0.0) >= best.value - TIE_STANDARD_ERRORS * error


def ensemble_members(ranked: list[TrialOutcome], count: int, trial_epochs: int | None) -> tuple[Member, ...]:
    """The `count` best distinct configurations for their own epochs; the best again where too few."""
    picked = [ranked[k % len(ranked)] for k in range(count)]
    return _numbered([Member(t, own_epochs(t, trial_epochs), own_epochs(t, trial_epochs)) for t in picked])


def _numbered(members: list[Member]) -> tuple[Member, ...]:
    """`members` with each trial's retrains numbered in order, 0 for its first: each its own seed."""
    seen: dict[int, int] = {}
    numbered = []
    for m in members:
        numbered.append(replace(m, retrain=seen.get(m.trial.number, 0)))
        seen[m.trial.number] = numbered[-1].retrain + 1
    return tuple(numbered)


def wall_seconds(members: tuple[Member, ...], cores: int, images: Images) -> float:
    """The estimated wall time of training `members`, one process per core, each taking the next in turn."""
    processes = max(1, min(len(members), cores))
    threads = max(1, cores // processes)
    free = [0.0] * processes
    for m in members:
        slot = free.index(min(free))
        free[slot] += m.epochs * epoch_seconds(m.trial, images, threads)
    return max(free)


def choose(completed: list[TrialOutcome], limit_minutes: float | None, images: Images, cores: int,
           members: int = 1, trial_epochs: int | None = None, include: str | None = None,
           include_models: int = 1) -> Choice:
    """Up to `members` retrains of the best distinct configurations that fit `limit_minutes`, the
    enqueued one `include` names next after the best, as `include_models` of them (at most all but
    the best); failing two, the best single configuration whose retrain fits, shortened to fit if
    need be."""
    # Ties go to augmented configurations only where trials were cut short (the reason they rank low).
    by_value = distinct(completed)
    searched = augmented_first(by_value, images.validation) if trial_epochs is not None else by_value
    ranked = included_next(searched, include, max(1, min(include_models, members - 1)))
    best_value = by_value[0] if searched[0] is not by_value[0] else None  # only where the tie moved it
    if limit_minutes is None:
        return Choice(ensemble_members(ranked, members, trial_epochs), cores, asked=members, best_value=best_value,
                      include=include)
    for count in range(members, 1, -1):
        team = _team(ranked, count, 60 * limit_minutes, images, cores, trial_epochs)
        if team is not None:
            return replace(_searched_first(team, include), asked=members, minutes=limit_minutes,
                           best_value=best_value, include=include)
    # A single model is the search's choice alone: the best that fits.
    return replace(_single(searched, limit_minutes, images, cores, members, trial_epochs), minutes=limit_minutes,
                   best_value=best_value, include=include)


def _searched_first(team: Choice, include: str | None) -> Choice:
    """`team` led by its best searched member, the study's choice (where the best was passed over,
    the included configuration would otherwise lead it)."""
    searched = [m for m in team.members if not _included(m.trial, include)]
    if not searched or searched[0] is team.members[0]:
        return team
    return replace(team, members=(searched[0], *(m for m in team.members if m is not searched[0])))


def _epochs(fits: int, own: int, trial_epochs: int | None) -> int:
    """A member's epochs under a budget: its own, cut to what fits; where every trial was cut at
    trial_epochs (its own never tried), as many as fit, up to MOST_FILLED_EPOCHS."""
    return min(fits, max(own, MOST_FILLED_EPOCHS)) if _untried(own, trial_epochs) else min(fits, own)


def _untried(own: int, trial_epochs: int | None) -> bool:
    """The configuration's own epochs were never tried: every trial was cut at fewer."""
    return trial_epochs is not None and own > trial_epochs


def _team(ranked: list[TrialOutcome], count: int, seconds: float, images: Images, cores: int,
          trial_epochs: int | None) -> Choice | None:
    """`count` members that fit `seconds`: the best configurations that fit their share of a core
    (cut to fit, never below the epochs their trial trained: the search judged them on those), the
    best again with other seeds where too few. More members than cores take turns, a core each
    (each core's share of `seconds` split evenly between its turns); where the search judged every
    configuration on its own epochs, only as whole retrains of the best distinct configurations."""
    if count > cores and trial_epochs is None:
        team = ensemble_members(ranked, count, trial_epochs)
        return Choice(team, cores) if wall_seconds(team, cores, images) <= seconds else None
    share, threads = seconds / math.ceil(count / cores), max(1, cores // count)
    fitting, passed = [], []
    for trial in ranked:
        own = own_epochs(trial, trial_epochs)
        per_epoch = epoch_seconds(trial, images, threads)
        if (fits := _fitting(share, per_epoch, own)) >= _least_epochs(trial, own, trial_epochs):
            fitting.append(Member(trial, _epochs(fits, own, trial_epochs), own))
        elif not fitting:  # only the better ones passed over are worth a note
            passed.append((trial, per_epoch * own))
        if len(fitting) == count:
            break
    if not fitting or (len(fitting) < count and passed):  # better ones do not fit: no team of the rest
        return None
    again = (fitting * count)[:count - len(fitting)]  # the best again, with other seeds, where too few
    return Choice(_numbered(fitting + again), cores, tuple(passed))


def _least_epochs(trial: TrialOutcome, own: int, trial_epochs: int | None) -> int:
    """The fewest epochs a member may train: those its trial was judged on; where its own were never
    tried, at least MIN_MEMBER_EPOCHS (a decaying schedule needs that many to pay)."""
    judged = min(own, max(1, trial.epochs))
    return max(judged, MIN_MEMBER_EPOCHS) if _untried(own, trial_epochs) else judged


def _single(ranked: list[TrialOutcome], limit_minutes: float, images: Images, cores: int, members: int,
            trial_epochs: int | None) -> Choice:
    """The best configuration whose retrain fits, on all cores: whole (or filled), else cut to what fits."""
    passed: list[tuple[TrialOutcome, float]] = []
    for trial in ranked:
        own = own_epochs(trial, trial_epochs)
        per_epoch = epoch_seconds(trial, images, cores)
        fits = _fitting(60 * limit_minutes, per_epoch, own)
        if fits >= own or fits >= max(1, math.ceil(trial.epochs * images.trial / images.final)):  # its trial's steps
            return Choice((Member(trial, _epochs(fits, own, trial_epochs), own),), cores, tuple(passed), members)
        passed.append((trial, per_epoch * own))
    # None fits: the best, for as few epochs as its trial's judgement allows (as many gradient steps
    # as its trial took), and the note names the overrun.
    best, own = ranked[0], own_epochs(ranked[0], trial_epochs)
    least = min(own, max(1, math.ceil(best.epochs * images.trial / images.final)))
    return Choice((Member(best, least, own),), cores, asked=members, overrun=True)


def _fitting(seconds: float, per_epoch: float, own: int) -> int:
    """Epochs that fit `seconds`; all its own where the trial recorded no time (older studies)."""
    return int(seconds // per_epoch) if per_epoch > 0 else own


def study_images(recorded: StudySettings, train_images: int, final_images: int) -> Images:
    """A study's Images: each trial trained on its trial_images or train_limit, else the training
    images less the validation split, and validated on that split."""
    validation = recorded.validation_size
    assert validation is not None, "every version's record holds validation_size (0.1.0's did)"
    limits = [n for n in (recorded.trial_images, recorded.train_limit) if n is not None]
    return Images(min([*limits, train_images - validation]), final_images, validation)


def final_minutes(settings: Settings, started: float) -> float | None:
    """The final step's budget: final_minutes, or what the command's `minutes` leaves after the
    search (begun at `started`, seconds since the epoch) and the reserve, whichever is less."""
    limits = [] if settings.final_minutes is None else [settings.final_minutes]
    if settings.minutes is not None:
        limits.append(max(0.0, settings.minutes * (1 - RESERVE_SHARE) - seconds_since(started) / 60))
    return min(limits, default=None)


def choose_for_study(study: Study, settings: Settings, train_images: int, started: float) -> Choice:
    """What the final step retrains: the best distinct configurations, as many as final_models asks
    and the budget fits, each for its own epochs where they fit (filled where never tried)."""
    recorded = study.record().settings
    completed = [o for o in study.outcomes() if o.outcome == Outcome.COMPLETED]
    if not completed:  # the engine's UserError that there is none yet, where it knows none
        return Choice.whole(study.best(), members=settings.final_models)
    images = study_images(recorded, train_images, min(settings.train_limit or train_images, train_images))
    choice = choose(completed, final_minutes(settings, started), images, os.cpu_count() or 1,
                    settings.final_models, recorded.trial_epochs, recorded.final_include,
                    recorded.final_include_models or 1)
    if choice.note():
        print(choice.note())
    return choice
