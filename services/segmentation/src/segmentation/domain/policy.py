"""The segmentation policy (DESIGN §4): every tunable number of the rules, in one validated model tree.

One YAML file (``services/segmentation/policy.default.yaml`` documents every field) configures tiers,
RFM, activity and churn. It is read once at start-up by :func:`load_policy`; anything wrong stops the
service with a :class:`PolicyError` naming the field, e.g. ``policy.tier.percentile.vip: must be < key``.
Percentages are percent (``5`` = 5 %), amounts are decimals in the customer's currency, durations days.
The models are frozen, so a policy can be shared by every rule and compared for equality.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

Share = Annotated[Decimal, Field(gt=0, lt=100)]
Days = Annotated[int, Field(gt=0)]
Points = Annotated[int, Field(ge=0, le=100)]
Score = Annotated[int, Field(ge=1, le=5)]
SegmentCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class PolicyError(ValueError):
    """The policy file is unreadable or breaks a rule; the message names each offending field."""


def _refuse(field: str, message: str) -> ValueError:
    """A cross-field error aimed at ``field`` of the model being validated (see :func:`_describe`)."""
    return ValueError(f"@{field}: {message}")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- value tier --------------------------------------------------------------------------------


class TierMode(StrEnum):
    PERCENTILE = "percentile"
    ABSOLUTE = "absolute"


class PercentileShares(_Model):
    """Shares of the graded population (customers with live orders), in percent, 25:70:5 by default."""

    vip: Share = Decimal(5)
    key: Share = Decimal(25)  # top share that is key *or* vip, so key-only = key − vip
    small: Share = Decimal(5)  # bottom share; normal is what is left in the middle (70 %)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.vip >= self.key:
            raise _refuse("vip", "must be < key")
        if self.key + self.small >= 100:
            raise _refuse("small", "key + small must be < 100, leaving a normal tier")
        return self


class AbsoluteThresholds(_Model):
    """Lower bounds of net contribution per tier in absolute mode; below ``normal`` is small."""

    vip: Decimal = Decimal(50000)
    key: Decimal = Decimal(10000)
    normal: Decimal = Decimal(500)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.key >= self.vip:
            raise _refuse("key", "must be < vip")
        if self.normal >= self.key:
            raise _refuse("normal", "must be < key")
        return self


class Hysteresis(_Model):
    """When a demotion takes effect (promotions are always immediate); see ``cutpoints.apply_hysteresis``."""

    margin_pct: Annotated[Decimal, Field(ge=0, lt=100)] = Decimal(10)
    consecutive_recalibrations: Annotated[int, Field(ge=1)] = 2


class TierPolicy(_Model):
    mode: TierMode = TierMode.PERCENTILE
    window_days: Days = 365
    recalibration_interval_days: Days = 7
    percentile: PercentileShares = PercentileShares()
    absolute: AbsoluteThresholds = AbsoluteThresholds()
    hysteresis: Hysteresis = Hysteresis()


# -- RFM ---------------------------------------------------------------------------------------


class Segment(_Model):
    """One named cell block of the R×F grid: every (r, f) with r in ``r`` and f in ``f``."""

    code: SegmentCode
    label: Label
    r: tuple[Score, ...] = Field(min_length=1)
    f: tuple[Score, ...] = Field(min_length=1)

    def cells(self) -> frozenset[tuple[int, int]]:
        return frozenset((r, f) for r in self.r for f in self.f)


def _seg(code: str, label: str, r: tuple[int, ...], f: tuple[int, ...]) -> Segment:
    return Segment(code=code, label=label, r=r, f=f)


DEFAULT_SEGMENTS: tuple[Segment, ...] = (
    _seg("champions", "Champions", (5,), (4, 5)),
    _seg("loyal", "Loyal", (3, 4), (4, 5)),
    _seg("potential_loyalists", "Potential Loyalists", (4, 5), (2, 3)),
    _seg("new", "New", (5,), (1,)),
    _seg("promising", "Promising", (4,), (1,)),
    _seg("need_attention", "Need Attention", (3,), (3,)),
    _seg("about_to_sleep", "About to Sleep", (3,), (1, 2)),
    _seg("at_risk", "At Risk", (1, 2), (3, 4)),
    _seg("cant_lose", "Can't Lose", (1, 2), (5,)),
    _seg("hibernating", "Hibernating", (1, 2), (1, 2)),
)


class RfmPolicy(_Model):
    """The versioned R×F rule table; it must be an exact partition of the 25 cells."""

    grid_version: Annotated[str, Field(min_length=1, max_length=64)] = "rfm-grid-v1"
    segments: tuple[Segment, ...] = DEFAULT_SEGMENTS

    @model_validator(mode="after")
    def _partition(self) -> Self:
        owner: dict[tuple[int, int], str] = {}
        codes: set[str] = set()
        for segment in self.segments:
            if segment.code in codes:
                raise _refuse("segments", f"code {segment.code!r} appears twice")
            codes.add(segment.code)
            for cell in sorted(segment.cells()):
                if cell in owner:
                    raise _refuse("segments", f"cell R{cell[0]} F{cell[1]} is in both {owner[cell]} and {segment.code}")
                owner[cell] = segment.code
        missing = [f"R{r} F{f}" for r in range(1, 6) for f in range(1, 6) if (r, f) not in owner]
        if missing:
            raise _refuse("segments", f"cells not covered: {', '.join(missing)}")
        return self

    def segment_of(self, r: int, f: int) -> Segment:
        """The segment owning cell (r, f); total because the grid is a validated partition."""
        for segment in self.segments:
            if r in segment.r and f in segment.f:
                return segment
        raise ValueError(f"R{r} F{f} is not a cell of the 5×5 grid")


# -- activity ----------------------------------------------------------------------------------


class ActivityPolicy(_Model):
    """Cadence rule: thresholds scale with the customer's median gap between purchase days."""

    at_risk_gap_factor: Annotated[Decimal, Field(gt=0)] = Decimal(2)
    at_risk_min_days: Days = 14
    dormant_gap_factor: Annotated[Decimal, Field(gt=0)] = Decimal(3)
    dormant_min_days: Days = 30
    few_orders: Annotated[int, Field(ge=2)] = 3
    few_orders_at_risk_days: Days = 60
    few_orders_dormant_days: Days = 90
    lost_days: Days = 365

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.at_risk_gap_factor >= self.dormant_gap_factor:
            raise _refuse("at_risk_gap_factor", "must be < dormant_gap_factor")
        if self.at_risk_min_days > self.dormant_min_days:
            raise _refuse("at_risk_min_days", "must be ≤ dormant_min_days")
        if self.few_orders_at_risk_days >= self.few_orders_dormant_days:
            raise _refuse("few_orders_at_risk_days", "must be < few_orders_dormant_days")
        if self.few_orders_dormant_days >= self.lost_days:
            raise _refuse("few_orders_dormant_days", "must be < lost_days")
        if self.dormant_min_days >= self.lost_days:
            raise _refuse("dormant_min_days", "must be < lost_days")
        return self


# -- churn risk --------------------------------------------------------------------------------


class OverduePoints(_Model):
    """Points by age bucket of the oldest overdue receivable; older never scores less."""

    days_1_30: Points = 5
    days_31_60: Points = 10
    days_61_90: Points = 15
    days_90_plus: Points = 20

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        names = ("days_1_30", "days_31_60", "days_61_90", "days_90_plus")
        for younger, older in pairwise(names):
            if getattr(self, older) < getattr(self, younger):
                raise _refuse(older, f"must be ≥ {younger} (older debt never scores less)")
        return self


class SignalPoints(_Model):
    cadence_breach: Points = 25
    spend_down: Points = 20
    complaint_overdue: Points = 15
    complaint_reopened: Points = 10
    detractor_survey: Points = 15
    credit_hold: Points = 10
    receivables_overdue: OverduePoints = OverduePoints()


class Bands(_Model):
    """Lower bounds of the medium and high bands (low is below medium)."""

    medium: Annotated[int, Field(ge=1, le=100)] = 30
    high: Annotated[int, Field(ge=1, le=100)] = 60

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.medium >= self.high:
            raise _refuse("medium", "must be < high")
        return self


class ChurnPolicy(_Model):
    points: SignalPoints = SignalPoints()
    spend_window_days: Days = 90
    spend_down_pct: Annotated[Decimal, Field(gt=0, le=100)] = Decimal(50)
    detractor_nps_max: Annotated[int, Field(ge=0, le=10)] = 6
    detractor_csat_max: Annotated[int, Field(ge=1, le=5)] = 2
    bands: Bands = Bands()
    alert_clear_below: Annotated[int, Field(ge=1, le=100)] = 40  # an alert is raised at bands.high

    @model_validator(mode="after")
    def _hysteresis(self) -> Self:
        if self.alert_clear_below >= self.bands.high:
            raise _refuse("alert_clear_below", "must be < bands.high (the raise threshold)")
        return self

    @property
    def alert_raise_at(self) -> int:
        """An alert opens when the score reaches the high band."""
        return self.bands.high


# -- the whole policy --------------------------------------------------------------------------


class Policy(_Model):
    version: Annotated[str, Field(min_length=1, max_length=64)] = "default-v1"
    tier: TierPolicy = TierPolicy()
    rfm: RfmPolicy = RfmPolicy()
    activity: ActivityPolicy = ActivityPolicy()
    churn: ChurnPolicy = ChurnPolicy()


def load_policy(path: Path | None) -> Policy:
    """The policy in the YAML file at ``path`` (fields left out keep their defaults), or the defaults."""
    if path is None:
        return Policy()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"policy file {path}: cannot be read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path}: not valid YAML ({exc})") from exc
    return parse_policy({} if raw is None else raw)


def parse_policy(raw: Any) -> Policy:
    """Validate an already-parsed policy mapping; errors name their field path."""
    if not isinstance(raw, dict):
        raise PolicyError("policy: must be a mapping of sections (tier, rfm, activity, churn)")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError("; ".join(_describe(error) for error in exc.errors())) from exc


def _describe(error: Any) -> str:
    """``policy.a.b[2].c: message`` for one pydantic error, cross-field errors aimed at their field."""
    path = ["policy"]
    for part in error["loc"]:
        path.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
    if message.startswith("@"):
        field, _, message = message[1:].partition(": ")
        path.append(f".{field}")
    return f"{''.join(path)}: {message}"
