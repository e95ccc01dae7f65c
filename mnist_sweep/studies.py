"""What the steps after a search need from a study, whichever engine ran it.

The final step, the export and the report read a study through this small interface, so
an Optuna study and a Keras Tuner project go through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from mnist_sweep.config import Settings
from mnist_sweep.errors import UserError
from mnist_sweep.space import SearchSpace


# On the final run: its model's digit for each test image, the true digits, and the first
# misclassified images, so the report draws its test-set plots without reading the test set.
TEST_RESULTS = "test_results.npz"
GRID_IMAGES = 32


@dataclass(frozen=True)
class Best:
    """The best trial, as the final retrain needs it."""

    number: int
    value: float
    params: dict[str, Any]
    epochs: int                              # the epochs its model trained, replayed by the retrain
    learning_rates: list[float] | None = None  # its per-epoch rates, when it annealed


class Study(Protocol):
    name: str

    @property
    def attrs(self) -> dict[str, Any]:
        """What the sweep recorded: settings, space, data digest, parent run, final result."""

    def set_attr(self, key: str, value: Any) -> None: ...

    def best(self) -> Best:
        """The best finished trial; a UserError when there is none yet."""


def begin_or_resume(study: Study, space: SearchSpace, settings: Settings, checked: dict[str, Any],
                    noted: dict[str, Any]) -> None:
    """Record what a new study was made with; refuse to resume one made differently.

    Trials of one study must be comparable: same space, same split, same training images, and
    the engine settings in `checked` (Keras Tuner's oracle). `noted` is recorded, not checked.
    """
    protocol = {"seed": settings.seed, "validation_size": settings.validation_size,
                "train_limit": settings.train_limit, "trial_images": settings.trial_images, **checked}
    if "space_fingerprint" not in study.attrs:
        study.set_attr("space_fingerprint", space.fingerprint())
        study.set_attr("space", space.to_dict())
        study.set_attr("settings", {**protocol, **noted, "experiment": settings.experiment})
    if study.attrs["space_fingerprint"] != space.fingerprint():
        raise UserError(f"study '{study.name}' was made with another search space; "
                        "use a new --study-name or the original space and --max-epochs")
    recorded = study.attrs["settings"]
    for key, value in protocol.items():
        if recorded.get(key, value) != value:
            raise UserError(f"study '{study.name}' was run with {key}={recorded[key]}, not {value}; "
                            f"pass the same value or use a new --study-name")
