"""The motion engine: a camera moving over the still, rendered with sub-pixel accuracy.

Reads like a diffusers pipeline: `check_inputs`, then

1. frame the image (cover crop to the output aspect: frame 0 is exactly this framing),
2. plan the camera path (one pose per frame, from the prompt's camera language and the seed),
3. prepare the source once (the needed part of the photo, pre-scaled so the closest view
   is sampled at about one source pixel per output pixel, never up-sampled blurry; where a
   pull-out sees past the photo's edge, a soft blurred mirror extends it),
4. render each frame with one float-matrix `warpAffine`, yielding as it goes.

By default frames come out as I420 (`pixel_format` "yuv420p"): the source is converted to
I420 planes once, and each frame warps the Y plane at full size and U, V at half size with
the same view, straight into the layout x264 takes. That skips a 3-channel warp and an
RGB->YUV conversion per frame: at 1080p about 4.4 ms of CPU per frame, against about 10 ms
for an RGB warp plus the encoder's conversion.

Float matrices are the point: ffmpeg's `zoompan` rounds the crop window to whole pixels,
so a slow zoom judders; here every frame's view lands where the path says, to the sub-pixel.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from i2v.domain.errors import EngineError
from i2v.domain.request import PIXEL_FORMATS, GenerationRequest, PixelFormat, RGBImage
from i2v.engines.base import ProgressCallback
from i2v.engines.motion.camera import Move, parse_move
from i2v.engines.motion.path import EASINGS, Easing, Margins, Pose, plan_path
from i2v.video.frames import i420_planes, to_i420

KERNEL_MARGIN = 4  # source pixels the bicubic kernel reads past a view's edge
EXTENSION_BLUR = 0.02  # sigma of the extension's blur, as a fraction of the frame's long side
EXTENSION_FEATHER = 0.03  # width of the sharp-to-soft blend beyond the photo's edge


@dataclass(frozen=True)
class Framing:
    """Where frame 0 sits in the photo: the crop (in photo pixels) and its scale."""

    x0: float
    y0: float
    width: float
    height: float
    scale: float  # output pixels per photo pixel

    def margins(self, photo_width: int, photo_height: int) -> Margins:
        return Margins(
            left=self.x0 * self.scale,
            right=(photo_width - self.x0 - self.width) * self.scale,
            top=self.y0 * self.scale,
            bottom=(photo_height - self.y0 - self.height) * self.scale,
        )


@dataclass(frozen=True)
class Source:
    """The pre-scaled picture frames are sampled from, and how frame-0 pixels map into it:
    canvas_index = a * frame0_coordinate + b, per axis."""

    canvas: RGBImage
    ax: float
    bx: float
    ay: float
    by: float


@dataclass(frozen=True)
class PlanarSource:
    """A Source as I420 planes: Y at the canvas size, U and V at half of it. Its a, b map
    frame-0 pixels to Y indices, as Source's do to canvas indices."""

    y: RGBImage
    u: RGBImage
    v: RGBImage
    ax: float
    bx: float
    ay: float
    by: float


INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


class MotionEngine:
    """Options (the catalog route's `options` table):

    - `easing`: "ease" (default; starts and stops gently) or "linear" (constant speed).
    - `interpolation`: "linear" (default) or "cubic". Both are sub-pixel exact; cubic is a
      touch sharper but costs about twice the CPU per 1080p frame (33 vs 14 ms measured),
      which makes rendering, not x264, the bottleneck on a 2-core machine.
    - `pixel_format` (constructor only, see i2v.engines.base): "yuv420p" (default; I420
      frames for `encode(..., pixel_format="yuv420p")`) or "rgb24" (RGB frames).
    """

    name = "motion"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        options = options or {}
        self.easing = _easing(options.get("easing", "ease"))
        self.interpolation = _interpolation(options.get("interpolation", "linear"))
        self.pixel_format = _pixel_format(options.get("pixel_format", "yuv420p"))

    def plan(self, request: GenerationRequest) -> tuple[Move, list[Pose]]:
        """The camera move the request gets and its per-frame poses (no rendering)."""
        move = parse_move(request.prompt, request.seed, camera_fixed=request.camera_fixed)
        photo_h, photo_w = request.image.shape[:2]
        framing = frame(photo_w, photo_h, request.width, request.height)
        poses = plan_path(
            move,
            request.width,
            request.height,
            request.frames,
            seed=request.seed,
            margins=framing.margins(photo_w, photo_h),
            easing=self.easing,
        )
        return move, poses

    def render(
        self, request: GenerationRequest, on_progress: ProgressCallback
    ) -> Iterator[RGBImage]:
        check_inputs(request)
        width, height, total = request.width, request.height, request.frames
        image = request.image

        # 1. Frame the image.
        framing = frame(image.shape[1], image.shape[0], width, height)

        # 2. Plan the camera path.
        move, poses = self.plan(request)

        if move.kind == "static":
            # A locked-off camera: every frame is the framed input, resampled once.
            still = frame_image(image, width, height)
            if self.pixel_format == "yuv420p":
                still = to_i420(still)
            for i in range(total):
                on_progress(i, total, "rendering")
                yield still
            on_progress(total, total, "rendering")
            return

        # 3. Prepare the source once.
        interpolation = self.interpolation
        source = prepare_source(image, framing, poses, width, height)

        # 4. Render each frame.
        planar = to_planes(source) if self.pixel_format == "yuv420p" else None

        def draw(pose: Pose) -> RGBImage:
            if planar is None:
                return render_frame(source, pose, width, height, interpolation=interpolation)
            return render_frame_i420(planar, pose, width, height, interpolation=interpolation)

        with one_cv2_thread():
            for i, pose in enumerate(poses):
                on_progress(i, total, "rendering")
                yield draw(pose)
        on_progress(total, total, "rendering")

    def close(self) -> None:
        pass


@contextlib.contextmanager
def one_cv2_thread() -> Iterator[None]:
    """OpenCV on one thread while frames render (its setting is process-wide, so it is put
    back after the last frame). The encoder's x264 threads keep both cores of a small
    machine busy; OpenCV's second thread mostly spin-waits for a core, and measured at 1080p
    a frame costs 4.4 ms of CPU on one thread against 5.1 ms on two."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def check_inputs(request: GenerationRequest) -> None:
    image = request.image
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise EngineError(
            f"image: must be an RGB uint8 array (H x W x 3), got {image.dtype} {image.shape}"
        )
    if min(image.shape[:2]) < 2:
        raise EngineError(f"image: each side must be at least 2 pixels, got {image.shape[:2]}")
    if request.frames < 1:
        raise EngineError(f"frames: must be at least 1, got {request.frames}")
    for name, value in (("width", request.width), ("height", request.height)):
        if value < 2 or value % 2:
            raise EngineError(f"{name}: must be an even number of pixels >= 2, got {value}")


def frame(photo_width: int, photo_height: int, width: int, height: int) -> Framing:
    """The centred crop of the photo with the output's aspect (cover, never letterbox)."""
    scale = max(width / photo_width, height / photo_height)
    crop_w, crop_h = width / scale, height / scale
    return Framing((photo_width - crop_w) / 2, (photo_height - crop_h) / 2, crop_w, crop_h, scale)


def frame_image(image: RGBImage, width: int, height: int) -> RGBImage:
    """The input framed for the output size: cover crop, then one high-quality resize."""
    framing = frame(image.shape[1], image.shape[0], width, height)
    matrix = np.array(
        [
            [1 / framing.scale, 0.0, framing.x0 + 0.5 / framing.scale - 0.5],
            [0.0, 1 / framing.scale, framing.y0 + 0.5 / framing.scale - 0.5],
        ]
    )
    if framing.scale < 1:
        # Shrinking: area-average (no aliasing). Crop to whole pixels first; the
        # sub-pixel remainder of a centred crop is below what area averaging resolves.
        x0, y0 = round(framing.x0), round(framing.y0)
        x1, y1 = round(framing.x0 + framing.width), round(framing.y0 + framing.height)
        crop = image[y0:y1, x0:x1]
        return np.ascontiguousarray(cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA))
    out = cv2.warpAffine(
        image,
        matrix,
        (width, height),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )
    return np.ascontiguousarray(out)


def prepare_source(
    image: RGBImage,
    framing: Framing,
    poses: list[Pose],
    width: int,
    height: int,
) -> Source:
    """Crop the photo to what the path sees, pre-scale it so the closest view is sampled at
    about one canvas pixel per output pixel, and extend it where the path looks past it."""
    photo_h, photo_w = image.shape[:2]
    closest = max(max(pose.zoom for pose in poses), 1.0)
    gain = framing.scale * closest  # canvas pixels per photo pixel

    # Everything any view sees, in photo pixels, plus room for the kernel.
    xs, ys = zip(*(corner for pose in poses for corner in pose.corners(width, height)), strict=True)
    pad = KERNEL_MARGIN / gain
    seen_x0 = framing.x0 + min(xs) / framing.scale - pad
    seen_x1 = framing.x0 + max(xs) / framing.scale + pad
    seen_y0 = framing.y0 + min(ys) / framing.scale - pad
    seen_y1 = framing.y0 + max(ys) / framing.scale + pad

    # The real part: whole photo pixels inside the seen box.
    px0, py0 = max(0, math.floor(seen_x0)), max(0, math.floor(seen_y0))
    px1, py1 = min(photo_w, math.ceil(seen_x1)), min(photo_h, math.ceil(seen_y1))
    part = image[py0:py1, px0:px1]
    size = (max(1, round((px1 - px0) * gain)), max(1, round((py1 - py0) * gain)))
    resize = cv2.INTER_AREA if gain < 1 else cv2.INTER_LANCZOS4
    canvas: RGBImage = np.asarray(cv2.resize(part, size, interpolation=resize), dtype=np.uint8)
    gx, gy = size[0] / (px1 - px0), size[1] / (py1 - py0)

    # Past the photo's edge: canvas pixels to add on each side.
    left = max(0, math.ceil((px0 - seen_x0) * gx))
    right = max(0, math.ceil((seen_x1 - px1) * gx))
    top = max(0, math.ceil((py0 - seen_y0) * gy))
    bottom = max(0, math.ceil((seen_y1 - py1) * gy))
    if left or right or top or bottom:
        canvas = _extend(canvas, left, right, top, bottom, max(width, height) * closest)

    # frame-0 coordinate q -> photo x = x0 + q / scale -> canvas continuous -> canvas index.
    ax, ay = gx / framing.scale, gy / framing.scale
    bx = (framing.x0 - px0) * gx + left - 0.5
    by = (framing.y0 - py0) * gy + top - 0.5
    return Source(np.ascontiguousarray(canvas), ax, bx, ay, by)


def view_matrix(
    source: Source | PlanarSource, pose: Pose, width: int, height: int
) -> npt.NDArray[np.float64]:
    """Output pixel index -> canvas index: pixel centre -> frame-0 point -> canvas."""
    cos, sin = math.cos(pose.roll) / pose.zoom, math.sin(pose.roll) / pose.zoom
    ox, oy = 0.5 - width / 2, 0.5 - height / 2
    return np.array(
        [
            [
                source.ax * cos,
                -source.ax * sin,
                source.ax * (pose.cx + cos * ox - sin * oy) + source.bx,
            ],
            [
                source.ay * sin,
                source.ay * cos,
                source.ay * (pose.cy + sin * ox + cos * oy) + source.by,
            ],
        ]
    )


def chroma_matrix(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The luma view matrix `matrix` (index -> index) for the half-size chroma planes.

    Chroma sample k sits at the centre of luma pixels 2k and 2k + 1 (see `to_i420`), both in
    the output and in the canvas: at luma index 2k + 0.5. So output chroma k -> output luma
    2k + 0.5 -> canvas luma p = A (2k + 0.5) + t -> canvas chroma (p - 0.5) / 2, which is
    A k + (A (0.5, 0.5) + t - 0.5) / 2: the same linear part, a shifted translation.
    """
    linear, shift = matrix[:, :2], matrix[:, 2]
    offset = (linear @ np.array([0.5, 0.5]) + shift - 0.5) / 2
    return np.column_stack([linear, offset])


def render_frame(
    source: Source, pose: Pose, width: int, height: int, *, interpolation: str = "linear"
) -> RGBImage:
    """One RGB output frame, as one float-matrix warp of the canvas."""
    out = cv2.warpAffine(
        source.canvas,
        view_matrix(source, pose, width, height),
        (width, height),
        flags=INTERPOLATIONS[interpolation] | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )
    return np.ascontiguousarray(out)


def render_frame_i420(
    source: PlanarSource, pose: Pose, width: int, height: int, *, interpolation: str = "linear"
) -> RGBImage:
    """One I420 output frame ((height * 3 // 2) x width): each plane warped straight into
    its place in the frame, chroma with the view adjusted to the half-size grid."""
    matrix = view_matrix(source, pose, width, height)
    chroma = chroma_matrix(matrix)
    flags = INTERPOLATIONS[interpolation] | cv2.WARP_INVERSE_MAP
    out = np.empty((height * 3 // 2, width), np.uint8)
    y, u, v = i420_planes(out)
    cv2.warpAffine(source.y, matrix, (width, height), y, flags, cv2.BORDER_REFLECT)
    cv2.warpAffine(source.u, chroma, u.shape[::-1], u, flags, cv2.BORDER_REFLECT)
    cv2.warpAffine(source.v, chroma, v.shape[::-1], v, flags, cv2.BORDER_REFLECT)
    return out


def to_planes(source: Source) -> PlanarSource:
    """The source's canvas as I420 planes, converted once (an odd side gains one edge row or
    column first: past the bottom and right, so no index moves)."""
    canvas = source.canvas
    height, width = canvas.shape[:2]
    if height % 2 or width % 2:
        canvas = np.asarray(
            cv2.copyMakeBorder(canvas, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE),
            dtype=np.uint8,
        )
    y, u, v = i420_planes(to_i420(canvas))
    return PlanarSource(y, u, v, source.ax, source.bx, source.ay, source.by)


def _extend(
    canvas: RGBImage, left: int, right: int, top: int, bottom: int, long_side: float
) -> RGBImage:
    """Mirror the photo past its edges, blur the mirror and feather it in: a soft, honest
    'more of the same' rather than a hard border or invented detail."""
    h, w = canvas.shape[:2]
    mirrored = cv2.copyMakeBorder(canvas, top, bottom, left, right, cv2.BORDER_REFLECT)
    sigma = EXTENSION_BLUR * long_side
    # Blur at 1/4 size: a wide Gaussian is low-pass anyway, and this keeps it cheap.
    small = cv2.resize(mirrored, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=max(sigma / 4, 0.5))
    blurred = cv2.resize(
        small, (mirrored.shape[1], mirrored.shape[0]), interpolation=cv2.INTER_LINEAR
    )

    # Distance outside the photo, in canvas pixels, -> blend weight of the blurred mirror.
    feather = max(EXTENSION_FEATHER * long_side, 1.0)
    cols = np.arange(mirrored.shape[1], dtype=np.float32)
    rows = np.arange(mirrored.shape[0], dtype=np.float32)
    out_x = np.maximum(np.maximum(left - cols - 0.5, cols + 0.5 - (left + w)), 0.0)
    out_y = np.maximum(np.maximum(top - rows - 0.5, rows + 0.5 - (top + h)), 0.0)
    result: RGBImage = np.array(mirrored, dtype=np.uint8)
    # The weight is 0 on the photo itself, so only the bands around it blend: above and
    # below it at full width, and left and right of it beside its rows.
    full_h, full_w = result.shape[:2]
    for ys, xs in (
        (slice(0, top), slice(0, full_w)),
        (slice(top + h, full_h), slice(0, full_w)),
        (slice(top, top + h), slice(0, left)),
        (slice(top, top + h), slice(left + w, full_w)),
    ):
        outside = np.hypot(out_x[xs][None, :], out_y[ys][:, None])
        weight = np.clip(outside / feather, 0.0, 1.0)[..., None]
        blend: npt.NDArray[np.float32] = (
            mirrored[ys, xs].astype(np.float32) * (1 - weight)
            + blurred[ys, xs].astype(np.float32) * weight
        )
        result[ys, xs] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
    return result


def _easing(value: object) -> Easing:
    for easing in EASINGS:
        if value == easing:
            return easing
    raise EngineError(f"easing: must be one of {', '.join(EASINGS)}, got {value!r}")


def _pixel_format(value: object) -> PixelFormat:
    for pixel_format in PIXEL_FORMATS:
        if value == pixel_format:
            return pixel_format
    raise EngineError(f"pixel_format: must be one of {', '.join(PIXEL_FORMATS)}, got {value!r}")


def _interpolation(value: object) -> str:
    if isinstance(value, str) and value in INTERPOLATIONS:
        return value
    raise EngineError(f"interpolation: must be one of {', '.join(INTERPOLATIONS)}, got {value!r}")
