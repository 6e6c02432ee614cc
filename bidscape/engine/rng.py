"""Counter-based random numbers: every draw is a hash of (run key, round, auction, counter).

A draw does not depend on how auctions are batched or on how many threads run, so the
same scenario and seed give the same bytes everywhere. The mixer is SplitMix64's
finaliser over a Weyl sequence keyed per auction; it costs a few nanoseconds per draw.

Counters inside an auction are split into interleaved streams, so the participant,
value, tie-breaking, click/sample and throttle draws never share a number:
``counter = STREAMS * index + stream`` with every stream number in ``range(STREAMS)``
(checked when this module loads) and ``index < 2**61``, so ``(stream, index) -> counter``
is injective, and so is ``counter -> draw`` (``WEYL`` is odd and ``mix64`` a bijection).
``tests/test_kernel.py`` enumerates the draws of every stream to hold this. (The stride
was 4 while the throttle stream was 4, so the throttle draw of agent ``a`` was the
participant draw of attempt ``a + 1``; the fix changed every draw, hence every output.)

Every function here is plain Python that numba also compiles, so the reference
implementation (``bidscape.mechanisms.reference``) uses exactly the same numbers.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

WEYL = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)
_ONE = np.uint64(1)
_INV_2_53 = 1.0 / 9007199254740992.0
_MASK64 = (1 << 64) - 1

STREAM_PARTICIPANT = 0
STREAM_VALUE = 1
STREAM_TIE = 2
STREAM_SAMPLE = 3
STREAM_THROTTLE = 4  # per (auction, agent): does a throttled agent take part
STREAM_COMMON = 5  # per auction: the impression's common value factor (markets with segments)
STREAM_SEGMENT = 6  # per (round, channel): the shuffle that orders the round's segments
STREAM_CTR = 7  # per (auction, participant slot): the noise on an advertiser's predicted click-through rate
STREAMS = 8  # the counter stride: room for streams 0 .. 7 (a power of two: the multiply is a shift)
_STRIDE = np.uint64(STREAMS)

_ALL = (STREAM_PARTICIPANT, STREAM_VALUE, STREAM_TIE, STREAM_SAMPLE, STREAM_THROTTLE, STREAM_COMMON,
        STREAM_SEGMENT, STREAM_CTR)
if not all(0 <= s < STREAMS for s in _ALL) or len(set(_ALL)) != len(_ALL):
    raise ImportError("every random stream number must be in range(STREAMS), or two streams share draws")


@njit(cache=True, inline="always")
def mix64(z):
    """SplitMix64 finaliser: a bijective avalanche of a 64-bit word."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def round_key(run_key, round_index):
    return mix64(run_key ^ mix64(uint64(round_index) * WEYL + WEYL))


@njit(cache=True, inline="always")
def auction_key(key_of_round, auction_index):
    return mix64(key_of_round ^ (uint64(auction_index) * WEYL))


@njit(cache=True, inline="always")
def draw_u64(key_of_auction, stream, index):
    counter = uint64(index) * _STRIDE + uint64(stream)
    return mix64(key_of_auction + (counter + _ONE) * WEYL)


@njit(cache=True, inline="always")
def to_unit(z):
    """The top 53 bits of ``z`` as a float in [0, 1)."""
    return float(z >> _S11) * _INV_2_53


# ---- plain-Python twins (arbitrary-precision ints masked to 64 bits) for the reference ----

def py_mix64(z: int) -> int:
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def py_round_key(run_key: int, round_index: int) -> int:
    return py_mix64(run_key ^ py_mix64(round_index * 0x9E3779B97F4A7C15 + 0x9E3779B97F4A7C15))


def py_auction_key(key_of_round: int, auction_index: int) -> int:
    return py_mix64(key_of_round ^ ((auction_index * 0x9E3779B97F4A7C15) & _MASK64))


def py_draw_u64(key_of_auction: int, stream: int, index: int) -> int:
    counter = index * STREAMS + stream
    return py_mix64(key_of_auction + (counter + 1) * 0x9E3779B97F4A7C15)


def py_to_unit(z: int) -> float:
    return float(z >> 11) * _INV_2_53


def run_key_from_seed(seed_sequence: np.random.SeedSequence) -> int:
    """The 64-bit key of the counter-based hash, taken from the run's seed tree."""
    return int(seed_sequence.generate_state(1, np.uint64)[0])
