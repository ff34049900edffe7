"""Player-to-track association (002 V-A) restricted to the frames in which each player plays."""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.analysis import association as AS
from musicperf.errors import ParameterError


def _bow(onsets, T, rng, amp=2.0):
    """Mean motion vector of a bow that reverses at every onset frame."""
    v = np.zeros((T, 2))
    sign, on = 1.0, set(int(o) for o in onsets)
    for i in range(T):
        if i in on:
            sign = -sign
        v[i] = [sign * amp, 0.3]
    return v + rng.normal(0, 0.1, v.shape)


def test_resting_players_idle_motion_is_matched_to_no_track(rng):
    """Player 2 plays track 2 in the first 4.8 s only, then rests and nods along with player 1
    (its idle motion follows track 1's onsets). Over the whole video player 2 then correlates
    better with track 1 than with its own; over the frames where it plays, with its own."""
    T = 450
    on1 = np.sort(rng.choice(np.arange(5, T - 5), 60, replace=False))
    on2 = np.sort(rng.choice(np.arange(5, 120), 15, replace=False))
    vel = np.zeros((T, 2, 2))
    vel[:, 0] = _bow(on1, T, rng)
    vel[:, 1] = _bow(on2, T, rng)
    vel[120:, 1] = _bow(on1[on1 >= 120] + 1, T, rng)[120:]  # nodding with the partner
    tracks = np.stack([AS.onsets_to_envelope(on / 25.0 + 0.001, 25.0, T) for on in (on1, on2)], 1)
    motion = AS.motion_onset_strength(vel)
    whole = AS.association_matrix(motion, tracks)
    assert whole[1, 0] > whole[1, 1]  # the idle motion looks like track 1
    playing = np.ones((T, 2), bool)
    playing[120:, 1] = False
    masked = AS.association_matrix(motion, tracks, playing=playing)
    assert masked[1, 1] > masked[1, 0] + 0.2
    assert np.allclose(masked[0], whole[0])  # player 1 plays throughout: unchanged
    assert AS.associate(motion, tracks, playing=playing).track_of_player == [0, 1]
    assert AS.associate(motion, tracks[:, ::-1], playing=playing).track_of_player == [1, 0]
    # a player found playing in fewer than 10 frames keeps all frames
    few = playing.copy()
    few[5:, 1] = False
    assert np.allclose(AS.association_matrix(motion, tracks, playing=few)[1], whole[1])
    with pytest.raises(ParameterError, match="playing has shape"):
        AS.association_matrix(motion, tracks, playing=playing[:, :1])
