"""``musicperf vibrato MEDIA [--hand ...] [--json] [--frames CSV] [--plot PNG]``: vibrato analysis.

Audio: frame-wise vibrato detection on the pYIN/YIN pitch contour at 100 frames a second
(:mod:`musicperf.analysis.vibrato_frames`): vibrato areas with rate and extent, and a per-frame
track. Video: also Section V-B of 002: the fingering hand (MediaPipe landmarks, a given box, or
a motion search), hand motion (dense optical flow in the KLT-tracked region) -> displacement
curve -> per-note vibrato detection, rate (autocorrelation) and extent (Equation 1), compared
with the audio areas. Heavy imports happen inside :func:`run` only.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "vibrato",
        help="detect vibrato notes and measure their rate and extent from hand motion and audio",
        description=(
            "Vibrato analysis. Audio (an audio file or a video's sound): the pitch contour (pYIN voicing, YIN values, "
            "100 frames a second) is searched frame by frame for a regular 4-9 Hz modulation in a 0.5 s window; "
            "vibrato areas with their rate (Hz) and extent (cents peak to peak) are reported, and --frames writes "
            "the per-frame rate, extent and regularity. "
            "Motion, 002 Section V-B. For a video: the fingering hand's region (--hand: found by "
            "MediaPipe in the first frames, given as X,Y,W,H, or the image area whose motion oscillates most at "
            "4-12 Hz) is tracked (KLT), dense "
            "optical flow is averaged in it, body sway is removed, PCA gives the direction along the "
            "fingerboard, and the integrated 1-D motion X(t) is searched per note for vibrato "
            "(autocorrelation threshold or linear SVM); rate from the autocorrelation (refined by a sinusoid fit), "
            "extent in cents by "
            "Equation 1 against the pitch contour, compared with the audio areas. An audio file gets the audio "
            "analysis only. Notes (motion method) come from the audio (pitch changes and onsets) or from --notes. "
            "A media file without sound is an error unless --audio or --notes is given."
        ),
        epilog="examples:\n  musicperf vibrato flute.wav --json --frames flute-vibrato.csv\n"
               "  musicperf vibrato violin.mp4 --json --plot vibrato.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("media", help="video (motion + audio) or audio file (audio method only)")
    p.add_argument("--audio", metavar="FILE", help="audio for the pitch contour instead of the video's own track")
    p.add_argument("--notes", metavar="FILE", help="notes from a score: .mid, .csv (onset,offset[,midi] s) or .json")
    p.add_argument("--hand", metavar="auto|landmarks|search|X,Y,W,H", default="auto",
                   help="fingering hand region in the first frame: 'landmarks' (MediaPipe hand, else pose wrist, "
                        "in the first frames), 'search' (the most periodic image region in the first 10 s), "
                        "'auto' (landmarks, falling back to search when mediapipe is missing or sees no hand; "
                        "default), or a box X,Y,W,H in pixels")
    p.add_argument("--hand-side", choices=("left", "right"), default="left",
                   help="the performer's fingering hand for --hand landmarks/auto (default left: a right-handed "
                        "violinist or guitarist)")
    p.add_argument("--region", metavar="X,Y,W,H", help="same as --hand X,Y,W,H")
    p.add_argument("--method", choices=("autocorr", "svm"), default="autocorr",
                   help="motion detector: autocorrelation threshold (default) or linear SVM")
    p.add_argument("--threshold", type=float, default=None,
                   help="motion method: autocorrelation peak of X(t) above which a note has vibrato "
                        "(default 0.5); the audio areas have their own thresholds (docs/vibrato.md)")
    p.add_argument("--no-track", action="store_true", help="keep the region fixed (no KLT tracking)")
    p.add_argument("--max-seconds", type=float, metavar="S", help="analyse only the first S seconds")
    p.add_argument("--json", action="store_true",
                   help="print JSON: the audio vibrato areas (start, end, rate_hz, extent_cents, regularity), "
                        "the segments of every method, and their agreement for a video")
    p.add_argument("--frames", metavar="CSV",
                   help="write the per-frame audio track: time_s, f0_cents, voiced, rate_hz, extent_cents, "
                        "regularity, vibrato")
    p.add_argument("--plot", metavar="PNG", help="write a figure: X(t), pitch, notes, motion scatter")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from musicperf.analysis.motion import parse_region
    from musicperf.analysis.vibrato import analyze_media
    from musicperf.errors import ParameterError

    hand = args.region if args.region else args.hand
    if hand not in ("auto", "landmarks", "search"):
        try:
            hand = parse_region(hand)
        except ParameterError:
            raise ParameterError(f"--hand must be auto, landmarks, search or a box X,Y,W,H in pixels, "
                                 f"got {hand!r}") from None
    res = analyze_media(args.media, audio=args.audio, hand=hand, side=args.hand_side, notes_file=args.notes,
                        method=args.method, threshold=args.threshold, track=not args.no_track,
                        max_seconds=args.max_seconds)
    segs = res.segments()
    if args.frames:
        if res.track is None:
            raise ParameterError(f"--frames needs audio, and '{args.media}' gave no pitch (silent?)")
        from musicperf.analysis.vibrato_frames import write_frames_csv

        write_frames_csv(res.track, args.frames)
    if args.plot:
        from musicperf.report.analysis_plots import save_vibrato_plot

        save_vibrato_plot(res, args.plot)
    if args.json:
        out = dict(media=str(args.media), notes=len(res.notes),
                   region=None if res.region is None else [round(v, 1) for v in
                                                          (res.region.x, res.region.y, res.region.w, res.region.h)],
                   region_source=res.region_source or None,
                areas=[a.to_dict() for a in res.areas],
                frames=None if res.track is None else dict(
                    n=int(len(res.track.times)), hop_s=round(res.track.hop, 5),
                    voiced=int(np.isfinite(res.track.cents).sum()), vibrato=int(res.track.vibrato.sum())),
                segments=segs, agreement=res.agreement())
        print(json.dumps(out, indent=1))
    else:
        print(f"{args.media}: {len(res.notes)} notes analysed"
              + (f", hand region {res.region.x:.0f},{res.region.y:.0f},{res.region.w:.0f},{res.region.h:.0f}"
                 f" ({res.region_source})" if res.region is not None else ", audio only"))
        for s in segs:
            rate = f"{s['rate_hz']:.2f} Hz" if s["rate_hz"] is not None else "rate ?"
            ext = f"{s['extent_cents']:.0f} cents" if s["extent_cents"] is not None else "extent ?"
            print(f"  {s['start']:8.2f} - {s['end']:8.2f} s  {rate:>9}  {ext:>10}  {s['method']}")
        if not segs:
            print("  no vibrato found")
        agr = res.agreement()
        if agr is not None:
            cov = lambda v: "-" if v is None else f"{100 * v:.0f} %"  # noqa: E731
            print(f"  motion vibrato {agr['motion_s']:.1f} s, audio vibrato {agr['audio_s']:.1f} s, both "
                  f"{agr['both_s']:.1f} s ({cov(agr['motion_covered'])} of the motion's, "
                  f"{cov(agr['audio_covered'])} of the audio's)")
    if args.frames:
        print(f"wrote {args.frames}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
