"""What a client knows of a room, built from the frames it received the way a real client does.

A full snapshot (``welcome`` with ``resumed: false``) replaces everything; a resume keeps the
state and demands that the replay start right after the client's last event. Every room event
must then come with the next seq: a gap or a repeat fails the test on the spot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Frame = dict[str, Any]


class RoomView:
    """Room state of one client across its connections."""

    def __init__(self) -> None:
        self.epoch: str | None = None
        self.seq = 0
        #: stream id -> the reply's text as this client has it
        self.texts: dict[str, str] = {}
        #: stream id -> its stream_end
        self.ends: dict[str, Frame] = {}
        #: every room event applied since the last snapshot, in order
        self.events: list[Frame] = []
        self.snapshots = 0
        self.resumes = 0

    @property
    def since(self) -> Frame:
        """The ``hello.since`` to resume from."""
        return {"epoch": self.epoch, "seq": self.seq}

    def apply(self, frames: Iterable[Frame]) -> None:
        for frame in frames:
            if frame["type"] == "welcome":
                self._welcome(frame)
            elif "seq" in frame:
                self._event(frame)

    def _welcome(self, welcome: Frame) -> None:
        if welcome["resumed"]:
            assert welcome["epoch"] == self.epoch, "resumed into another epoch"
            assert welcome["seq"] >= self.seq
            self.resumes += 1
            return
        self.snapshots += 1
        self.epoch = welcome["epoch"]
        self.seq = welcome["seq"]
        self.texts = {m["stream"]: m["text"] for m in welcome["messages"] if m.get("stream")}
        self.texts.update({s["stream"]: s["text"] for s in welcome["streams"]})
        self.ends = {}
        self.events = []

    def _event(self, event: Frame) -> None:
        assert event["seq"] == self.seq + 1, f"expected seq {self.seq + 1}, got {event['seq']}"
        self.seq = event["seq"]
        self.events.append(event)
        kind = event["type"]
        if kind == "stream_start":
            self.texts.setdefault(event["stream"], "")
        elif kind == "token":
            self.texts[event["stream"]] = self.texts.get(event["stream"], "") + event["text"]
        elif kind == "stream_end":
            self.ends[event["stream"]] = event
