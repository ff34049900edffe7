"""Drawing the articulated performer of :mod:`musicperf.synth.figure` with Pillow.

:func:`draw_figure` draws one frame's geometry (:func:`musicperf.synth.figure.geometry`): body,
face, hands and instrument, in supersampled pixels. Split from :mod:`musicperf.synth.figure`
(which computes the states and geometry) to keep each file readable. Imports numpy; Pillow is
passed in as the ``ImageDraw`` of the caller.
"""

from __future__ import annotations

import cmath
import math


from musicperf.synth.figure import Appearance, _r


def _ellipse_poly(c: complex, rx: float, ry: float, a: float, n: int = 20) -> list[complex]:
    ra = _r(a)
    return [c + ra * complex(rx * math.cos(2 * math.pi * k / n), ry * math.sin(2 * math.pi * k / n)) for k in range(n)]


def draw_figure(draw, G: dict, app: Appearance, instrument: str, to_px, scale: float) -> None:
    """Draw one frame of the figure with a Pillow ``ImageDraw`` in supersampled pixels.

    Parameters
    ----------
    draw : PIL.ImageDraw.ImageDraw
    G : dict
        :func:`geometry` of the frame.
    app : Appearance
    instrument : str
    to_px : callable
        Maps a complex figure point to an ``(x, y)`` tuple in the supersampled image.
    scale : float
        Supersampled pixels per figure unit (line widths).
    """
    P = to_px

    def poly(pts, fill, outline=None):
        draw.polygon([P(p) for p in pts], fill=fill, outline=outline)

    def line(a, b, width, fill):
        w = max(1, int(round(width * scale)))
        draw.line([P(a), P(b)], fill=fill, width=w)
        r = width * scale / 2
        if r < 1.5:  # round caps only where they are visible
            return
        for q in (a, b):
            x, y = P(q)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)

    def circ(c, r, fill, outline=None, width=1):
        x, y = P(c)
        r = r * scale
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=outline, width=width)

    hip = G["hip"]
    # chair: back rest behind the torso, seat, legs
    chair = app.chair
    poly([hip + complex(-34, -50), hip + complex(34, -50), hip + complex(32, 6), hip + complex(-32, 6)], chair)
    for x in (-30, 30):
        line(hip + complex(x, 8), hip + complex(x * 1.05, 70), 3.5, tuple(int(v * 0.7) for v in chair))
    # legs
    for nm in ("l", "r"):
        hp = G[f"hip_{nm}"]
        line(hp, G[f"knee_{nm}"], 15, app.trousers)
        line(G[f"knee_{nm}"], G[f"ankle_{nm}"], 12, app.trousers)
        line(G[f"heel_{nm}"], G[f"foot_{nm}"], 6, (35, 30, 30))
    # torso
    sl, sr, neck = G["shoulder_l"], G["shoulder_r"], G["neck"]
    poly([G["hip_r"] + complex(-4, 2), sr + complex(-2, 3), sr + complex(0, -3), neck + complex(0, -4),
          sl + complex(0, -3), sl + complex(2, 3), G["hip_l"] + complex(4, 2)], app.shirt)
    line(neck + complex(0, -2), G["head"] + complex(0, 8), 9, app.skin)
    # head
    rr = G["head_rot"]
    for nm in ("l", "r"):
        circ(G[f"ear_{nm}"], 3.0, tuple(int(v * 0.9) for v in app.skin))
    head_poly = _ellipse_poly(G["head"], app.head_rx, app.head_ry, cmath.phase(rr), 28)
    if app.hair_style == 1:  # long hair falls behind the head
        poly([G["head"] + rr * complex(-app.head_rx - 3, -4), G["head"] + rr * complex(app.head_rx + 3, -4),
              G["head"] + rr * complex(app.head_rx + 4, app.head_ry + 6), G["head"] + rr * complex(-app.head_rx - 4, app.head_ry + 6)], app.hair)
    poly(head_poly, app.skin)
    if app.hair_style != 2:
        yl = G["hair_line"]
        hair = []
        for k in range(29):
            ang = math.pi + math.pi * k / 28
            y = app.head_ry * math.sin(ang)
            hair.append(G["head"] + rr * complex(1.04 * app.head_rx * math.cos(ang), min(y * 1.04, yl)))
        poly(hair, app.hair)
    # eyes, brows, nose, mouth
    for nm in ("l", "r"):
        top, bot = G[f"eye_{nm}_top"], G[f"eye_{nm}_bottom"]
        outer, inner = G[f"eye_{nm}_outer"], G[f"eye_{nm}_inner"]
        if abs(top - bot) > 1.0:
            poly([outer, top, inner, bot], (250, 250, 250))
            circ(G[f"eye_{nm}"], min(1.5, abs(top - bot) / 2.2), app.eye)
        line(outer, top, 0.8, (40, 30, 30))
        line(top, inner, 0.8, (40, 30, 30))
        if abs(top - bot) <= 1.0:
            line(outer, inner, 1.0, (40, 30, 30))
        bw = tuple(int(v * 0.8) for v in app.hair) if app.hair_style != 2 else (70, 50, 40)
        line(G[f"brow_{nm}_outer"], G[f"brow_{nm}_mid"], 1.5, bw)
        line(G[f"brow_{nm}_mid"], G[f"brow_{nm}_inner"], 1.5, bw)
    line(G["nose_top"], G["nose_tip"], 1.4, tuple(int(v * 0.78) for v in app.skin))
    ml, mr = G["mouth_l"], G["mouth_r"]
    if abs(G["lip_bottom_in"] - G["lip_top_in"]) > 1.2:
        poly([mr, G["lip_top"], ml, G["lip_bottom"]], app.lips)
        poly([mr, G["lip_top_in"], ml, G["lip_bottom_in"]], (60, 20, 25))
    else:
        line(mr, G["lip_top"], 1.3, app.lips)
        line(G["lip_top"], ml, 1.3, app.lips)
    # instrument (behind the arms)
    _draw_instrument(draw, G, app, instrument, P, scale, poly, line, circ)
    # arms
    sleeve = app.shirt
    fore = app.shirt if app.long_sleeves else app.skin
    for nm in ("r", "l"):
        s = G[f"shoulder_{nm}"]
        line(s, G[f"elbow_{nm}"], 8.5, sleeve)
        line(G[f"elbow_{nm}"], G[f"wrist_{nm}"], 7.0, fore)
        _draw_hand(G[f"hand_{nm}"], app, poly, line)
    if instrument == "drums":
        for a, b in G["inst"]["sticks"]:
            line(a, b, 1.6, (220, 200, 150))


def _draw_hand(h: list[complex], app: Appearance, poly, line) -> None:
    skin = app.skin
    dark = tuple(int(v * 0.85) for v in skin)
    poly([h[0], h[1], h[5], h[9], h[13], h[17]], skin)
    for base in (1, 5, 9, 13, 17):
        pts = [h[base], h[base + 1], h[base + 2], h[base + 3]]
        for a, b in zip(pts[:-1], pts[1:]):
            line(a, b, 2.0, skin)
        line(pts[-2], pts[-1], 1.6, dark)


def _draw_instrument(draw, G, app, instrument, P, scale, poly, line, circ) -> None:
    inst = G["inst"]
    col, dark = app.instrument, app.instrument_dark
    if instrument in ("guitar", "violin"):
        for c, rx, ry, a in inst["body"]:
            poly(_ellipse_poly(c, rx, ry, a, 24), col, dark)
        if "hole" in inst:
            circ(inst["hole"][0], inst["hole"][1], (25, 15, 10))
        if "bridge" in inst:
            poly(inst["bridge"], dark)
        poly(inst["neck"], (70, 45, 30))
        poly(inst["head"], dark)
        for a, b in inst["strings"]:
            line(a, b, 0.5, (225, 225, 210))
        if "bow" in inst:
            line(inst["bow"][0], inst["bow"][1], 1.6, (120, 80, 40))
    elif instrument == "flute":
        poly(inst["tube"], col, (90, 90, 90))
        for c, r in inst["keys"]:
            circ(c, r, (120, 120, 130))
    elif instrument == "drums":
        k, r = inst["kick"]
        circ(k, r, col, (30, 30, 30), max(1, int(2 * scale)))
        circ(k, r * 0.55, (235, 235, 225))
        for c, rx, ry, kind in inst["drums"]:
            if kind == "cymbal":
                poly(_ellipse_poly(c, rx, ry, 0.0, 20), (210, 180, 60), (150, 120, 30))
                line(c, c + complex(0, 40), 1.2, (120, 120, 120))
            else:
                h = 10 if kind == "snare" else 12
                poly([c + complex(-rx, 0), c + complex(rx, 0), c + complex(rx, h), c + complex(-rx, h)], col)
                poly(_ellipse_poly(c + complex(0, h), rx, ry, 0.0, 20), col)
                poly(_ellipse_poly(c, rx, ry, 0.0, 20), (235, 235, 230), (120, 120, 120))
    else:
        (x0, y0), (x1, y1) = P(inst["keyboard"][0]), P(inst["keyboard"][1])
        body0, body1 = inst["keyboard"][0] + complex(-3, -4), inst["keyboard"][1] + complex(3, 28)
        poly([body0, complex(body1.real, body0.imag), body1, complex(body0.real, body1.imag)], col)
        draw.rectangle([x0, y0, x1, y1], fill=(245, 245, 240))
        n = 28
        w = (x1 - x0) / n
        for i in range(1, n):
            draw.line([(x0 + i * w, y0), (x0 + i * w, y1)], fill=(150, 150, 150), width=1)
            if i % 7 not in (0, 3):
                draw.rectangle([x0 + i * w - w * 0.3, y0, x0 + i * w + w * 0.3, y0 + (y1 - y0) * 0.6], fill=(20, 20, 20))
