"""Holding a trainable thumbnail at a reference model's file sizes while it learns something else.

Why: a run that trains the preview's fidelity (``thumb_weight``) adds a distortion to the
thumbnail's rate-distortion trade, so at every lambda the encoder buys more bits than before:
runs/ht-v7-preview's LOW grew 4x, and with the thumbnail term weighed per rate (runs/ht-v9-preview)
the validation crops' thumbnails still grew 1.5-1.7x in 500 steps. The product promises the knob's
sizes (LOW ~0.03 bpp), and a preview is only "better" at the same bytes. So the thumbnail's bits
get a price, per thumbnail rate, that dual ascent moves until, around each rate, the crops'
estimated bits match on (geometric) average what the frozen reference model spends on the same
crops at the same rates. Single crops may stray either way: the hold keeps the knob's sizes, not
each photo's.

The price is ``exp(log_price)`` interpolated linearly between knots over the thumbnail's own knob
(0..1; the product's rates above the layer's start all carry the thumbnail of knob 1). After each
step, every knot's log-price moves by ``step_size`` times the mean log ratio of bits, current over
reference, of the batch's crops weighed by their interpolation weight at that knot, and divided by
that weight's sum where it is above one crop (a knot that only a sliver of one crop reaches moves
by that sliver, not by the crop's whole ratio). The update runs once per training step, inside the
loss, before the step's backward pass: the price a step uses is the one before its own update.
"""

import torch

from app.codec.nets.model import HyperThumbnailModel

KNOTS = (0.0, 0.5, 1.0)
LOG_PRICE_LIMIT = 4.0  # a price between 1/55 and 55: beyond that the trade has gone wrong


class ThumbnailSizeHold:
    def __init__(self, reference: HyperThumbnailModel, step_size: float = 0.01):
        self.reference = reference.eval().requires_grad_(False)
        self.step_size = step_size
        self.log_price = torch.zeros(len(KNOTS))

    def _weights(self, thumb_rate: torch.Tensor) -> torch.Tensor:
        """[B] thumbnail rates in 0..1 -> [B, knots] linear interpolation weights (rows sum to 1)."""
        knots = torch.tensor(KNOTS, dtype=thumb_rate.dtype, device=thumb_rate.device)
        t = thumb_rate.clamp(0.0, 1.0)[:, None]
        left, right = knots[:-1], knots[1:]
        inside = ((t - left) / (right - left)).clamp(0.0, 1.0)  # [B, intervals]: 0 before, 1 after
        weights = torch.zeros(t.shape[0], len(KNOTS), dtype=t.dtype, device=t.device)
        weights[:, 0] = 1.0
        for i in range(len(KNOTS) - 1):  # move the mass along, interval by interval
            moved = weights[:, i] * inside[:, i]
            weights[:, i] = weights[:, i] - moved
            weights[:, i + 1] = moved
        return weights

    def price(self, thumb_rate: torch.Tensor) -> torch.Tensor:
        """[B] the price of a thumbnail bit at each crop's thumbnail rate (a constant: no gradient)."""
        weights = self._weights(thumb_rate)
        return torch.exp(weights @ self.log_price.to(weights.device, weights.dtype))

    @torch.no_grad()
    def reference_bpp(self, hr: torch.Tensor, thumb_rate: torch.Tensor, autocast=None) -> torch.Tensor:
        """[B] the reference's estimated bits per photo pixel on these crops at these rates."""
        return self.reference.thumbnail(hr, thumb_rate, autocast, exact=True)[-1]

    def update(self, thumb_rate: torch.Tensor, bpp: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """One dual-ascent step from a batch's bits; returns each knot's weighted mean log ratio
        (current / reference; NaN where no crop of the batch reaches the knot)."""
        ratio = torch.log(bpp.detach().float().clamp(min=1e-6) / reference.float().clamp(min=1e-6)).cpu()
        weights = self._weights(thumb_rate.detach().float().cpu())
        mass = weights.sum(dim=0)
        seen = mass > 0
        weighted = (weights * ratio[:, None]).sum(dim=0)
        moves = weighted / mass.clamp(min=1.0)
        self.log_price = torch.where(seen, self.log_price + self.step_size * moves, self.log_price)
        self.log_price = self.log_price.clamp(-LOG_PRICE_LIMIT, LOG_PRICE_LIMIT)
        return torch.where(seen, weighted / mass.clamp(min=1e-12), torch.full_like(weighted, float("nan")))

    def state(self) -> dict:
        return {"log_price": self.log_price.tolist(), "knots": list(KNOTS)}

    def load_state(self, state: dict) -> None:
        if list(state["knots"]) != list(KNOTS):
            raise ValueError(f"size-hold knots {state['knots']} differ from this code's {list(KNOTS)}")
        self.log_price = torch.tensor(state["log_price"], dtype=torch.float32)
