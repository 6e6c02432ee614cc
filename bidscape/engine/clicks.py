"""Click-through rates with context: the true and the predicted CTR of each advertiser in an auction.

Position auctions in a market with segments and segment CTRs get ``clicks = (segment_of,
factor)`` (``None`` otherwise, compiled out): ``factor[s, p]`` is segment ``s``'s base CTR x
population ``p``'s CTR multiplier. An advertiser's true click factor in an auction of segment
``s`` is ``quality x factor[s, p]``; it is clicked in slot ``k`` with probability
``true x ctrs[k]``. The exchange only sees a prediction, ``true x e``, with ``e`` a mean-one
lognormal drawn per impression and advertiser from the quantile table ``noise`` (``None``:
perfect prediction); it ranks by ``bid x predicted`` and prices per click with it.
"""

from __future__ import annotations

from numba import njit

from bidscape.engine.draws import draw_from_table
from bidscape.engine.rng import STREAM_CTR


@njit(cache=True, inline="always")
def prediction_noise(key_of_auction, slot, noise):
    """The factor on the predicted CTR of participant ``slot`` (from the quantile table ``noise``)."""
    return draw_from_table(key_of_auction, STREAM_CTR, slot, noise)


@njit(cache=True, inline="always")
def ranked_qualities(who, offset, bidders, rank_who, true_q, predicted_q, rank_true, rank_predicted):
    """The true and predicted click factors of the ranked bidders (``rank_who``, -1 = empty)."""
    for t in range(rank_who.shape[0]):
        rank_true[t] = 0.0
        rank_predicted[t] = 1.0
        for j in range(bidders):
            if who[offset + j] == rank_who[t]:
                rank_true[t] = true_q[j]
                rank_predicted[t] = predicted_q[j]
