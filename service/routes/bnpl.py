"""``POST /v1/bnpl/decisions``: may we offer pay-later for this order, up to what limit?

Scope ``checkout``. Real-time: one customer's events from the store, the one feature
definition, the risk model, then the pay-later policy of the loaded bundle
(:mod:`models.bnpl`). Every decision is logged with its inputs, features, outputs and
versions; a decline always names its reasons and the path to human review.

Idempotency: a checkout that retries after a timeout sends the same ``Idempotency-Key``
header and gets the same decision back (``idempotent_replay: true``), never a second,
possibly different one. The same key with a different request is a 409. The key is bound
in the transaction that logs the decision, first writer wins: when two retries race, the
one that lost is not logged and answers with the winner's decision, so every logged
decision was given to someone and a key never points to a decision that was not logged.

Data minimisation: the buyer's birth date is used to compute the age and is not logged;
the log keeps the age and how it was verified. Special-category data (GDPR art. 9) are
refused outright, so they can never become model input.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.bnpl import AgeCheck, BnplDecision, decide
from service.decision_log import (
    Decision,
    DecisionLogUnavailable,
    IdempotencyBinding,
    feature_dict,
    new_decision_id,
)
from service.deps import ScoringContext, scoring_context
from service.errors import ProblemError, ProblemType, problem_responses
from service.routes.common import (
    decision_log_unavailable,
    json_response,
    log_decisions,
    serving_state,
)
from service.schemas import (
    EARLIEST_LEGAL_AS_OF,
    CustomerId,
    Day,
    ReasonOut,
    RequestModel,
    check_as_of,
    today,
)
from service.settings import Scope

router = APIRouter(tags=["checkout"])

#: Request fields that would carry special-category or proxy data (GDPR art. 9, CCD2):
#: refused with a clear message instead of the generic "extra input".
SPECIAL_CATEGORY_FIELDS = frozenset(
    {
        "sex",
        "gender",
        "ethnicity",
        "race",
        "religion",
        "health",
        "disability",
        "sexual_orientation",
        "political_opinion",
        "trade_union",
        "biometric",
        "genetic",
        "marital_status",
        "nationality",
    }
)


class OrderIn(RequestModel):
    amount_cents: int = Field(
        gt=0, le=100_000_000, strict=True, description="order amount in cents"
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR")


class AgeVerificationIn(RequestModel):
    # strict: 0, 1.0 or "yes" are not an answer to "was the age verified?" (CCD2).
    verified: bool = Field(
        strict=True, description="checkout verified the buyer's age (e.g. with iDIN)"
    )
    method: Literal["idin", "bank", "document", "other"] | None = None
    birth_date: Day | None = Field(default=None, description="used for the age only; not logged")

    @field_validator("birth_date")
    @classmethod
    def _plausible(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= today():
            raise ValueError(f"birth_date must be between 1900-01-01 and today; got {value}")
        return value


class BnplDecisionRequest(RequestModel):
    customer_id: CustomerId | None = Field(
        default=None, description="the creditor's customer id; omit for a customer without history"
    )
    order: OrderIn
    age_verification: AgeVerificationIn
    as_of: Day | None = Field(
        default=None,
        description="decide as known at the start of this day; from the first legal "
        f"table's day ({EARLIEST_LEGAL_AS_OF}) to tomorrow",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_special_categories(cls, data: Any) -> Any:
        if isinstance(data, dict):
            found = sorted(SPECIAL_CATEGORY_FIELDS & {str(k).lower() for k in data})
            if found:
                raise ValueError(
                    f"special-category data are not accepted (GDPR art. 9, CCD2): {', '.join(found)}"
                )
        return data

    @field_validator("as_of")
    @classmethod
    def _plausible_day(cls, value: date | None) -> date | None:
        # A customer's decision applies the legal table in force on as_of; before the
        # first one there is none (the model raised: a 500). One bound for every request,
        # with or without a customer, so the documented range does not depend on the body.
        return check_as_of(value, EARLIEST_LEGAL_AS_OF, "the first legal table in force")


class BnplReasonOut(BaseModel):
    code: str
    declines: bool = Field(
        description="true: this reason declined the order; false: it shaped the limit"
    )
    text_en: str
    text_nl: str


class ReviewPath(BaseModel):
    how: str
    text_en: str
    text_nl: str


class BnplDecisionResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    decision_id: str
    offer: bool
    limit_eur: float = Field(
        description="pay-later limit for this customer (0 when declined on their situation)"
    )
    available_eur: float = Field(description="limit minus open pay-later orders, before this order")
    order_eur: float
    currency: str
    reasons: list[BnplReasonOut] = Field(description="declining reasons first, most decisive first")
    risk_reasons: list[ReasonOut] = Field(description="the model's reasons when the risk declined")
    probability: float | None = Field(
        description="P(payment difficulty within 90 days); null without history"
    )
    thin_file: bool
    model_version: str
    policy_version: str
    as_of: date
    human_review: ReviewPath | None = Field(description="how to ask a person to review a decline")
    idempotent_replay: bool = False


@router.post(
    "/v1/bnpl/decisions",
    response_model=BnplDecisionResponse,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
    summary="Pay-later at checkout: offer or decline, a limit, reasons",
)
async def bnpl_decision(
    body: BnplDecisionRequest,
    ctx: Annotated[ScoringContext, Depends(scoring_context(Scope.CHECKOUT))],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    bundle, settings, decision_log = ctx.bundle, ctx.settings, ctx.decision_log
    binding = None
    if idempotency_key:  # the request's fingerprint is only needed to check a retry
        request_hash = hashlib.sha256(
            json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()
        binding = IdempotencyBinding(
            idempotency_scope(ctx.api_key_id), idempotency_key, request_hash
        )
        replay = _replay(decision_log, binding)
        if replay is not None:
            return json_response(replay)

    as_of = body.as_of or settings.default_as_of or today()
    features = probability = None
    risk_reasons = []
    open_case = False
    serving_row = None
    if body.customer_id is not None:
        state = await serving_state(ctx.serving, bundle, [body.customer_id], as_of)
        features = state.X[0]
        probability = float(state.probability[0])
        open_case = bool(state.open_case[0])
        serving_row = "materialised" if state.materialised[0] else "computed"
        if probability >= bundle.bnpl_policy.risk_cutoff:
            risk_reasons = state.reasons(bundle, [0])[0]  # only where a decline needs it
    age = AgeCheck(
        verified=body.age_verification.verified,
        birth_date=body.age_verification.birth_date,
        method=body.age_verification.method,
    )
    decision = decide(
        bundle.bnpl_policy,
        order_eur=body.order.amount_cents / 100,
        currency=body.order.currency,
        age=age,
        on=as_of,
        features=features,
        probability=probability,
        open_case=open_case,
        risk_reasons=risk_reasons,
    )
    response = _response(
        new_decision_id(), decision, bundle.version, bundle.bnpl_policy.version, as_of, body
    )
    logged = Decision(
        decision_id=response.decision_id,
        created_at=datetime.now(UTC),
        kind="bnpl_decision",
        customer_id=body.customer_id or "",
        as_of=as_of,
        model_version=bundle.version,
        policy_version=bundle.bnpl_policy.version,
        inputs={
            "request_id": str(uuid.uuid4()),
            "order": body.order.model_dump(),
            "age_verified": age.verified,
            "age_verification_method": age.method,
            "age_years": age.age_on(as_of),
            "open_collection_case": open_case,
            "idempotency_key": idempotency_key,
            "as_of_requested": body.as_of.isoformat() if body.as_of else None,
            "serving_row": serving_row,
        },
        features=feature_dict(bundle.feature_names, features.tolist())
        if features is not None
        else {},
        outputs=response.model_dump(mode="json", exclude={"decision_id", "idempotent_replay"}),
        idempotency=binding,
    )
    held = (await log_decisions(decision_log, [logged], settings)).get(logged.decision_id)
    if held is not None:  # a concurrent retry bound the key first: ours was not logged
        assert binding is not None
        replay = _replay(decision_log, binding, held)
        if replay is None:  # its decision was purged meanwhile; ours was not logged
            raise decision_log_unavailable(
                "the idempotency key is held by a decision that is no longer in the log, "
                "so no decision is given; retry with the same key"
            )
        return json_response(replay)
    return json_response(response)


def idempotency_scope(api_key_id: str) -> str:
    """Whose idempotency keys these are: one scope per API key (``checkout:`` + the
    key's short SHA-256 id, never the key), so two checkout clients that both use their
    order number as the key never get each other's decision or a 409.

    Rows stored before this (under the shared scope ``"checkout"``) simply match no
    request any more and leave with the retention purge: no migration is needed; a retry
    that straddles the upgrade, like one across an API-key rotation, decides afresh."""
    return f"{Scope.CHECKOUT.value}:{api_key_id}"


def _replay(
    decision_log: Any, binding: IdempotencyBinding, held: tuple[str, str] | None = None
) -> BnplDecisionResponse | None:
    """The decision already given under ``binding``'s key (``held``, or looked up), a 409
    for another request, None when there is none; 503 when the log cannot answer."""
    try:
        return _replay_or_conflict(decision_log, binding, held)
    except DecisionLogUnavailable as exc:
        raise decision_log_unavailable(
            "the idempotency key could not be checked, so no decision is given; retry with "
            "the same key"
        ) from exc


def _replay_or_conflict(
    decision_log: Any, binding: IdempotencyBinding, held: tuple[str, str] | None
) -> BnplDecisionResponse | None:
    if held is None:
        held = decision_log.decision_for_key(binding.scope, binding.key)
    if held is None:
        return None
    held_hash, decision_id = held
    if held_hash != binding.request_hash:
        raise ProblemError(
            409,
            ProblemType.IDEMPOTENCY_CONFLICT,
            "Idempotency key reused",
            "this Idempotency-Key was used for a different request; use a new key per order",
        )
    logged = decision_log.get(decision_id)
    if logged is None:  # purged after the retention period: decide afresh
        return None
    return BnplDecisionResponse(decision_id=decision_id, idempotent_replay=True, **logged.outputs)


def _response(
    decision_id: str,
    decision: BnplDecision,
    model_version: str,
    policy_version: str,
    as_of: date,
    body: BnplDecisionRequest,
) -> BnplDecisionResponse:
    review = None
    if not decision.offer:
        review = ReviewPath(
            how=f"POST /v1/decisions/{decision_id}/review",
            text_en="You can ask for this decision to be reviewed by a person and give your view.",
            text_nl="U kunt vragen dat een medewerker dit besluit beoordeelt en uw kant toelichten.",
        )
    return BnplDecisionResponse(
        decision_id=decision_id,
        offer=decision.offer,
        limit_eur=decision.limit_eur,
        available_eur=decision.available_eur,
        order_eur=decision.order_eur,
        currency=body.order.currency,
        reasons=[
            BnplReasonOut(
                code=r.code.value, declines=r.declines, text_en=r.text_en, text_nl=r.text_nl
            )
            for r in decision.reasons
        ],
        risk_reasons=[ReasonOut.of(r) for r in decision.risk_reasons],
        probability=decision.probability,
        thin_file=decision.thin_file,
        model_version=model_version,
        policy_version=policy_version,
        as_of=as_of,
        human_review=review,
    )
