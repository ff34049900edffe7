"""``musicperf experiment table7|table8 DATA... -o DIR``: the experiments of paper 001.

Heavy imports (torch, PyAV, librosa) happen inside :func:`run` only.
"""

from __future__ import annotations

import argparse
import sys


def _csv_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "experiment",
        help="run the experiments of 001: Table 7 (SM, SM+BB, SM+BB+TS, Bimodal) or Table 8 (leave one video out)",
        description=(
            "Reproduce the experiment grid of Simistira Liwicki et al. (001) on annotated videos. "
            "table7: the methods SM, SM+BB, SM+BB+TS and Bimodal+SM+BB+TS for 18 gestures and 7 "
            "super-classes, on one video (random 80/10/10 split of its samples) and on all videos "
            "(random 80/10/10 split of all samples). table8: SM+BB+TS, leave one video out, 7 "
            "super-classes. Writes TABLE.csv/.md and per-class tables like A1-A5 into DIR; "
            "rerunning skips the cells already finished. The backbone is frozen and its pooled "
            "features are cached; only the classifier (and the audio network) is trained."
        ),
    )
    p.add_argument("table", choices=("table7", "table8"), help="which table of 001")
    p.add_argument("data", nargs="+", metavar="DATA",
                   help="VIDEO=ANNOTATIONS, a folder (e.g. one written by 'musicperf synth'), a manifest.yaml or a video")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="results folder (created; reruns resume)")
    p.add_argument("--backbone", default=None, help="resnet10/18/34/50 or r3d_18 (default resnet34, 001's)")
    p.add_argument("--width-factor", type=float, default=None, help="scale the backbone widths (default 1)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="Kinetics checkpoint for the backbone (default: random weights, stated in every table)")
    p.add_argument("--size", type=int, default=None, help="frame size in pixels (default 112)")
    p.add_argument("--epochs", type=int, default=None, help="maximum classifier epochs (default 100)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs (default 20)")
    p.add_argument("--finetune", choices=("none", "conv5"), default="none",
                   help="none: frozen backbone, classifier only (default); conv5: the papers' setting, "
                        "conv1-conv4 frozen and cached, conv5 trained with the classifier")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits and of the training (default 0)")
    p.add_argument("--backbone-seed", type=int, default=0, help="seed of the random backbone weights (default 0)")
    p.add_argument("--one-video", type=int, default=0, metavar="I",
                   help="index of the video for the 'one video' rows (default 0: the first given)")
    p.add_argument("--taxonomies", type=_csv_list, default=None, metavar="NAME[,NAME]",
                   help="gestures18,superclasses7 (default both for table7, superclasses7 for table8)")
    p.add_argument("--methods", type=_csv_list, default=None, metavar="M[,M]",
                   help="subset of SM,SM+BB,SM+BB+TS,Bimodal+SM+BB+TS (default all for table7, SM+BB+TS for table8)")
    p.add_argument("--features", default=None, metavar="DIR",
                   help="feature cache folder to share between runs (default DIR/features)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: resnet10 at width x0.25, 64x64 frames, 10 epochs (explicit options win)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicperf.tasks.experiments import ExperimentConfig

    quick = {"backbone": "resnet10", "width_factor": 0.25, "size": 64, "epochs": 10} if args.quick else {}
    given = {"backbone": args.backbone, "width_factor": args.width_factor, "size": args.size, "epochs": args.epochs,
             "patience": args.patience}
    kw = {**quick, **{k: v for k, v in given.items() if v is not None}}
    config = ExperimentConfig(weights=args.weights, seed=args.seed, backbone_seed=args.backbone_seed, one_video=args.one_video,
                              finetune=args.finetune, **kw)

    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    from musicperf import api

    md = api.experiment(args.table, args.data, args.output, config=config, taxonomies=args.taxonomies,
                        methods=args.methods, progress=say, features_dir=args.features)
    print(md.read_text(encoding="utf-8"), end="")
    print(f"wrote {md}, {md.with_suffix('.csv')} and the per-class tables tableA_*.md/.csv in {args.output}")
    return 0
