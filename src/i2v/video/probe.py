"""What an MP4 on disk actually is: size, rate, frame count, codec, layout."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int
    codec: str
    pix_fmt: str
    duration_s: float
    faststart: bool  # the index (moov) comes before the media (mdat): streams before it ends


def probe(path: str | Path) -> VideoInfo:
    """Read the first video stream's properties. Frames are counted from the container's
    sample table when it has one, otherwise by reading every packet."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = frames / fps if fps else 0.0
        return VideoInfo(
            width=context.width,
            height=context.height,
            fps=fps,
            frames=frames,
            codec=context.name,
            pix_fmt=context.pix_fmt or "",
            duration_s=duration,
            faststart=_moov_before_mdat(Path(path)),
        )


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (e.g. ftyp, moov, mdat)."""
    boxes: list[str] = []
    size_total = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset + 8 <= size_total:
            f.seek(offset)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:
                (size,) = struct.unpack(">Q", f.read(8))
            elif size == 0:
                size = size_total - offset
            if size < 8:
                break
            boxes.append(kind.decode("latin-1"))
            offset += size
    return boxes


def _moov_before_mdat(path: Path) -> bool:
    boxes = top_level_boxes(path)
    return "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")
