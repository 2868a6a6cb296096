"""Procedurally drawn FER2013-style faces: the embedded offline dataset.

Every face is drawn from facial action cues (brow height and slant, eye opening,
mouth curvature/opening/width, nose wrinkles, cheek and forehead lines). Each class
is a prototype of those cues; a sample interpolates from neutral towards its prototype
with a random intensity and then jitters every cue, so weak expressions overlap the
way real ones do (neutral/sad, fear/surprise, angry/disgust). Identity, pose,
lighting, blur, noise and occlusion vary independently of the label.

Faces are drawn at twice the output size with anti-aliased, sub-pixel OpenCV
primitives and area-downsampled, which keeps 48x48 strokes smooth and fast to draw.
"""
from __future__ import annotations

import math
import numbers

import cv2
import numpy as np

from core.configs.choices import FER_LABELS

__all__ = ["generate"]


MIN_SIZE = 32

# Action-cue parameters in face units (face half-width = 1, y grows downwards);
# the *_lines / wrinkle / cheek / teeth cues are strengths in [0, 1].
_PARAMS = (
    "brow_raise",      # whole brow up (+) or down (-)
    "brow_inner",      # inner brow end up (+, sad/fear) or pulled down into a V (-, angry)
    "brow_arch",       # curvature of the brow
    "eye_open",        # half-height of the upper eye opening
    "cheek_raise",     # lower lid pushed up + nasolabial folds (happy, disgust)
    "mouth_curve",     # mouth corners above (+) or below (-) the mouth centre
    "mouth_open",      # gap between the lips
    "mouth_width",     # half-width of the mouth
    "upper_lip",       # upper lip raised (disgust)
    "lip_thick",       # lip thickness; pressed lips are thin (angry)
    "teeth",           # how much of the opening shows teeth
    "nose_wrinkle",    # wrinkles across the nose bridge (disgust)
    "brow_furrow",     # vertical lines between the brows (angry)
    "forehead_lines",  # horizontal forehead lines from raised brows (surprise, fear)
    "mouth_asym",      # one-sided lip raise (disgust is often unilateral)
)
_P = {name: i for i, name in enumerate(_PARAMS)}

_NEUTRAL = dict(
    brow_raise=0.0, brow_inner=0.0, brow_arch=0.04, eye_open=0.075, cheek_raise=0.0,
    mouth_curve=0.0, mouth_open=0.0, mouth_width=0.30, upper_lip=0.0, lip_thick=0.045,
    teeth=0.0, nose_wrinkle=0.0, brow_furrow=0.0, forehead_lines=0.0, mouth_asym=0.0,
)

# Prototypes follow the FACS descriptions of the basic emotions (Ekman & Friesen):
# only the cues that differ from neutral are listed.
_PROTOTYPES = {
    "angry": dict(brow_raise=-0.08, brow_inner=-0.16, brow_arch=0.0, eye_open=0.095,
                  mouth_curve=-0.05, mouth_width=0.25, lip_thick=0.022, mouth_open=0.02,
                  teeth=0.6, brow_furrow=1.0, nose_wrinkle=0.25),
    "disgust": dict(brow_raise=-0.06, brow_inner=-0.08, eye_open=0.05, cheek_raise=0.6,
                    mouth_curve=-0.08, mouth_open=0.05, upper_lip=0.07, teeth=0.5,
                    nose_wrinkle=1.0, brow_furrow=0.45, mouth_asym=0.06),
    "fear": dict(brow_raise=0.12, brow_inner=0.0, brow_arch=0.0, eye_open=0.15,
                 mouth_curve=-0.06, mouth_open=0.14, mouth_width=0.38, teeth=0.3,
                 brow_furrow=0.5, forehead_lines=0.7, lip_thick=0.035),
    "happy": dict(eye_open=0.05, cheek_raise=1.0, mouth_curve=0.20, mouth_open=0.10,
                  mouth_width=0.45, teeth=1.0),
    "sad": dict(brow_raise=-0.01, brow_inner=0.12, brow_arch=0.0, eye_open=0.055,
                mouth_curve=-0.12, mouth_width=0.27, brow_furrow=0.25, forehead_lines=0.25),
    "surprise": dict(brow_raise=0.15, brow_inner=0.02, brow_arch=0.10, eye_open=0.15,
                     mouth_open=0.24, mouth_width=0.20, forehead_lines=1.0, teeth=0.15),
    "neutral": dict(),
}

_NEUTRAL_VEC = np.array([_NEUTRAL[p] for p in _PARAMS], dtype=np.float64)
_PROTO_MAT = np.array(
    [[{**_NEUTRAL, **_PROTOTYPES[c]}[p] for p in _PARAMS] for c in FER_LABELS], dtype=np.float64
)
# Per-sample jitter (std) of every cue: identity differences plus expression noise.
# Sized relative to the spread between prototypes, so that classes overlap at low
# intensity but remain separable at high intensity.
_JITTER = np.array([
    0.030, 0.035, 0.025, 0.018, 0.18, 0.035, 0.025, 0.035, 0.015, 0.008,
    0.20, 0.18, 0.18, 0.18, 0.015,
])
_LOWER_BOUND = np.array([
    -np.inf, -np.inf, -0.03, 0.015, 0.0, -np.inf, 0.0, 0.15, 0.0, 0.012,
    0.0, 0.0, 0.0, 0.0, -np.inf,
])

# Expression intensity: weak expressions are common in real data and are what makes
# the neighbouring classes confusable.
_INTENSITY_RANGE = (0.25, 1.0)
_OCCLUSION_P = 0.2
_SS = 2  # supersampling factor
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def _check_int(name: str, value: object, minimum: int, expected: str) -> int:
    # bool is an Integral, but generate(True) is a bug, not a request for one image.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be {expected}. Received: {name}={value!r}")
    return int(value)


def generate(n_per_class: int, seed: int = 0, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, size, size) and int64 labels (N,), classes balanced, order shuffled; deterministic from seed.

    N = 7 * n_per_class; label i means FER_LABELS[i] (FER2013 order).
    """
    n_per_class = _check_int("n_per_class", n_per_class, 1, "a positive integer")
    seed = _check_int("seed", seed, 0, "a non-negative integer")
    size = _check_int("size", size, MIN_SIZE, f"an integer >= {MIN_SIZE}")

    rng = np.random.default_rng(seed)
    n_classes = len(FER_LABELS)
    n = n_per_class * n_classes
    labels = rng.permutation(np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class))

    # All random draws happen up front, vectorised, in a fixed order: fast, and the
    # output depends only on the seed.
    lo, hi = _INTENSITY_RANGE
    intensity = rng.uniform(lo, hi, n)
    cues = _NEUTRAL_VEC + intensity[:, None] * (_PROTO_MAT[labels] - _NEUTRAL_VEC)
    cues += rng.normal(size=cues.shape) * _JITTER
    cues[:, _P["mouth_asym"]] *= rng.choice([-1.0, 1.0], n)
    cues = np.maximum(cues, _LOWER_BOUND)

    scene = dict(
        face_scale=rng.uniform(0.30, 0.36, n),
        face_aspect=rng.uniform(1.18, 1.38, n),
        face_wide=rng.uniform(0.92, 1.06, n),
        cx=rng.uniform(-0.04, 0.04, n),
        cy=rng.uniform(-0.03, 0.05, n),
        angle=rng.normal(0.0, 5.0, n).clip(-15, 15),
        skin=rng.uniform(85, 215, n),
        background=rng.uniform(15, 240, n),
        hair=rng.uniform(10, 190, n),
        hair_style=rng.integers(0, 3, n),
        bangs=rng.uniform(0.0, 1.0, n),
        eye_dx=rng.uniform(0.36, 0.44, n),
        gaze=rng.uniform(-0.05, 0.05, n),
        mouth_y=rng.uniform(0.56, 0.66, n),
        light_gain=rng.uniform(0.0, 0.45, n),
        light_dir=rng.uniform(0.0, 2 * math.pi, n),
        light_level=rng.uniform(0.75, 1.15, n),
        blur=rng.uniform(0.0, 0.85, n),
        noise=rng.uniform(1.5, 9.0, n),
        occlude=rng.random(n) < _OCCLUSION_P,
        occ_kind=rng.integers(0, 3, n),
        occ_box=rng.uniform(0.0, 1.0, (n, 4)),
        occ_tone=rng.uniform(0, 255, n),
    )

    canvas = np.empty((size * _SS, size * _SS), dtype=np.uint8)
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    images = np.empty((n, size, size), dtype=np.uint8)
    # Plain Python floats: per-sample arithmetic on numpy scalars is several times slower.
    columns = {k: v.tolist() for k, v in scene.items()}
    cue_rows = cues.tolist()
    for i in range(n):
        sc = {k: v[i] for k, v in columns.items()}
        _draw_face(canvas, cue_rows[i], sc)
        img = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
        if sc["blur"] > 0.25:  # smaller sigmas change nothing visible
            img = cv2.GaussianBlur(img, (0, 0), sc["blur"])
        # Lighting: a linear gradient across the image times an overall exposure.
        gain, direction = sc["light_gain"], sc["light_dir"]
        light = 1.0 + gain * math.cos(direction) * ramp[None, :] + gain * math.sin(direction) * ramp[:, None]
        img *= light * sc["light_level"]
        # Drawn per image (memory stays flat for large n) and after all scene draws.
        img += rng.standard_normal((size, size), dtype=np.float32) * sc["noise"]
        np.clip(np.rint(img), 0, 255, out=img)
        images[i] = img
    return images, labels


_T = np.linspace(0.0, 1.0, 10)[:, None]
_BEZIER_BASIS = np.hstack([(1 - _T) ** 2, 2 * (1 - _T) * _T, _T**2])


def _bezier(p0, p1, p2) -> np.ndarray:
    """Points of the quadratic Bezier p0-p1-p2 (p1 is the control point)."""
    return _BEZIER_BASIS @ np.array((p0, p1, p2), dtype=np.float64)


def _through(p0, mid, p2) -> tuple[float, float]:
    """Control point that makes the Bezier from p0 to p2 pass through mid at t=0.5."""
    return (2 * mid[0] - 0.5 * (p0[0] + p2[0]), 2 * mid[1] - 0.5 * (p0[1] + p2[1]))


class _Pen:
    """Draws in face units; maps them to canvas pixels with the face's pose."""

    def __init__(self, img: np.ndarray, center: tuple[float, float], scale: float, angle_deg: float):
        self.img = img
        self.scale = scale
        self.angle = angle_deg
        a = math.radians(angle_deg)
        cos, sin = math.cos(a) * scale * _ONE, math.sin(a) * scale * _ONE
        # Fixed-point affine map (cv2's `shift` bits): face units -> canvas pixels.
        self.lin = np.array([[cos, sin], [-sin, cos]])
        self.off = np.array(center) * _ONE
        self.cos, self.sin = cos, sin

    def px(self, pts) -> np.ndarray:
        return np.rint(np.asarray(pts, dtype=np.float64) @ self.lin + self.off).astype(np.int32)

    def ellipse(self, c: tuple[float, float], axes: tuple[float, float], color: float, angle: float = 0.0):
        x, y = c
        centre = (round(x * self.cos - y * self.sin + self.off[0]), round(x * self.sin + y * self.cos + self.off[1]))
        k = self.scale * _ONE
        cv2.ellipse(self.img, centre, (max(1, round(axes[0] * k)), max(1, round(axes[1] * k))),
                    self.angle + angle, 0, 360, color, -1, cv2.LINE_AA, _SHIFT)

    def fill(self, pts, color: float):
        cv2.fillPoly(self.img, [self.px(pts)], color, cv2.LINE_AA, _SHIFT)

    def line(self, pts, color: float, thickness: float):
        cv2.polylines(self.img, [self.px(pts)], False, color, max(1, round(thickness * self.scale)),
                      cv2.LINE_AA, _SHIFT)


def _tone(base: float, delta: float) -> float:
    return min(255.0, max(0.0, base + delta))


def _draw_face(img: np.ndarray, c: list[float], s: dict) -> None:
    size = img.shape[0]
    img[:] = int(s["background"])
    pen = _Pen(img, ((0.5 + s["cx"]) * size, (0.5 + s["cy"]) * size), s["face_scale"] * size,
               s["angle"])
    skin, hair = float(s["skin"]), float(s["hair"])
    # Feature lines scale with the skin tone, so contrast does not depend on it.
    ink = _tone(skin, -0.55 * skin)
    fh, fw = s["face_aspect"], s["face_wide"]

    # Hair behind the head, neck, ears, then the face on top.
    style = s["hair_style"]
    if style > 0:
        hair_h = fh * (1.0 if style == 1 else 1.25)
        pen.ellipse((0, -fh * 0.1 + (0.0 if style == 1 else 0.3)), (fw * 1.14, hair_h), hair)
    pen.fill([(-0.45, 0.8), (0.45, 0.8), (0.55, 2.5), (-0.55, 2.5)], _tone(skin, -25))
    for side in (-1, 1):
        pen.ellipse((side * fw * 0.97, -0.02), (0.14, 0.26), _tone(skin, -12))
    pen.ellipse((0, 0), (fw, fh), skin)
    if style > 0:
        # Bangs: the top of the face ellipse down to a wavy hairline; a low hairline
        # hides the forehead lines and sometimes touches the brows.
        theta = np.linspace(math.pi * 1.08, math.pi * 1.92, 12)
        cap = np.column_stack([1.03 * fw * np.cos(theta)[::-1], 1.03 * fh * np.sin(theta)[::-1]])
        depth = -fh + 0.25 + 0.45 * s["bangs"]
        part = 0.5 * (s["bangs"] - 0.5)
        left, right = cap[-1], cap[0]
        hairline = np.vstack([_bezier(left, (left[0] + 0.2, depth), (part, depth - 0.12)),
                              _bezier((part, depth - 0.12), (right[0] - 0.2, depth), right)])
        pen.fill(np.vstack([cap, hairline]), hair)

    _draw_forehead(pen, c, ink, skin)
    _draw_brows(pen, c, ink, hair, skin)
    _draw_eyes(pen, c, s, ink, skin)
    _draw_nose(pen, c, ink, skin)
    _draw_mouth(pen, c, s, ink, skin)

    if s["occlude"]:
        _draw_occlusion(pen, s, fw, fh)


def _strength_tone(skin: float, ink: float, strength: float) -> float:
    """Colour of a wrinkle: invisible at strength 0, ink-dark at strength >= 1."""
    w = min(1.0, max(0.0, strength)) * 0.75
    return (1 - w) * skin + w * ink


def _draw_forehead(pen: _Pen, c, ink, skin) -> None:
    f = c[_P["forehead_lines"]]
    if f > 0.15:
        tone = _strength_tone(skin, ink, f)
        for k, y in enumerate((-0.72, -0.86)):
            y = y - 0.5 * c[_P["brow_raise"]]
            w = 0.42 - 0.08 * k
            pen.line(_bezier((-w, y), (0, y - 0.06), (w, y)), tone, 0.035)


def _draw_brows(pen: _Pen, c, ink, hair, skin) -> None:
    base_y = -0.40 - c[_P["brow_raise"]]
    # Brows are darker than the skin even under blond hair.
    tone = min(hair, _tone(skin, -70))
    arch = c[_P["brow_arch"]]
    for side in (-1, 1):
        inner = (side * 0.13, base_y - c[_P["brow_inner"]])
        outer = (side * 0.64, base_y + 0.03 + 0.35 * c[_P["brow_inner"]])
        mid = (side * 0.40, 0.5 * (inner[1] + outer[1]) - arch - 0.03)
        pts = _bezier(inner, _through(inner, mid, outer), outer)
        pen.line(pts, tone, 0.09)
    furrow = c[_P["brow_furrow"]]
    if furrow > 0.15:
        t = _strength_tone(skin, ink, furrow)
        for x in (-0.05, 0.05):
            pen.line([(x, base_y - 0.08), (x * 0.6, base_y + 0.1)], t, 0.03)


def _draw_eyes(pen: _Pen, c, s, ink, skin) -> None:
    h_up = c[_P["eye_open"]]
    cheek = min(max(c[_P["cheek_raise"]], 0.0), 1.3)
    # Raised cheeks push the lower lid up ("smiling eyes").
    h_lo = max(0.2 * h_up, h_up * (0.75 - 0.45 * cheek))
    white = _tone(skin, 40)
    for side in (-1, 1):
        ex, ey = side * s["eye_dx"], -0.17
        w = 0.19
        upper = _bezier((ex - w, ey), _through((ex - w, ey), (ex, ey - h_up), (ex + w, ey)), (ex + w, ey))
        lower = _bezier((ex + w, ey), _through((ex + w, ey), (ex, ey + h_lo), (ex - w, ey)), (ex - w, ey))
        pen.fill(np.vstack([upper, lower]), white)
        r = 0.075
        iy = ey - 0.5 * (h_up - h_lo)
        pen.ellipse((ex + s["gaze"], iy), (r, min(r, 0.5 * (h_up + h_lo) + 0.01)), ink * 0.5)
        pen.line(upper, ink * 0.7, 0.05)
        pen.line(lower, _tone(skin, -0.3 * skin), 0.025)
        if cheek > 0.3:
            t = _strength_tone(skin, ink, cheek - 0.2)
            pen.line(_bezier((ex - w * 0.9, ey + h_lo + 0.08), (ex, ey + h_lo + 0.13),
                             (ex + w * 0.9, ey + h_lo + 0.08)), t, 0.025)


def _draw_nose(pen: _Pen, c, ink, skin) -> None:
    wr = c[_P["nose_wrinkle"]]
    flare = 0.09 + 0.03 * min(wr, 1.2)
    shade = _tone(skin, -0.25 * skin)
    pen.line(_bezier((-0.04, -0.05), (-0.09, 0.15), (-0.12, 0.24)), shade, 0.03)
    pen.line(_bezier((-flare - 0.05, 0.25), (0, 0.34), (flare + 0.05, 0.25)), shade, 0.03)
    for side in (-1, 1):
        pen.ellipse((side * flare, 0.29), (0.045, 0.025), _tone(skin, -0.45 * skin), angle=side * 20)
    if wr > 0.15:
        t = _strength_tone(skin, ink, wr)
        for y in (-0.04, 0.04, 0.12):
            pen.line(_bezier((-0.13, y), (0, y - 0.05), (0.13, y)), t, 0.03)
        # The levator pulls folds from the nose wings towards the upper lip.
        for side in (-1, 1):
            pen.line(_bezier((side * 0.17, 0.18), (side * 0.3, 0.3), (side * 0.28, 0.45)), t, 0.03)


def _draw_mouth(pen: _Pen, c, s, ink, skin) -> None:
    y = s["mouth_y"]
    w = c[_P["mouth_width"]]
    curve, opening = c[_P["mouth_curve"]], c[_P["mouth_open"]]
    up_raise, lip, asym = c[_P["upper_lip"]], c[_P["lip_thick"]], c[_P["mouth_asym"]]
    left, right = (-w, y - curve + asym), (w, y - curve - asym)
    centre_up = (0.0, y - 0.5 * opening - up_raise)
    centre_lo = (0.0, y + 0.5 * opening)
    inner_up = _bezier(left, _through(left, centre_up, right), right)
    inner_lo = _bezier(right, _through(right, centre_lo, left), left)
    outer_up = _bezier(left, _through(left, (0.0, centre_up[1] - lip), right), right)
    outer_lo = _bezier(right, _through(right, (0.0, centre_lo[1] + 1.3 * lip), left), left)
    lip_tone = _tone(skin, -0.22 * skin)
    pen.fill(np.vstack([outer_up, outer_lo]), lip_tone)
    gap = opening + up_raise
    if gap > 0.02:
        pen.fill(np.vstack([inner_up, inner_lo]), ink * 0.35)
        teeth = min(1.0, max(0.0, c[_P["teeth"]]))
        if teeth > 0.2:
            # Upper teeth hang from the upper lip; how far depends on the cue.
            band = min(gap, 0.07) * teeth
            lower_edge = inner_up + np.array([0.0, band])
            lower_edge[:, 0] *= 0.85
            pen.fill(np.vstack([inner_up, lower_edge[::-1]]), _tone(skin, 45))
    pen.line(inner_up, ink * 0.6, 0.035)
    # Raised cheeks deepen the nasolabial folds beside the mouth.
    cheek = c[_P["cheek_raise"]]
    if cheek > 0.25:
        t = _strength_tone(skin, ink, cheek * 0.8)
        for side in (-1, 1):
            pen.line(_bezier((side * 0.2, 0.28), (side * (w + 0.12), y - 0.2), (side * (w + 0.08), y + 0.05)),
                     t, 0.03)


def _draw_occlusion(pen: _Pen, s, fw, fh) -> None:
    b, tone, kind = s["occ_box"], s["occ_tone"], s["occ_kind"]
    if kind == 0:
        # A hand or object: a rectangle somewhere over the face.
        x0, y0 = -fw + 1.4 * fw * b[0], -fh + 1.6 * fh * b[1]
        w, h = 0.5 + 0.5 * b[2], 0.5 + 0.5 * b[3]
        pen.fill([(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)], tone)
    elif kind == 1:
        # Sunglasses: a bar over the eyes.
        y0, h = -0.32 + 0.1 * b[1], 0.25 + 0.12 * b[3]
        pen.fill([(-fw, y0), (fw, y0), (fw, y0 + h), (-fw, y0 + h)], tone * 0.4)
    else:
        # A hand over the mouth or chin.
        y0 = 0.35 + 0.3 * b[1]
        pen.fill([(-0.7, y0), (0.7, y0), (0.75, 2.0), (-0.75, 2.0)], tone)
