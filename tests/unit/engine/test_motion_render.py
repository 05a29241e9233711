from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from i2v.cli.samples import sample_photo
from i2v.domain.errors import Cancelled, EngineError
from i2v.domain.request import GenerationRequest, PixelFormat, RGBImage
from i2v.engines.base import no_progress
from i2v.engines.motion import MotionEngine, frame_image
from i2v.video import encode
from i2v.video.frames import to_i420
from jobs import generation_request


def textured(width: int, height: int, seed: int = 0) -> RGBImage:
    """A photo-like test picture: smooth colour fields plus fine texture."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    base = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    noise = rng.normal(0, 40, (height, width)).astype(np.float32)
    fine = cv2.GaussianBlur(noise, (0, 0), 1.2)[..., None]
    return np.clip(base * 0.7 + fine + 40, 0, 255).astype(np.uint8)


def request(image: RGBImage, prompt: str, **kw: object) -> GenerationRequest:
    args: dict[str, object] = {"seed": 1, "frames": 25, "width": 320, "height": 180}
    args.update(kw)
    return generation_request(image, prompt=prompt, **args)


def rgb_engine(**options: object) -> MotionEngine:
    """The engine asked for RGB frames, which these tests inspect as pictures."""
    return MotionEngine({"pixel_format": "rgb24", **options})


def psnr(a: RGBImage, b: RGBImage) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def photo() -> RGBImage:
    return textured(800, 600)


@pytest.mark.parametrize(
    "prompt",
    [
        "push in",
        "pull back",
        "pan left",
        "pan right",
        "tilt up",
        "tilt down",
        "tracking shot right",
        "orbit left",
        "static",
        "a sleeping cat",
    ],
)
def test_every_move_starts_at_the_framed_input(photo: RGBImage, prompt: str) -> None:
    req = request(photo, prompt)
    frames = list(rgb_engine().render(req, no_progress))
    assert len(frames) == req.frames
    assert all(f.shape == (180, 320, 3) and f.dtype == np.uint8 for f in frames)
    assert psnr(frames[0], frame_image(photo, 320, 180)) >= 38
    if prompt != "static":
        assert psnr(frames[-1], frames[0]) < 30  # it did move


def test_camera_fixed_gives_a_still_video(photo: RGBImage) -> None:
    frames = list(
        rgb_engine().render(request(photo, "fast zoom in", camera_fixed=True), no_progress)
    )
    still = frame_image(photo, 320, 180)
    assert all(np.array_equal(f, still) for f in frames)


def test_pull_out_extends_the_picture_softly() -> None:
    flat = np.full((360, 640, 3), 200, np.uint8)
    frames = list(rgb_engine().render(request(flat, "fast pull out"), no_progress))
    # A bright photo stays bright to the corners: the extension is the mirrored photo,
    # not a black border.
    assert int(frames[-1].min()) >= 190


def test_progress_is_reported_per_frame(photo: RGBImage) -> None:
    calls: list[tuple[int, int, str]] = []
    list(MotionEngine().render(request(photo, "push in", frames=5), lambda *a: calls.append(a)))
    assert calls == [(i, 5, "rendering") for i in range(6)]


def test_cancel_from_the_progress_callback_stops_the_render(photo: RGBImage) -> None:
    def cancel_at_3(done: int, total: int, stage: str) -> None:
        if done == 3:
            raise Cancelled()

    rendered = []
    with pytest.raises(Cancelled):
        rendered.extend(MotionEngine().render(request(photo, "push in"), cancel_at_3))
    assert len(rendered) == 3


def test_bad_options_are_refused(photo: RGBImage) -> None:
    with pytest.raises(EngineError, match="easing"):
        MotionEngine({"easing": "bouncy"})
    with pytest.raises(EngineError, match="pixel_format: must be one of rgb24, yuv420p, got 'rgb'"):
        MotionEngine({"pixel_format": "rgb"})
    with pytest.raises(EngineError, match="width"):
        list(MotionEngine().render(request(photo, "push in", width=321), no_progress))


def blob_picture(width: int, height: int, sigma: float) -> RGBImage:
    """A dark picture with one soft bright blob in the middle, whose centroid we can track."""
    yy, xx = np.mgrid[0:height, 0:width]
    blob = 30 + 200 * np.exp(-((xx - width / 2) ** 2 + (yy - height / 2) ** 2) / (2 * sigma**2))
    return np.repeat(np.round(blob)[..., None], 3, axis=2).astype(np.uint8)


def centroids(frames: list[RGBImage], height: int) -> np.ndarray:
    """(x, y) of the blob in each frame (RGB: its green; I420: its Y plane), to a small
    fraction of a pixel."""
    out = []
    for frame in frames:
        f = frame[..., 1] if frame.ndim == 3 else frame[:height]
        weight = np.clip(f.astype(np.float64) - f.min(), 0, None)  # the flat dark background
        ys, xs = np.mgrid[0 : f.shape[0], 0 : f.shape[1]]
        out.append(((weight * xs).sum() / weight.sum(), (weight * ys).sum() / weight.sum()))
    return np.array(out)


@pytest.mark.parametrize("pixel_format", ["rgb24", "yuv420p"])
@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
@pytest.mark.parametrize(
    ("prompt", "axis", "travel"), [("pan right", 0, 0.12 * 320), ("tilt up", 1, 0.10 * 180)]
)
def test_a_linear_move_takes_equal_sub_pixel_steps(
    pixel_format: str, interpolation: str, prompt: str, axis: int, travel: float
) -> None:
    # A picture larger than the frame on the moving axis: the view slides over real
    # picture without zooming, a pure translation of `travel` (scaled for a 2 s clip) in
    # 48 equal steps of about half a pixel.
    size = (864, 360) if axis == 0 else (320, 486)
    picture = blob_picture(*size, sigma=12)
    req = request(picture, prompt, frames=49, width=320, height=180)
    engine = MotionEngine(
        {"easing": "linear", "interpolation": interpolation, "pixel_format": pixel_format}
    )
    steps = np.abs(np.diff(centroids(list(engine.render(req, no_progress)), 180), axis=0))
    along, across = steps[:, axis], steps[:, 1 - axis]
    assert along.mean() == pytest.approx(travel * (48 / 120) ** 0.5 / 48, rel=0.01)
    # Whole-pixel rendering (zoompan) steps 0 or 1 px: a std of 0.4 px or more. What is
    # left here (a few hundredths) is the 8-bit rounding of the frames, not the path.
    assert along.std() < 0.1
    assert across.max() < 0.01


def encode_request(
    tmp_path: Path, req: GenerationRequest, name: str, pixel_format: PixelFormat = "yuv420p"
) -> bytes:
    out = tmp_path / name
    engine = MotionEngine({"pixel_format": pixel_format})
    frames = engine.render(req, no_progress)
    encode(frames, out, width=req.width, height=req.height, pixel_format=engine.pixel_format)
    return out.read_bytes()


@pytest.mark.parametrize("pixel_format", ["rgb24", "yuv420p"])
def test_same_request_gives_byte_identical_mp4(
    tmp_path: Path, photo: RGBImage, pixel_format: PixelFormat
) -> None:
    def mp4(seed: int, name: str) -> bytes:
        req = request(photo, "a harbour at dawn", seed=seed)
        return encode_request(tmp_path, req, name, pixel_format)

    first, again, other = mp4(11, "a.mp4"), mp4(11, "b.mp4"), mp4(12, "c.mp4")
    assert first == again
    assert first != other


@pytest.mark.parametrize("pixel_format", ["rgb24", "yuv420p"])
@pytest.mark.parametrize("prompt", ["push in", "pull out", "static"])
def test_encoded_first_frame_is_the_framed_input(
    tmp_path: Path, pixel_format: PixelFormat, prompt: str
) -> None:
    photo = cv2.cvtColor(cv2.imread(str(sample_photo())), cv2.COLOR_BGR2RGB)
    req = request(photo, prompt, frames=9, width=854, height=480)
    encode_request(tmp_path, req, "f0.mp4", pixel_format)
    with av.open(str(tmp_path / "f0.mp4")) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert psnr(first, frame_image(photo, 854, 480)) >= 35


def test_the_engine_says_what_it_yields() -> None:
    assert MotionEngine().pixel_format == "yuv420p"  # the fast path is the default
    assert rgb_engine().pixel_format == "rgb24"


MOVES = ["push in", "fast pull back", "pan left", "tilt up", "orbit right", "static"]


@pytest.mark.parametrize("prompt", MOVES)
def test_i420_frames_are_the_rgb_frames_in_i420(photo: RGBImage, prompt: str) -> None:
    # The fast path warps planes of a pre-converted source; the slow path converts each
    # warped RGB frame. Same pictures, to within rounding, chroma grid included: a chroma
    # view off by a quarter pixel drops the chroma figure to about 35 dB.
    req = request(photo, prompt)
    rgb = list(rgb_engine().render(req, no_progress))
    yuv = list(MotionEngine().render(req, no_progress))
    assert all(f.shape == (270, 320) and f.dtype == np.uint8 for f in yuv)
    for fast, slow in zip(yuv, rgb, strict=True):
        reference = to_i420(slow)
        assert psnr(fast[:180], reference[:180]) >= 50  # Y
        assert psnr(fast[180:], reference[180:]) >= 42  # U and V


@pytest.mark.parametrize("prompt", MOVES)
def test_i420_frames_convert_back_to_the_rgb_frames(prompt: str) -> None:
    # Back in RGB (cv2 repeats each chroma sample over its 2x2 block), the fast path is
    # closer to the RGB frames than cv2's own RGB -> I420 -> RGB round trip of those frames,
    # which is what the encoder did to them before: 4:2:0 itself caps this near 40 dB.
    photo = cv2.cvtColor(cv2.imread(str(sample_photo())), cv2.COLOR_BGR2RGB)
    req = request(photo, prompt, frames=9)
    rgb = list(rgb_engine().render(req, no_progress))
    yuv = list(MotionEngine().render(req, no_progress))
    for fast, slow in zip(yuv, rgb, strict=True):
        converted = cv2.cvtColor(slow, cv2.COLOR_RGB2YUV_I420)
        round_trip = cv2.cvtColor(converted, cv2.COLOR_YUV2RGB_I420)
        back = cv2.cvtColor(fast, cv2.COLOR_YUV2RGB_I420)
        assert psnr(back, slow) >= max(psnr(round_trip, slow), 38)


def test_pull_out_extension_is_the_same_in_i420() -> None:
    flat = np.full((360, 640, 3), 200, np.uint8)
    last = list(MotionEngine().render(request(flat, "fast pull out"), no_progress))[-1]
    y, grey = last[:180], to_i420(flat[:180, :320])
    assert abs(int(y.min()) - int(grey[0, 0])) <= 9  # bright to the corners, no black border
    assert np.abs(last[180:].astype(int) - 128).max() <= 1  # and no colour cast


def test_opencv_threads_are_put_back_after_a_render(photo: RGBImage) -> None:
    before = cv2.getNumThreads()
    list(MotionEngine().render(request(photo, "push in", frames=3), no_progress))
    assert cv2.getNumThreads() == before

    def cancel_at_1(done: int, total: int, stage: str) -> None:
        if done == 1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        list(MotionEngine().render(request(photo, "push in", frames=3), cancel_at_1))
    assert cv2.getNumThreads() == before
