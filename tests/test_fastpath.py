"""The fast labelling path: decoding, background prefetch, backbone precision choice, feature cache."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from musicperf.errors import ParameterError  # noqa: E402
from musicperf.features import fastpath  # noqa: E402


def _write_noise_video(path: Path, n: int = 20, size=(48, 64), fps: int = 10, seed: int = 0) -> Path:
    import av

    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.height, s.width = size
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "0", "preset": "ultrafast"}
        base = rng.integers(0, 256, (size[0] // 4, size[1] // 4, 3), dtype=np.uint8)
        for i in range(n):
            img = np.kron(np.roll(base, i, axis=1), np.ones((4, 4, 1), np.uint8))
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def test_decode_frames_matches_the_video_reader(tmp_path):
    from musicperf.io.video import VideoReader

    video = _write_noise_video(tmp_path / "noise.mp4")
    fast = list(fastpath.decode_frames(video, size=(24, 32)))
    with VideoReader(video, size=(24, 32)) as r:
        ref = list(r.frames())
    assert [t for t, _ in fast] == [t for t, _ in ref]
    np.testing.assert_array_equal(np.stack([f for _, f in fast]), np.stack([f for _, f in ref]))
    # The OpenCV route (resizing the YUV planes) agrees to a few grey levels on average; random
    # colour blocks are its worst case (chroma is averaged before the conversion, not after).
    cv = np.stack([f for _, f in fastpath.decode_frames(video, size=(24, 32), method="opencv")]).astype(float)
    assert cv.shape == (20, 24, 32, 3)
    assert np.abs(cv - np.stack([f for _, f in ref])).mean() < 12
    # A window of time.
    part = [t for t, _ in fastpath.decode_frames(video, size=(24, 32), start=0.5, end=1.0)]
    assert part and min(part) >= 0.5 - 1e-9 and max(part) < 1.0
    with pytest.raises(ParameterError, match="method"):
        next(fastpath.decode_frames(video, size=None, method="gpu"))


def test_prefetch_keeps_order_overlaps_and_reraises():
    assert list(fastpath.prefetch(iter(range(50)), depth=3)) == list(range(50))

    def slow():
        for i in range(4):
            time.sleep(0.05)
            yield i

    # Producer and consumer each take 0.05 s per item: overlapped, 4 items take ~0.25 s, not 0.4 s.
    t0 = time.perf_counter()
    for _ in fastpath.prefetch(slow(), depth=2):
        time.sleep(0.05)
    assert time.perf_counter() - t0 < 0.38

    def broken():
        yield 1
        raise ValueError("bad frame 2")

    it = fastpath.prefetch(broken())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad frame 2"):
        next(it)
    with pytest.raises(ParameterError, match="depth"):
        list(fastpath.prefetch([1], depth=0))


def test_prefetch_stops_its_thread_when_the_consumer_stops():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    before = threading.active_count()
    for x in fastpath.prefetch(endless(), depth=2):
        if x == 3:
            break
    time.sleep(0.3)
    assert threading.active_count() == before
    assert len(produced) <= 3 + 2 + 2  # consumed + queued + in hand


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own user cache directory and no forced numeric mode: nothing is read
    from or written to the real ~/.cache, and choices of earlier tests are forgotten."""
    monkeypatch.setenv("MUSICPERF_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.delenv("MUSICPERF_NUMERIC_MODE", raising=False)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "unset")  # recorded, so the original state comes back
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")  # (compiling sets it)
    fastpath._CHOSEN.clear()
    yield
    fastpath._CHOSEN.clear()


@pytest.fixture(scope="module")
def tiny_net():
    import torch

    from musicperf.models import build_backbone, get_normalization

    torch.manual_seed(0)
    net = build_backbone("resnet10", width_factor=0.125, n_classes=0).eval()
    return net, get_normalization("hara2018")


def test_backbone_runner_chooses_a_mode_within_tolerance(tiny_net, rng):
    import torch

    net, norm = tiny_net
    clips = rng.integers(0, 256, (3, 4, 16, 16, 3), dtype=np.uint8)
    with torch.inference_mode():
        x = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float() / 255.0
        ref = net.forward_features(norm.apply(x)).numpy()
    runner = fastpath.BackboneRunner(net, norm, probe=1, try_bf16=True)
    choice = runner.choose(clips)
    out = runner(clips)
    assert choice.mode in fastpath.MODES
    assert set(choice.seconds_per_clip) == set(fastpath.MODES)
    assert choice.rel_error["fp32"] == 0.0
    assert choice.rel_error[choice.mode] <= fastpath.BF16_TOLERANCE
    assert out.shape == (3, net.feature_dim) and out.dtype == np.float32
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) <= fastpath.BF16_TOLERANCE
    # bf16 is measurably less exact than fp32: a tolerance below its error refuses it.
    assert choice.rel_error["bf16-cl3d"] > 1e-4
    strict = fastpath.BackboneRunner(net, norm, tolerance=1e-4, try_bf16=True)
    strict.choose(clips[:2])
    assert strict.choice.mode != "bf16-cl3d"
    # Without native bf16 kernels, bf16 is not even probed (emulated, it is several times slower).
    default = fastpath.BackboneRunner(net, norm)
    default.choose(clips[:1])
    assert ("bf16-cl3d" in default.choice.seconds_per_clip) == fastpath.bf16_supported()
    # A fixed mode skips the probe.
    fixed = fastpath.BackboneRunner(net, norm, mode="fp32")
    np.testing.assert_allclose(fixed(clips), ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ParameterError, match="mode"):
        fastpath.BackboneRunner(net, norm, mode="fp8")
    with pytest.raises(ParameterError, match="shape"):
        fixed(clips[0])


def test_relabelling_with_a_new_head_reuses_cached_features(tmp_path):
    from _workflow_video import write_performance

    from musicperf.tasks import gestures
    from musicperf.tasks.gestures import GestureConfig

    video, eaf, _ = write_performance(tmp_path / "v", "perf", 6.0, seed=1)
    cfg = GestureConfig(size=(32, 40), grid=4, epochs=3, hidden=(16,), folds=2, roi="full")
    gestures.train_model([f"{video}={eaf}"], tmp_path / "m1", until=4.0, config=cfg)
    gestures.train_model([f"{video}={eaf}"], tmp_path / "m2", until=4.0,
                         config=GestureConfig(**{**cfg.to_dict(), "epochs": 5, "seed": 1}))
    m1 = gestures.load_gesture_model(tmp_path / "m1")
    m2 = gestures.load_gesture_model(tmp_path / "m2")
    assert m1.model_id != m2.model_id
    cache = tmp_path / "cache"
    p1, first, info = gestures.predict_video(m1, video, feature_cache=cache)
    assert not info["feature_cache_hit"] and len(list(cache.iterdir())) == 1
    p_nocache, _, _ = gestures.predict_video(m1, video)
    np.testing.assert_allclose(p1, p_nocache, atol=1e-6)
    # Another head on the same features: read from the cache, no decoding.
    calls = []
    real = gestures.iter_clips

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    gestures.iter_clips = counting
    try:
        p2, _, info2 = gestures.predict_video(m2, video, feature_cache=cache)
    finally:
        gestures.iter_clips = real
    assert info2["feature_cache_hit"] and not calls
    assert p2.shape == p1.shape
    # Other features (another grid) are another entry.
    m3_cfg = GestureConfig(**{**cfg.to_dict(), "grid": 3})
    gestures.train_model([f"{video}={eaf}"], tmp_path / "m3", until=4.0, config=m3_cfg)
    _, _, info3 = gestures.predict_video(gestures.load_gesture_model(tmp_path / "m3"), video, feature_cache=cache)
    assert not info3["feature_cache_hit"] and len(list(cache.iterdir())) == 2


def test_interpolate_samples_is_linear_between_samples_and_never_invents_missing_points():
    v = np.array([[0.0, 0.0], [2.0, np.nan], [4.0, 4.0]], dtype=np.float32)
    out = fastpath.interpolate_samples(v, np.array([0, 2, 4]), 6)
    np.testing.assert_allclose(out[:, 0], [0, 1, 2, 3, 4, 4])  # last sample held to the end
    assert np.isnan(out[1:4, 1]).all() and out[0, 1] == 0 and out[4, 1] == 4
    assert out.dtype == np.float32
    # Landmark-shaped arrays (T, J, 3) interpolate per point.
    pts = np.stack([np.full((5, 3), k, np.float32) for k in (0.0, 3.0)])
    mid = fastpath.interpolate_samples(pts, np.array([0, 3]), 4)
    np.testing.assert_allclose(mid[:, 0, 0], [0, 1, 2, 3])
    with pytest.raises(ParameterError, match="one value per sampled frame"):
        fastpath.interpolate_samples(v, np.array([0, 1]), 4)


def test_backbone_runner_chooses_online_on_real_batches(tiny_net, rng):
    import torch

    net, norm = tiny_net
    batches = [rng.integers(0, 256, (2, 4, 16, 16, 3), dtype=np.uint8) for _ in range(8)]
    fastpath._CHOSEN.clear()
    runner = fastpath.BackboneRunner(net, norm, try_bf16=True)
    outs = []
    for k, b in enumerate(batches):
        outs.append(runner(b))
        if k < 5:  # 3 modes x (warm-up, timed) batches
            assert runner.choice is None
    assert runner.choice is not None and set(runner.choice.seconds_per_clip) == set(fastpath.MODES)
    assert 0 < runner.choice.rel_error["bf16-cl3d"] <= 0.1
    with torch.inference_mode():
        for b, o in zip(batches, outs):  # every batch's output is a real result
            x = torch.from_numpy(b).permute(0, 4, 1, 2, 3).float() / 255.0
            ref = net.to(memory_format=torch.contiguous_format).forward_features(norm.apply(x)).numpy()
            assert np.linalg.norm(o - ref) / np.linalg.norm(ref) <= 0.1
    # The choice is remembered for the same model and input shape.
    again = fastpath.BackboneRunner(net, norm, try_bf16=True)
    again(batches[0])
    assert again.choice is runner.choice


@pytest.mark.parametrize("try_bf16", [False, True], ids=["fp32-candidates", "with-bf16"])
def test_compiled_backbone_matches_eager(tiny_net, rng, try_bf16):
    """``compile=True`` (``musicperf label --compile``): inductor with freezing gives the eager
    fp32 features (checked before it is used).

    The candidate set is pinned (``try_bf16``): left to the CPU, a machine with native bf16
    (AVX-512 BF16 / AMX) times three candidates and an AVX2-only one two. Both sets are tested.
    """
    import copy

    import torch

    net, norm = tiny_net
    clips = rng.integers(0, 256, (2, 4, 16, 16, 3), dtype=np.uint8)
    eager = fastpath.BackboneRunner(net, norm, mode="fp32")(clips)
    compiled = fastpath.BackboneRunner(copy.deepcopy(net), norm, mode="fp32", compile=True)
    out = compiled(clips)
    assert hasattr(compiled._fn, "_torchdynamo_orig_callable")  # really compiled, not silently eager
    # Compile seconds are reported apart, and the graphs go to the (test's) user cache directory.
    assert compiled.compile_seconds is not None and compiled.compile_seconds > 0
    assert compiled.compile_cache == fastpath.compile_cache_dir() and "user-cache" in str(compiled.compile_cache)
    assert any(compiled.compile_cache.iterdir())
    # A compiler failure (raised on the first call, where torch.compile really compiles) falls
    # back to eager mode with a warning instead of failing the video.
    broken = fastpath.BackboneRunner(copy.deepcopy(net), norm, mode="fp32", compile=True)
    real_compile = torch.compile

    def failing(fn, *a, **k):
        def call(*args, **kwargs):
            raise RuntimeError("no C++ compiler")
        return call

    torch.compile = failing
    try:
        np.testing.assert_allclose(broken(clips), eager, rtol=1e-5, atol=1e-6)
    finally:
        torch.compile = real_compile
    assert broken.compile is False and broken.compile_seconds is None
    assert np.linalg.norm(out - eager) / np.linalg.norm(eager) < 1e-4
    # Automatic mode: the candidates are timed eagerly, only the chosen mode is compiled, once.
    calls = []
    real = torch.compile

    def counting(fn, *a, **k):
        calls.append(fn)
        return real(fn, *a, **k)

    n_candidates = len(fastpath.MODES) if try_bf16 else 2
    fastpath._CHOSEN.clear()
    torch.compile = counting
    try:
        # tolerance 1.0: a bf16 candidate may win on speed; its accuracy is not what is tested here
        auto = fastpath.BackboneRunner(copy.deepcopy(net), norm, compile=True, try_bf16=try_bf16,
                                       tolerance=1.0 if try_bf16 else fastpath.BF16_TOLERANCE)
        trials = 2 * n_candidates  # each candidate: warm-up + timed batch, all eager
        for i in range(trials):
            auto(clips)
            assert calls == [], f"compiled during trial batch {i}"
        assert auto.choice is not None and set(auto.choice.seconds_per_clip) == set(fastpath.MODES[:n_candidates])
        for _ in range(2):  # then the chosen mode, compiled once
            got = auto(clips)
    finally:
        torch.compile = real
        torch._dynamo.reset()
        fastpath._CHOSEN.clear()
    assert len(calls) == 1
    tol = 1e-4 if auto.choice.mode.startswith("fp32") else 0.05
    assert np.linalg.norm(got - eager) / np.linalg.norm(eager) < tol


# --------------------------------------------------------------------------- numeric mode, once per machine
def _count_trials(monkeypatch):
    """Record every forward pass of every runner (mode per call)."""
    calls = []
    real = fastpath.BackboneRunner._forward

    def counting(self, x, mode):
        calls.append(mode)
        return real(self, x, mode)

    monkeypatch.setattr(fastpath.BackboneRunner, "_forward", counting)
    return calls


def test_numeric_mode_choice_is_cached_per_machine_and_read_back(tiny_net, rng, tmp_path, monkeypatch):
    net, norm = tiny_net
    batch = rng.integers(0, 256, (2, 4, 16, 16, 3), dtype=np.uint8)
    folder = tmp_path / "user-cache" / "numeric-mode"
    calls = _count_trials(monkeypatch)
    first = fastpath.BackboneRunner(net, norm, try_bf16=False)
    for _ in range(4):  # 2 candidates (pinned: no bf16) x (warm-up, timed)
        first(batch)
    assert first.choice is not None and first.choice.source in ("measured", "capability")
    assert calls == ["fp32", "fp32", "fp32-cl3d", "fp32-cl3d"]
    files = list(folder.glob("*.json"))
    assert len(files) == 1
    import json

    record = json.loads(files[0].read_text())
    assert record["format"] == "musicperf-numeric-mode" and record["choice"]["mode"] == first.choice.mode
    assert record["key"]["batch_shape"] == [2, 4, 16, 16, 3] and record["key"]["try_bf16"] is False
    # A new process (the in-process memory forgotten) reads it: the first batch is already real work.
    fastpath._CHOSEN.clear()
    calls.clear()
    second = fastpath.BackboneRunner(net, norm, try_bf16=False)
    out = second(batch)
    assert second.choice.source == "cache" and second.choice.mode == first.choice.mode
    assert second.choice.seconds_per_clip == first.choice.seconds_per_clip
    assert calls == [first.choice.mode] and out.shape == (2, net.feature_dim)
    # cache=False measures again and writes nothing.
    fastpath._CHOSEN.clear()
    calls.clear()
    fresh = fastpath.BackboneRunner(net, norm, try_bf16=False, cache=False)
    fresh(batch)
    assert fresh.choice is None and calls == ["fp32"]


def test_numeric_mode_cache_is_invalidated_by_a_changed_key(tiny_net, rng, monkeypatch):
    net, norm = tiny_net
    batch = rng.integers(0, 256, (2, 4, 16, 16, 3), dtype=np.uint8)
    runner = fastpath.BackboneRunner(net, norm, try_bf16=False)
    for _ in range(4):
        runner(batch)
    key = runner.machine_key(batch)
    assert fastpath.load_cached_choice(key) is not None
    # Another CPU (model or flags): the stored choice does not apply.
    real = fastpath.cpu_info
    monkeypatch.setattr(fastpath, "cpu_info", lambda: {**real(), "model": "Another CPU", "amx": True})
    fastpath._CHOSEN.clear()
    other = fastpath.BackboneRunner(net, norm, try_bf16=False)
    assert other.machine_key(batch) != key and fastpath.load_cached_choice(other.machine_key(batch)) is None
    other(batch)
    assert other.choice is None  # measuring again
    monkeypatch.setattr(fastpath, "cpu_info", real)
    # Another batch shape or torch version: likewise.
    assert fastpath.load_cached_choice({**key, "batch_shape": [4, 4, 16, 16, 3]}) is None
    assert fastpath.load_cached_choice({**key, "torch": "0.0.1"}) is None
    assert fastpath.load_cached_choice(key) is not None


def test_a_corrupt_numeric_mode_cache_file_is_ignored_and_rewritten(tiny_net, rng, tmp_path, caplog):
    net, norm = tiny_net
    batch = rng.integers(0, 256, (2, 4, 16, 16, 3), dtype=np.uint8)
    runner = fastpath.BackboneRunner(net, norm, try_bf16=False)
    key = runner.machine_key(batch)
    path = fastpath.save_cached_choice(key, fastpath.PrecisionChoice("fp32"))
    assert fastpath.load_cached_choice(key).mode == "fp32"
    for text in ("{not json", '{"format": "musicperf-numeric-mode", "key": {}, "choice": {"mode": "fp32"}}',
                 json_dumps_with_mode(key, "fp8"), ""):
        path.write_text(text)
        with caplog.at_level("WARNING", logger="musicperf.features.fastpath"):
            assert fastpath.load_cached_choice(key) is None
        assert "ignoring numeric-mode cache file" in caplog.text
        caplog.clear()
    fastpath._CHOSEN.clear()
    for _ in range(4):  # measured again, then the file is valid again
        runner(batch)
    assert runner.choice.source != "cache"
    assert fastpath.load_cached_choice(key).mode == runner.choice.mode


def json_dumps_with_mode(key, mode):
    import json

    return json.dumps({"format": "musicperf-numeric-mode", "version": 1, "key": key, "choice": {"mode": mode}})


def test_forced_numeric_mode_skips_the_choice(tiny_net, rng, tmp_path, monkeypatch):
    net, norm = tiny_net
    batch = rng.integers(0, 256, (2, 4, 16, 16, 3), dtype=np.uint8)
    calls = _count_trials(monkeypatch)
    for setting, mode in (("fp32", "fp32"), ("bf16", "bf16-cl3d"), ("fp32-cl3d", "fp32-cl3d")):
        calls.clear()
        runner = fastpath.BackboneRunner(net, norm, mode=setting)
        assert runner.choice.mode == mode and runner.choice.source == "setting"
        runner(batch)
        assert calls == [mode]  # one forward pass in the forced mode, nothing timed
    # The environment variable forces it where the setting says auto (or nothing).
    monkeypatch.setenv("MUSICPERF_NUMERIC_MODE", "bf16")
    env = fastpath.BackboneRunner(net, norm)
    assert env.choice.mode == "bf16-cl3d" and env.choice.source == "environment"
    assert fastpath.BackboneRunner(net, norm, mode="fp32").choice.source == "setting"  # a forced setting wins
    assert not (tmp_path / "user-cache" / "numeric-mode").exists()


def test_numeric_mode_setting_and_environment_variable_parsing(monkeypatch):
    r = fastpath.resolve_numeric_mode
    assert r() == ("auto", "default") and r("auto") == ("auto", "default") and r(None) == ("auto", "default")
    assert r("fp32") == ("fp32", "setting") and r("BF16") == ("bf16-cl3d", "setting")
    assert r(" bf16-cl3d ") == ("bf16-cl3d", "setting") and r("fp32-cl3d") == ("fp32-cl3d", "setting")
    with pytest.raises(ParameterError, match="numeric mode must be one of auto, fp32, bf16"):
        r("fp16")
    monkeypatch.setenv("MUSICPERF_NUMERIC_MODE", " Fp32 ")
    assert r() == ("fp32", "environment") and r("auto") == ("fp32", "environment")
    assert r("bf16") == ("bf16-cl3d", "setting")
    monkeypatch.setenv("MUSICPERF_NUMERIC_MODE", "")
    assert r() == ("auto", "default")
    monkeypatch.setenv("MUSICPERF_NUMERIC_MODE", "auto")
    assert r() == ("auto", "environment")
    monkeypatch.setenv("MUSICPERF_NUMERIC_MODE", "int8")
    with pytest.raises(ParameterError, match="environment variable MUSICPERF_NUMERIC_MODE must be one of"):
        r()
    with pytest.raises(ParameterError, match="MUSICPERF_NUMERIC_MODE"):
        fastpath.BackboneRunner(object())


def test_ambiguous_timings_keep_the_mode_the_cpu_predicts():
    d = fastpath.decide_mode
    errs = {"fp32": 0.0, "fp32-cl3d": 0.0, "bf16-cl3d": 0.01}
    # Native bf16: bf16 within 10 % of the fastest is kept; clearly slower it is not.
    assert d({"fp32": 0.100, "fp32-cl3d": 0.095, "bf16-cl3d": 0.103}, errs, tolerance=0.03,
             bf16_native=True) == ("bf16-cl3d", "capability")
    assert d({"fp32": 0.100, "fp32-cl3d": 0.080, "bf16-cl3d": 0.095}, errs, tolerance=0.03,
             bf16_native=True) == ("fp32-cl3d", "measured")
    assert d({"fp32": 0.100, "fp32-cl3d": 0.090, "bf16-cl3d": 0.050}, errs, tolerance=0.03,
             bf16_native=True) == ("bf16-cl3d", "measured")
    # bf16 failing its numerical check is never chosen; fp32-cl3d is then the preference.
    assert d({"fp32": 0.100, "fp32-cl3d": 0.104, "bf16-cl3d": 0.01}, {**errs, "bf16-cl3d": 0.2}, tolerance=0.03,
             bf16_native=True) == ("fp32-cl3d", "capability")
    # Without native bf16: fp32-cl3d unless plain fp32 is clearly faster.
    assert d({"fp32": 0.100, "fp32-cl3d": 0.108}, errs, tolerance=0.03, bf16_native=False) == ("fp32-cl3d", "capability")
    assert d({"fp32": 0.100, "fp32-cl3d": 0.130}, errs, tolerance=0.03, bf16_native=False) == ("fp32", "measured")
    assert d({}, {}, tolerance=0.03, bf16_native=True) == ("fp32", "measured")


def test_user_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    from musicperf.features.cache import default_cache_dir, user_cache_dir

    monkeypatch.delenv("MUSICPERF_CACHE", raising=False)
    monkeypatch.setenv("MUSICPERF_CACHE_DIR", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine" and default_cache_dir() == tmp_path / "mine" / "features"
    assert fastpath.numeric_mode_cache_dir() == tmp_path / "mine" / "numeric-mode"
    assert fastpath.compile_cache_dir() == tmp_path / "mine" / "torchinductor"
    monkeypatch.delenv("MUSICPERF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "musicperf"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "musicperf"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # the user's own choice wins
    assert fastpath.compile_cache_dir() == tmp_path / "inductor"
    # torch's own default, which torch writes into the variable itself, is not the user's choice.
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    assert fastpath.compile_cache_dir() == tmp_path / "home" / ".cache" / "musicperf" / "torchinductor"


def test_cpu_info_and_its_one_line_description():
    info = fastpath.cpu_info()
    assert info["model"] and isinstance(info["flags"], list) and info["machine"]
    line = fastpath.describe_cpu({**info, "avx2": True, "avx512": False, "avx512_bf16": False, "amx": True})
    assert "AVX2 yes, AVX-512 no, AVX-512 BF16 no, AMX yes" in line
