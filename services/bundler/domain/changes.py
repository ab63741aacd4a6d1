"""Keeping one HOKS's jaksot current (E14, E18, J4, W4): given what is stored and what an
event says now, what each jakso becomes and what is recorded.

`judge_hoks` is the one decision for all three events: a new HOKS version (its jaksot;
a stored jakso missing from it was removed, E14), a deleted HOKS (every stored jakso,
the HOKS `poistettu`), and a new study-right version (every stored jakso, unchanged).
Every jakso of the HOKS is judged together by `jatkumo.evaluate_hoks`, so J4 always
applies. A jakso in `niputettu` or later keeps its state (E18): its new facts are
stored, its would-be evaluation recorded but not applied.

What changed is said by field names only (`loppu`, `ohjaaja.sahkoposti`,
`opiskeluoikeus.opiskeluoikeusjaksot`), never values: the history holds no personal data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import date

from services.bundler.domain.eligibility import (
    Eligibility,
    JaksoState,
    LoppuMuutos,
    Transition,
    classify_loppu_change,
    is_bundled_or_later,
    reevaluate,
)
from services.bundler.domain.jakso import Hoks, Jakso, JaksoId, Opiskeluoikeus, is_present
from services.bundler.domain.jatkumo import evaluate_hoks
from shared.domain.dates import DEFAULT_POLICIES, PolicySchedule
from shared.domain.names import normalize_name


@dataclass(frozen=True)
class StoredJakso:
    """A jakso as the bundler last stored it: its facts and its judgement."""

    jakso: Jakso
    state: JaksoState
    rule: str | None = None
    niputuspvm: date | None = None


@dataclass(frozen=True)
class JaksoChange:
    """One jakso after an event: the facts to store, its judgement and the transition.

    `recorded` says whether the history gets a row: a new jakso, changed facts, or a
    changed judgement (tila, syy, rule, niputuspvm); for a bundled jakso (E18) changed
    facts or a changed HOKS or study right, since its judgement never moves.
    """

    jakso: Jakso
    evaluated: Eligibility
    transition: Transition
    loppu_muutos: LoppuMuutos | None
    """W4: how `loppu` moved; None for a new jakso."""
    recorded: bool
    rule: str | None
    """The rule behind the stored state: the new one, or the stored one when not applied."""
    niputuspvm: date | None

    @property
    def state(self) -> JaksoState:
        return self.transition.resulting

    @property
    def applied(self) -> bool:
        return self.transition.applied

    @property
    def ohjaaja_normalisoitu(self) -> str | None:
        """N4: the instructor's name as bundles and reports compare it (N1, J4)."""
        nimi = self.jakso.ohjaaja.nimi
        return normalize_name(nimi) if is_present(nimi) else None

    @property
    def tyopaikka_normalisoitu(self) -> str | None:
        """N4: the workplace name as TPK bundles compare it (T3)."""
        nimi = self.jakso.tyopaikan_nimi
        return normalize_name(nimi) if is_present(nimi) else None


def changed_fields(old: object, new: object, prefix: str = "") -> tuple[str, ...]:
    """The names of the fields that differ between two values of one dataclass; nested
    dataclasses by their own fields (`ohjaaja.nimi`). Names only, never values."""
    if not (is_dataclass(old) and is_dataclass(new)) or type(old) is not type(new):
        return () if old == new else (prefix.rstrip(".") or "*",)
    names: list[str] = []
    for field in fields(old):
        before, after = getattr(old, field.name), getattr(new, field.name)
        if before == after:
            continue
        if is_dataclass(before) and is_dataclass(after):
            names.extend(changed_fields(before, after, f"{prefix}{field.name}."))
        else:
            names.append(f"{prefix}{field.name}")
    return tuple(names)


def context_changes(
    *,
    old_hoks: Hoks | None = None,
    new_hoks: Hoks | None = None,
    old_opiskeluoikeus: Opiskeluoikeus | None = None,
    new_opiskeluoikeus: Opiskeluoikeus | None = None,
) -> tuple[str, ...]:
    """What changed around the jaksot: the HOKS's own facts (E4, E14) and the study
    right's (E3–E10), as `hoks.<field>` and `opiskeluoikeus.<field>` names. A study
    right seen for the first time is `opiskeluoikeus` (E3 → E15)."""
    names: list[str] = []
    if old_hoks is not None and new_hoks is not None:
        names.extend(changed_fields(old_hoks, new_hoks, "hoks."))
    if new_opiskeluoikeus is not None:
        if old_opiskeluoikeus is None:
            names.append("opiskeluoikeus")
        else:
            names.extend(changed_fields(old_opiskeluoikeus, new_opiskeluoikeus, "opiskeluoikeus."))
    return tuple(names)


def with_removed(jaksot: Sequence[Jakso], stored: Mapping[JaksoId, StoredJakso]) -> list[Jakso]:
    """E14: a new HOKS version's jaksot, and every stored jakso it no longer has, marked
    `poistettu` (a snapshot names all jaksot: one left out was removed)."""
    present = {j.id for j in jaksot}
    removed = [
        replace(s.jakso, poistettu=True)
        for jakso_id, s in stored.items()
        if jakso_id not in present
    ]
    return [*jaksot, *sorted(removed, key=lambda j: j.id)]


def judge_hoks(
    *,
    hoks: Hoks,
    jaksot: Sequence[Jakso],
    stored: Mapping[JaksoId, StoredJakso],
    opiskeluoikeus: Opiskeluoikeus | None,
    today: date,
    context: Sequence[str] = (),
    policies: PolicySchedule = DEFAULT_POLICIES,
) -> tuple[JaksoChange, ...]:
    """E1–E15 and J4 for every jakso of one HOKS, E18 for each against its stored state.

    `jaksot` are all the HOKS's jaksot as they are now (see `with_removed`); `context`
    names what changed around them (`context_changes`), listed in each recorded
    transition beside the jakso's own changed fields.
    """
    states = {jakso_id: s.state for jakso_id, s in stored.items()}
    evaluated = evaluate_hoks(hoks, jaksot, opiskeluoikeus, today, states, policies)
    changes: list[JaksoChange] = []
    for jakso in jaksot:
        before = stored.get(jakso.id)
        result = evaluated[jakso.id]
        own = () if before is None else changed_fields(before.jakso, jakso)
        transition = reevaluate(
            jakso.id, None if before is None else before.state, result, (*own, *context)
        )
        if before is None:
            recorded, muutos = True, None
        else:
            muutos = classify_loppu_change(before.jakso.loppu, jakso.loppu, today)
            judged_again = (result.state, result.rule, result.niputuspvm) != (
                before.state,
                before.rule,
                before.niputuspvm,
            )
            if is_bundled_or_later(before.state):
                recorded = bool(own or context)
            else:
                recorded = bool(own) or judged_again
        kept = before if before is not None and not transition.applied else None
        changes.append(
            JaksoChange(
                jakso=jakso,
                evaluated=result,
                transition=transition,
                loppu_muutos=muutos,
                recorded=recorded,
                rule=result.rule if kept is None else kept.rule,
                niputuspvm=result.niputuspvm if kept is None else kept.niputuspvm,
            )
        )
    return tuple(changes)
