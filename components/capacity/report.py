"""The preview lines of the capacity check and the estimate."""

from __future__ import annotations

import pulumi

from components.capacity.cost import Estimate


def log(notes: list[str], summary: str, warnings: list[str], e: Estimate | None) -> None:
    """Capacity at info (warn under 20% headroom), then the estimate."""
    for note in notes:
        pulumi.log.info(f"capacity: {note}")
    if summary:
        pulumi.log.info(f"capacity: {summary}")
    for warning in warnings:
        pulumi.log.warn(f"capacity: {warning}")
    if e is not None:
        pulumi.log.info(cost_line(e))


def cost_line(e: Estimate) -> str:
    """One line: the total when every part has a price; otherwise "partial estimate", the sum
    of what is priced and the parts that are not, so a partial sum never reads as the total."""
    out = e.output()
    if e.adopted:
        return f"estimated monthly cost: {out['summary']}"
    priced = [b for b in out["breakdown"] if b["monthly"] is not None]
    parts = ", ".join(f"{b['item']} {b['monthly']:.2f}" for b in priced)
    text = (
        f"estimated monthly cost: {out['summary']} (an estimate: list prices dated "
        f"{out['tableDate']}, {out['source']})"
    )
    if parts:
        text += f"; priced parts: {parts}"
    if out["spot"]:
        s = out["spot"]
        text += (
            f"; Spot nodes {s['nodesMonthlyLow']:.2f}-{s['nodesMonthlyHigh']:.2f} ({s['basis']})"
        )
    return text
