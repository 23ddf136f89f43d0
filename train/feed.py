"""Batches on the training device a few steps ahead of the step that uses them.

The loader's thread makes and pins each batch (page-locked memory, so the copy is a
real asynchronous DMA); here each one is copied on a side CUDA stream as soon as it
arrives, ``ahead`` batches before compute needs it, and the step's stream waits on
that copy's event. The loader's position follows the batches handed to the step, not
the ones made ahead, so a checkpoint still resumes at the very next batch. On a CPU
it hands the loader's batches through.
"""

from __future__ import annotations

from collections import deque

import torch

from webmill.train.loader import PackedLoader


class DeviceFeed:
    def __init__(self, loader: PackedLoader, device: torch.device, ahead: int = 3):
        self.loader, self.device = loader, device
        self.cuda = device.type == "cuda"
        self.ahead = ahead if self.cuda else 1  # a CPU step takes the loader's next batch when it needs it
        self._batches = loader.iter_states(pin_memory=self.cuda)
        self._stream = torch.cuda.Stream(device) if self.cuda else None
        self._ready: deque = deque()

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        self._fill()
        if not self._ready:
            raise StopIteration
        batch, host, event, state = self._ready.popleft()
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            batch.record_stream(current)  # the allocator must not reuse it before the step is done
        self.loader.set_position(state)
        if self.cuda:
            self._fill()  # the next copy starts before this step is queued
        del host
        return batch

    def _fill(self) -> None:
        while len(self._ready) < self.ahead:
            try:
                host, state = next(self._batches)
            except StopIteration:
                return
            if not self.cuda:
                self._ready.append((host, None, None, state))
                continue
            with torch.cuda.stream(self._stream):
                batch = host.to(self.device, non_blocking=True)
                event = torch.cuda.Event()
                event.record(self._stream)
            self._ready.append((batch, host, event, state))  # host kept alive until its copy is done

    def close(self) -> None:
        self._batches.close()
