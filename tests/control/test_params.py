"""ParameterSpec validation and ParameterStore snapshots, listeners and redeclaration."""

import threading

import pytest

from ravelive.control.params import ParameterSpec, ParameterStore, ParameterType
from ravelive.errors import ParameterError

BIAS = ParameterSpec("latent/3/bias", ParameterType.FLOAT, 0.0, "bias", -5.0, 5.0)
STEPS = ParameterSpec("steps", ParameterType.INT, 4, "steps", 0, 16)
FREEZE = ParameterSpec("freeze", ParameterType.BOOL, False, "freeze")
METHOD = ParameterSpec("method", ParameterType.STRING, "forward", "method", choices=("forward", "encode"))


@pytest.mark.parametrize(
    "spec, sent, stored",
    [(BIAS, 2, 2.0), (BIAS, -5.0, -5.0), (STEPS, 3.0, 3), (STEPS, 2.6, 3), (FREEZE, True, True),
     (FREEZE, 0, False), (FREEZE, 1.0, True), (METHOD, "encode", "encode")],
)
def test_accepted_values_are_converted(spec, sent, stored):
    value = spec.coerce(sent)
    assert value == stored and type(value) is type(stored)


@pytest.mark.parametrize(
    "spec, sent, message",
    [(BIAS, 9.0, r"latent/3/bias: 9\.0 is out of range \[-5, 5\]"),
     (BIAS, "x", r"latent/3/bias: 'x' is of type str; send a number in \[-5, 5\]"),
     (BIAS, True, r"is a bool; send a number"),
     (BIAS, float("nan"), r"is not finite"),
     (STEPS, 17, r"steps: 17 is out of range \[0, 16\]"),
     (FREEZE, 2, r"freeze: 2 is not a bool; send T/F, 0 or 1"),
     (METHOD, "decode", r"method: 'decode' is not one of forward, encode"),
     (METHOD, 1.0, r"method: 1\.0 is not text")],
)
def test_refused_values_name_value_range_and_fix(spec, sent, message):
    with pytest.raises(ParameterError, match=message):
        spec.coerce(sent)


def test_snapshot_is_replaced_whole_on_each_write():
    store = ParameterStore([BIAS, FREEZE])
    before = store.snapshot()
    store.set("latent/3/bias", 1.5)
    assert before["latent/3/bias"] == 0.0
    assert store.snapshot()["latent/3/bias"] == 1.5
    with pytest.raises(TypeError):
        store.snapshot()["freeze"] = True  # read-only view


def test_update_is_all_or_nothing():
    store = ParameterStore([BIAS, FREEZE])
    with pytest.raises(ParameterError, match="out of range"):
        store.update({"freeze": True, "latent/3/bias": 7.0})
    assert store.values() == {"latent/3/bias": 0.0, "freeze": False}


def test_unknown_name_suggests_close_names():
    store = ParameterStore([BIAS])
    with pytest.raises(ParameterError, match=r"latent/3/bais: no such parameter; did you mean latent/3/bias"):
        store.set("latent/3/bais", 1.0)


def test_listeners_hear_source_and_adjustment():
    store = ParameterStore([STEPS])
    heard = []
    store.add_listener(heard.append)
    store.set("steps", 3, source="a")
    store.set("steps", 2.6, source="b")
    assert [(c.value, c.source, c.adjusted) for c in heard] == [(3, "a", False), (3, "b", True)]


def test_redeclare_keeps_values_that_still_fit():
    store = ParameterStore([BIAS, STEPS])
    store.update({"latent/3/bias": 4.0, "steps": 12})
    narrower = ParameterSpec("steps", ParameterType.INT, 1, "steps", 0, 8)
    store.redeclare([BIAS, narrower, FREEZE])
    assert store.values() == {"latent/3/bias": 4.0, "steps": 1, "freeze": False}


def test_duplicate_declarations_are_refused():
    with pytest.raises(ParameterError, match="declared twice: freeze"):
        ParameterStore([FREEZE, FREEZE])


def test_concurrent_writers_leave_a_consistent_snapshot():
    specs = [ParameterSpec(f"p{i}", ParameterType.FLOAT, 0.0, "p", -1e6, 1e6) for i in range(4)]
    store = ParameterStore(specs, derive=lambda values: dict(values))

    def write(name):
        for value in range(2000):
            store.set(name, float(value))

    threads = [threading.Thread(target=write, args=(spec.name,)) for spec in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.snapshot() == {spec.name: 1999.0 for spec in specs}


def test_a_check_sees_every_value_after_the_write_and_refuses_it_whole():
    seen = []

    def check(values, changed):
        seen.append((dict(values), changed))
        if values["method"] == "encode" and not values["freeze"]:
            raise ParameterError("method: encode needs freeze")

    store = ParameterStore([METHOD, FREEZE, STEPS], check=check)
    heard = []
    store.add_listener(heard.append)
    with pytest.raises(ParameterError, match="encode needs freeze"):
        store.update({"method": "encode", "steps": 8})
    assert store.values() == {"method": "forward", "freeze": False, "steps": 4} and heard == []  # nothing stored
    assert seen[-1] == ({"method": "encode", "freeze": False, "steps": 8}, frozenset({"method", "steps"}))
    store.update({"method": "encode", "freeze": True})
    assert store.get("method") == "encode"
