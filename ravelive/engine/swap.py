"""Changing what plays — another model file, a reload, another method — without stopping the stream.

Every change goes through one `ModelSwapper`, one at a time, on its own
thread: load, warm up off the audio path, and only then declare the new
model's parameters in the store and crossfade to it. A change that fails
leaves everything as it was (the old model plays, the store declares the old
parameters and holds the running method), so what clients read is what
plays.

The store's `method` value is the wish; the swapper makes it true. Any write
of `method` (an OSC client, a preset, MIDI) that differs from the running
method queues a switch, evaluated when its turn comes: a method written while
another model is loading switches the new model, not the old file, and a
burst of writes plays the last one only.

Attribute values survive too: each new processor applies the store's values
to its fresh model before its first block (see AttributeApplier).

Loading costs the GIL: torch's import of a TorchScript archive holds it for
its whole run (about 60 ms for the bundled model, 160-280 ms for a 33 M
parameter RAVE-v2-sized one, measured here), and the model worker is a Python
thread, so a load longer than the latency margin shows as counted late
blocks (the C callback plays the fallback; the stream and its latency are
unaffected). `preload` loads files before the stream starts: swapping to a
preloaded model (a model that is not playing) then loads nothing. A reload
and a method switch re-read the playing file, so they still pay the load.
"""

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ravelive.control.model_params import ControlSnapshot, ModelControls
from ravelive.control.params import Change, ParameterStore
from ravelive.engine.realtime import Processor, Realtime
from ravelive.engine.stream import LatentSink, StreamEngine
from ravelive.engine.warmup import compute_p99, warm_up
from ravelive.errors import ConfigError, RaveliveError
from ravelive.models.nn_model import NNModel

log = logging.getLogger(__name__)

CROSSFADE_SECONDS = 0.05  # old and new model overlap this long
STOP_SECONDS = 30.0  # how long stop() waits for a swap in progress (a big model's load and warm-up)

Done = Callable[[str | None], None]  # called with None on success, else the one-line error


@dataclass(frozen=True)
class EngineSettings:
    """What every engine of one server shares, whatever the model."""

    sample_rate: int  # stream rate
    channels: int  # stream channels in and out (the device's)
    period: int  # frames per audio callback (warm-up pushes)
    block: int | None  # model block; None: the smallest legal one for each model
    resample_quality: str
    prior: Path | None = None  # serve --prior: a prior file played into the decode of each model it fits (else a
    # model's own trained prior plays, when it has one)


@dataclass(frozen=True)
class Playing:
    """One prepared model: warmed up, with its engine, processor and parameter declarations."""

    path: Path
    model: NNModel
    method: str
    engine: StreamEngine
    processor: Processor
    controls: ModelControls
    p99: float  # warm-up compute seconds per model block (99th percentile, stalls aside: warmup.compute_p99)


MakeProcessor = Callable[[StreamEngine, ModelControls], Processor]
Admit = Callable[[NNModel, str], None]  # raises RaveliveError when that model and method may not play


class ModelSwapper:
    """Prepares models and swaps them in, one at a time; see the module docstring."""

    def __init__(self, settings: EngineSettings, store: ParameterStore[ControlSnapshot], make_processor: MakeProcessor,
                 admit: Admit | None = None):
        self.settings = settings
        self.store = store
        self.playing: Playing | None = None
        self._make_processor = make_processor
        self._admit = admit
        self._realtime: Realtime | None = None
        self._latent_sink: LatentSink | None = None
        self._preloaded: dict[Path, NNModel] = {}  # by resolved path: loaded, not playing, ready to swap to
        self._returning: Playing | None = None  # swapped out and preloaded: back to the pool once its fade is over
        self._preloadable: set[Path] = set()  # every preloaded file, playing or not
        self._lock = threading.Lock()  # one prepare-and-swap at a time
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        store.add_listener(self._on_change)

    def prepare(self, source: Path | NNModel, method: str | None = None) -> Playing:
        """Load `source` (unless already loaded) and warm it up on a throwaway engine; nothing changes yet.

        `method` None keeps the store's method when the model has it, else the model's default.
        """
        model = source if isinstance(source, NNModel) else NNModel.load(source)
        if method is None and self.store.specs.get("method") and self.store.get("method") in model.methods:
            method = self.store.get("method")
        s = self.settings
        probe = StreamEngine(model, method, s.block, s.sample_rate, s.channels)  # refuses a bad method or block
        if self._admit is not None:
            self._admit(model, probe.method)

        def engine(prior: NNModel | None = None) -> StreamEngine:
            return StreamEngine(model, probe.method, s.block, s.sample_rate, s.channels, s.channels, s.resample_quality,
                                prior)

        paced = self.playing is not None  # beside a playing stream: at most a quarter of a core (warmup.SWAP_REST)
        warm = engine()
        times = warm_up(warm, s.period, paced)
        if warm.latent_dims:  # OSC's latent feed and latent edits run encode -> decode: warm those methods too
            warm.latent_sink = _discard_latent
            times += warm_up(warm, s.period, paced)
        live = engine(self._prior_for(model))
        live.warm_prior()
        live.latent_sink = self._latent_sink
        controls = ModelControls.from_model(model, method=probe.method, prior=live.prior is not None)
        block_seconds = live.block / live.model_rate
        p99 = compute_p99(times, block_seconds)
        log.info("warm-up: %d blocks, compute median %.2f ms, p99 %.2f ms per %.2f ms block",
                 len(times), 1000 * np.median(times), 1000 * p99, 1000 * block_seconds)
        return Playing(Path(model.path), model, probe.method, live, self._make_processor(live, controls), controls,
                       p99)

    def _prior_for(self, model: NNModel) -> NNModel | None:
        """The prior `model` plays: the --prior file loaded afresh for it (a stream state of its own), else
        the model itself when its `prior` method is a trained prior (`ravelive export --prior`), else None.

        A --prior file for another model refuses the first model (serve stops, one line); a later model plays
        without it (or with its own trained prior), with a warning, so a swap to a model of another latent
        size still works.
        """
        from ravelive.generation.prior_file import has_trained_prior, open_prior

        if self.settings.prior is not None:
            try:
                return open_prior(self.settings.prior, model)
            except ConfigError as error:
                if self.playing is None:
                    raise
                log.warning("%s; %s plays without that prior", error, model.path.name)
        return model if has_trained_prior(model) else None

    def preload(self, paths: list[Path]) -> None:
        """Load these files now (before the stream starts), so that swapping to them later loads nothing."""
        playing = self.playing.path.resolve() if self.playing is not None else None
        for path in paths:
            if path.resolve() != playing:
                self._preloaded[path.resolve()] = NNModel.load(path)
        self._preloadable = {path.resolve() for path in paths}

    @property
    def preloaded(self) -> int:
        """Models loaded and ready to swap to."""
        return len(self._preloaded) + (self._returning is not None)

    def attach(self, realtime: Realtime, playing: Playing) -> None:
        """`playing` is what `realtime` plays now (the first model); swaps go to `realtime` from here on."""
        self._realtime = realtime
        self.playing = playing
        self._thread = threading.Thread(target=self._serve_requests, name="ravelive-swap", daemon=True)
        self._thread.start()

    def set_latent_sink(self, sink: LatentSink | None) -> None:
        """Hand the latent frames of the playing engine (and of every later one) to `sink`; None: stop."""
        self._latent_sink = sink
        if self.playing is not None:
            self.playing.engine.latent_sink = sink

    # -- swapping --------------------------------------------------------------------------

    def swap(self, source: Path | str | NNModel | None = None, method: str | None = None) -> None:
        """Prepare `source` (None: the playing file again), then make it play; RaveliveError if it cannot.

        Only after the new model has warmed up are its parameters declared in the store (values that
        still fit are kept) and the crossfade begun: a failure anywhere before leaves everything as it was.
        """
        with self._lock:
            self._take_back_returning()
            if source is None:
                source = self.playing.path  # re-read: the file may have changed (an export)
            elif not isinstance(source, NNModel):
                source = self._preloaded.pop(Path(source).resolve(), None) or Path(source)
            try:
                new = self.prepare(source, method)
            except RaveliveError:
                if isinstance(source, NNModel) and source.path.resolve() in self._preloadable:
                    self._preloaded[source.path.resolve()] = source  # unharmed: the warm-up ran on its own engine
                raise
            new.controls.install(self.store)
            gc.freeze()  # the new model's objects too: a full collection of them would hold the GIL ~100 ms
            self._warn_if_over_budget(new.p99)
            s = self.settings
            self._realtime.swap(new.processor, int(CROSSFADE_SECONDS * s.sample_rate),
                                block=new.engine.block * s.sample_rate // new.engine.model_rate)
            old, self.playing = self.playing, new
            if old.path.resolve() in self._preloadable:
                self._returning = old

    def _take_back_returning(self) -> None:
        """The swapped-out preloaded model rejoins the pool once the crossfade no longer calls it."""
        if self._returning is None:
            return
        while self._realtime.swapping:
            time.sleep(CROSSFADE_SECONDS / 4)
        if self._returning.path.resolve() != self.playing.path.resolve():
            self._preloaded[self._returning.path.resolve()] = self._returning.model
        self._returning = None

    def request(self, source: Path | str | None = None, method: str | None = None, done: Done | None = None) -> None:
        """`swap` in the background, after the changes already asked for; `done(None)` or `done(message)`."""
        self._requests.put((source, method, done))

    def stop(self) -> None:
        """Finish the swap in progress (bounded), drop the queued ones."""
        if self._thread is None:
            return
        self._requests.put(None)
        self._thread.join(STOP_SECONDS)
        self._thread = None

    def _on_change(self, change: Change) -> None:  # the store's listener: on the writing thread, under its lock
        if change.name == "method" and self.playing is not None and change.value != self.playing.method:
            self._requests.put(_FOLLOW_METHOD)

    def _serve_requests(self) -> None:
        while (item := self._requests.get()) is not None:
            if item is _FOLLOW_METHOD:
                self._follow_method()
                continue
            source, method, done = item
            message = self._attempt(lambda: self.swap(source, method), source or self.playing.path)
            if done is not None:
                done(message)

    def _follow_method(self) -> None:
        """Play the store's method if it is not the playing one (several writes since: the last one)."""
        wanted = self.store.get("method")
        if wanted == self.playing.method:
            return
        if self._attempt(lambda: self.swap(None, wanted), self.playing.path) is not None:
            self.store.set("method", self.playing.method)  # clients see what actually plays

    def _attempt(self, action: Callable[[], None], path) -> str | None:
        try:
            action()
        except RaveliveError as error:
            log.error("%s", error)
            return str(error)
        except Exception as error:  # noqa: BLE001 - the caller (an OSC client) must get an answer, the audio goes on
            log.exception("loading %s failed", path)
            return f"{path}: loading failed ({type(error).__name__}: {error}); check the file with `ravelive info`"
        return None

    def _warn_if_over_budget(self, p99: float) -> None:
        budget = self._realtime.margin / self.settings.sample_rate  # see margin_from_compute
        if p99 > budget:
            log.warning("the new model needs %.1f ms per block (p99), more than the %.1f ms margin: "
                        "expect late blocks; restart with a larger --latency-margin", 1000 * p99, 1000 * budget)


_FOLLOW_METHOD = object()  # queued when the store's method differs from the playing one


def _discard_latent(frames: np.ndarray) -> None:
    """The warm-up's latent sink: the frames go nowhere."""
