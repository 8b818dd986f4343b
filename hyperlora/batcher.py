"""One worker thread that owns the base model and decodes queued requests in batches, a LoRA per row.

Request threads ``submit`` a ``Request`` and block until its ``Reply``. The worker takes up to ``max_batch`` requests
(while more keep arriving less than ``batch_wait`` seconds apart), decodes them with one ``hyperlora.decode.decode``
call and answers each. Only this thread runs the model: per-example LoRA wraps its
layers in place for the length of a batch.
"""

import dataclasses
import math
import queue
import random
import sys
import threading
import time
import traceback
from concurrent.futures import Future

from .decode import Row, decode

_BASE_ROW = "<base>"  # an adapter with no modules: zeros in every LoRA slot


class Unavailable(Exception):
    """The request was not taken (the queue is full, or the batcher is stopping); retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class DecodeError(Exception):
    """Decoding the request's batch failed; the traceback is already on stderr."""


@dataclasses.dataclass
class Request:
    """One sequence to decode.

    Args:
        ids: prompt token ids (the chat up to the assistant's turn).
        adapter: ``(key, factors)`` with factors from ``hyperlora.decode.lora_factors``, or None for the base model;
            one key, one set of factors.
        max_new: reply length cap.
        temperature: None decodes greedily; a number samples at that temperature.
        seed: the sampling generator's seed (None: a random one).
    """

    ids: list
    adapter: tuple | None = None
    max_new: int = 128
    temperature: float | None = None
    seed: int | None = None
    future: Future = dataclasses.field(default_factory=Future, repr=False)


@dataclasses.dataclass
class Reply:
    tokens: list  # generated ids, the end-of-sequence token excluded
    finish_reason: str  # "stop" (end of sequence) or "length" (max_new reached)
    batch_size: int  # requests decoded together, this one included


class Batcher:
    """The decoding worker.

    Args:
        model: the base model; nothing else may run it while the batcher is started.
        eos_ids: token ids that end a reply.
        pad_id: padding id.
        max_batch: most requests decoded together.
        max_queue: most requests waiting; ``submit`` raises ``Unavailable`` beyond it.
        batch_wait: seconds without a new request that close a batch that is not full.
    """

    def __init__(self, model, eos_ids, pad_id: int, max_batch: int = 8, max_queue: int = 32,
                 batch_wait: float = 0.005):
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self.model, self.eos_ids, self.pad_id = model, set(eos_ids), pad_id
        self.max_batch, self.batch_wait = max_batch, batch_wait
        self._queue: queue.Queue[Request] = queue.Queue(max_queue)
        self._stop = threading.Event()
        self._thread = None
        self._last_batch_s = 1.0

    def start(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._work, name="hyperlora-decode", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None):
        """Finish the batch in hand, then stop; requests still queued get ``Unavailable``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                break
            if request.future.set_running_or_notify_cancel():
                request.future.set_exception(Unavailable("the server is stopping", 1))

    def pending(self) -> int:
        return self._queue.qsize()

    def submit(self, request: Request, timeout: float) -> Reply:
        """Queue ``request`` and wait for its reply.

        Raises:
            Unavailable: the queue is full or the batcher is stopping.
            TimeoutError: no reply within ``timeout`` seconds (the request is dropped if not started yet).
            DecodeError: its batch failed.
        """
        if self._stop.is_set():
            raise Unavailable("the server is stopping", 1)
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            # Roughly when the queue will have room: the batches ahead, at the last batch's pace.
            wait = max(1, math.ceil(self._last_batch_s * self._queue.maxsize / self.max_batch))
            raise Unavailable(f"the server is busy ({self._queue.maxsize} requests waiting); retry in {wait} s",
                              wait) from None
        try:
            return request.future.result(timeout=timeout)
        except TimeoutError:
            request.future.cancel()  # the worker skips it if it has not started it
            raise

    def _work(self):
        while not self._stop.is_set():
            try:
                batch = [self._queue.get(timeout=0.1)]
            except queue.Empty:
                continue
            # A burst keeps the batch open: it closes when full or after a gap of batch_wait with no arrival, so
            # the wait is at most max_batch · batch_wait.
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get(timeout=self.batch_wait))
                except queue.Empty:
                    break
            batch = [r for r in batch if r.future.set_running_or_notify_cancel()]  # timed-out ones are dropped
            if not batch:
                continue
            start = time.perf_counter()
            try:
                replies = self._decode(batch)
            except Exception as e:  # answer every waiting request, log the cause once, keep serving
                print(f"hyperlora: decoding a batch of {len(batch)} failed:", file=sys.stderr)
                traceback.print_exc()
                lines = str(e).strip().splitlines()
                for request in batch:
                    request.future.set_exception(DecodeError(f"decoding failed: {type(e).__name__}: "
                                                             f"{lines[0] if lines else ''}"))
                continue
            self._last_batch_s = time.perf_counter() - start
            for request, reply in zip(batch, replies):
                request.future.set_result(reply)

    def _decode(self, batch: list[Request]) -> list[Reply]:
        mixed = any(r.adapter is not None for r in batch)
        tables, rows = {}, []
        for r in batch:
            key = None
            if r.adapter is not None:
                key, tables[key] = r.adapter
            elif mixed:  # a base row joins the LoRA rows' batch instead of taking a decoding pass of its own
                key, tables[key] = _BASE_ROW, {}
            seed = None if r.temperature is None else r.seed if r.seed is not None else random.getrandbits(63)
            rows.append(Row(r.ids, adapter=key, seed=seed, max_new=r.max_new, temperature=r.temperature))
        outs = decode(self.model, rows, tables, eos_ids=self.eos_ids, pad_id=self.pad_id, batch_size=len(rows))
        return [Reply(out, "length" if len(out) >= r.max_new else "stop", len(batch)) for r, out in zip(batch, outs)]
