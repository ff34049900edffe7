"""Speed of the video backbone and of conv5 fine-tuning from cached conv4 features (CPU).

Prints clips per second of the 3D ResNet forward pass (fp32 eager, batch 1 and 8; fp32 and bfloat16
autocast + channels_last_3d; optionally torch.compile with freezing), the numerical error of the
fast modes against float64, the time of one layer4 + head training step from cached layer3
activations (fp32 and bfloat16), and seconds per training epoch from cached features.

Random weights (no pretrained weights can be downloaded); speed does not depend on them.

Usage::

    .venv/bin/python benchmarks/bench_backbone.py            # full run, about 2-3 minutes
    .venv/bin/python benchmarks/bench_backbone.py --quick    # smaller repeats, no compile
    .venv/bin/python benchmarks/bench_backbone.py --compile  # add torch.compile (slow to compile)
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import torch


print = functools.partial(print, flush=True)  # noqa: A001 - progress shows under pipes


def timeit(fn, repeats: int, warmup: int = 1) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def bf16_is_native() -> tuple[bool, float]:
    """Whether a bf16 3D convolution is at most 1.5x slower than fp32 (False where it is emulated)."""
    # the shape of a ResNet-34 layer1 convolution on one 16x112x112 clip
    conv = torch.nn.Conv3d(64, 64, 3, padding=1, bias=False).eval()
    x = torch.rand(1, 64, 8, 28, 28)
    with torch.no_grad():
        t32 = timeit(lambda: conv(x), 2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            t16 = timeit(lambda: conv(x), 1)
    return t16 <= 1.5 * t32, t16 / t32


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=34, choices=[10, 18, 34, 50])
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 repeats, no compile, small epoch")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (freezing + bf16 + channels_last_3d)")
    ap.add_argument("--force-bf16", action="store_true", help="time bf16 modes even where bf16 is emulated (very slow)")
    ap.add_argument("--epoch-samples", type=int, default=256, help="samples in the timed epoch from cached features")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    from musicperf.models import GestureNet, build_backbone
    from musicperf.train.losses import mse_loss

    torch.manual_seed(0)
    net = build_backbone(f"resnet{args.depth}", n_classes=400).eval()
    out: dict = {"depth": args.depth, "threads": torch.get_num_threads(), "torch": torch.__version__}
    print(f"3D ResNet-{args.depth}, random weights, input 3x16x112x112, {torch.get_num_threads()} threads, torch {torch.__version__}")

    clips = {b: torch.rand(b, 3, 16, 112, 112) for b in (1, 8)}
    bf16_ok, probe = bf16_is_native()
    print(f"bfloat16 probe: a layer1 convolution is {probe:.1f}x the fp32 time")
    out["bf16_probe_slowdown"] = probe
    if not bf16_ok:
        print(f"bfloat16: a probe convolution runs {probe:.0f}x slower than fp32 (no native bf16 on this CPU, "
              f"capability {torch.backends.cpu.get_cpu_capability()}); bf16 modes skipped (--force-bf16 to time them anyway)")
    bf16_ok = bf16_ok or args.force_bf16
    modes: dict[str, float] = {}
    with torch.no_grad():
        ref64 = net.double().forward_features(clips[8].double())
        net.float()
        for b in (1, 8):
            s = timeit(lambda: net(clips[b]), repeats)
            out[f"fp32_eager_b{b}_s_per_clip"] = s / b
            print(f"fp32 eager                     batch {b}: {s / b:.4f} s/clip  ({b / s:.2f} clips/s)")
        modes["fp32 eager"] = out["fp32_eager_b8_s_per_clip"]
        err = rel_err(net.forward_features(clips[8]), ref64)
        out["fp32_rel_err_vs_fp64"] = err
        print(f"  pooled features rel. error vs float64: {err:.1e}")

        cl = net.to(memory_format=torch.channels_last_3d)
        x_cl = clips[8].contiguous(memory_format=torch.channels_last_3d)

        def run_cl(amp: bool):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                return cl.forward_features(x_cl)

        for amp in ((False, True) if bf16_ok else (False,)):
            name = ("bf16 autocast" if amp else "fp32") + " + channels_last_3d"
            s = timeit(lambda: run_cl(amp), repeats)
            err = rel_err(run_cl(amp).float(), ref64)
            key = "bf16_cl3d" if amp else "fp32_cl3d"
            out[f"{key}_b8_s_per_clip"], out[f"{key}_rel_err_vs_fp64"] = s / 8, err
            modes[name] = s / 8
            print(f"{name:30s} batch 8: {s / 8:.4f} s/clip  ({8 / s:.2f} clips/s); rel. error vs float64 {err:.1e}")

        if args.compile and not args.quick:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True
            comp = torch.compile(cl.forward_features)
            for amp in ((False, True) if bf16_ok else (False,)):
                def compiled(amp=amp):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                        return comp(x_cl)

                t0 = time.perf_counter()
                res = compiled()
                ctime = time.perf_counter() - t0
                s = timeit(compiled, repeats)
                err = rel_err(res.float(), ref64)
                name = "compile+freezing " + ("bf16" if amp else "fp32") + " cl3d"
                key = "compiled_bf16" if amp else "compiled_fp32"
                out[f"{key}_b8_s_per_clip"], out[f"{key}_rel_err_vs_fp64"], out[f"{key}_compile_s"] = s / 8, err, ctime
                modes[name] = s / 8
                print(f"{name:30s} batch 8: {s / 8:.4f} s/clip  ({8 / s:.2f} clips/s); rel. error {err:.1e}; compiled in {ctime:.0f} s")
        net = net.to(memory_format=torch.contiguous_format)
    best = min(modes, key=modes.get)
    out["fastest_mode"] = best
    print(f"fastest numerically checked mode at batch 8: {best} ({modes[best]:.4f} s/clip, {1 / modes[best]:.2f} clips/s)")

    # conv5 fine-tuning from cached conv4 activations (the papers' setting)
    gnet = GestureNet(net, 18, trainable="conv5")
    gnet.input_stage = "conv4"
    gnet.train()
    with torch.no_grad():
        h8 = gnet.conv4(clips[8]).half()
    y8 = (torch.rand(8, 18) > 0.8).float()
    opt = torch.optim.Adam([p for p in gnet.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-2)

    def step(amp: bool, h=h8, y=y8):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = gnet(h.float())
        loss = mse_loss(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    amps = (False, True) if bf16_ok else (False,)
    for amp in amps:
        s = timeit(lambda: step(amp), repeats)
        key = "bf16" if amp else "fp32"
        out[f"train_step_b8_{key}_s"] = s
        print(f"layer4 + head training step from cached layer3, batch 8, {key}: {s:.3f} s")

    n = 64 if args.quick else args.epoch_samples
    feats = h8.repeat((n + 7) // 8, 1, 1, 1, 1)[:n]
    ys = (torch.rand(n, 18) > 0.8).float()
    for amp in amps:
        t = time.perf_counter()
        for i in range(0, n, 32):
            step(amp, feats[i:i + 32], ys[i:i + 32])
        s = time.perf_counter() - t
        key = "bf16" if amp else "fp32"
        out[f"epoch_{key}_s_per_{n}"] = s
        out[f"epoch_{key}_s_per_2758"] = s * 2758 / n
        print(f"epoch from cached features, batch 32, {key}: {s:.2f} s for {n} samples "
              f"-> {s * 2758 / n:.0f} s for the 2758 training samples of 001 (Table 6, all videos)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
