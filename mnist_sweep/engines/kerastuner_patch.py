"""A patch of Keras Tuner 1.4.8: its leftover debug print silenced, which a distributed search
would print at every gRPC call. Applied on import."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import keras_tuner as kt


def _without_print(to_proto: Any) -> Any:
    """Keras Tuner 1.4.8's `Parent.to_proto` prints the condition's first value (a leftover debug
    print), once per conditional parameter at every gRPC call of a distributed search."""
    def quiet(self: Any) -> Any:
        with contextlib.redirect_stdout(io.StringIO()):
            return to_proto(self)
    return quiet


def _condition_class() -> type:
    """The class of a conditional scope's condition, reached through public objects: Keras Tuner
    exports no name for it, and its private module path moved once already (1.4 put it under src)."""
    hp = kt.HyperParameters()
    hp.Fixed("parent", 0)
    with hp.conditional_scope("parent", [0]):
        hp.Fixed("child", 0)
    return type(hp.space[-1].conditions[0])


_Condition = _condition_class()
_Condition.to_proto = _without_print(_Condition.to_proto)
