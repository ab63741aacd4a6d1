"""Eligibility of a TEP jakso (E1–E15), its later states and transitions (E18), and end
date changes (W4).

`evaluate` checks the rules in the exact order of the table in rules.md: the first that
applies gives the tila and syy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TypeGuard

from services.bundler.domain.jakso import (
    Hoks,
    Jakso,
    JaksoId,
    Opiskeluoikeus,
    is_present,
)
from shared.domain.dates import (
    DEFAULT_POLICIES,
    PolicySchedule,
    is_answer_window_closed,
    niputuspvm,
)
from shared.domain.koodisto import Hankkimistapa


class Tila(StrEnum):
    ODOTTAA = "odottaa"
    EI_LAHETETA = "ei_laheteta"
    NIPUTETTU = "niputettu"
    LAHETETTY = "lahetetty"
    VASTATTU = "vastattu"
    VASTAUSAIKA_LOPPUNUT = "vastausaika_loppunut"


class Syy(StrEnum):
    JAKSO_KESKEN = "jakso_kesken"
    ENNEN_KAYTTOONOTTOA = "ennen_kayttoonottoa"
    OPISKELUOIKEUS_PUUTTUU = "opiskeluoikeus_puuttuu"
    EI_TUTKINTOKOULUTUS = "ei_tutkintokoulutus"
    EI_AMMATILLINEN_TUTKINTO = "ei_ammatillinen_tutkinto"
    SISALTYY_TOISEEN_OPISKELUOIKEUTEEN = "sisaltyy_toiseen_opiskeluoikeuteen"
    OPISKELUOIKEUS_PAATTYNYT = "opiskeluoikeus_paattynyt"
    MUU_RAHOITUS = "muu_rahoitus"
    KESKEYTYNYT = "keskeytynyt"
    SOPIMUS_PURETTU = "sopimus_purettu"
    OSA_AIKAISUUS_PUUTTUU = "osa_aikaisuus_puuttuu"
    TYOPAIKKATIETO_PUUTTUU = "tyopaikkatieto_puuttuu"
    VASTAUSAIKA_UMPEUTUNUT = "vastausaika_umpeutunut"
    JAKSO_POISTETTU = "jakso_poistettu"
    HOKS_POISTETTU = "hoks_poistettu"
    ODOTTAA_NIPUTUSTA = "odottaa_niputusta"
    #: J4: the earlier part of a jatkumo waits for its latest jakso.
    JATKUU_MYOHEMMIN = "jatkuu_myohemmin"
    #: N1: in a bundle (the syy of tila `niputettu`; the bundle tells the rest).
    NIPUTETTU = "niputettu"
    # Outcomes of the jakso's bundle (C3, Arvo 404): "later states" in rules.md.
    YHTEYSTIETO_PUUTTUU = "yhteystieto_puuttuu"
    ARVO_EI_KYSELYA = "arvo_ei_kyselya"


#: E2: the system started on 1.7.2021.
KAYTTOONOTTO = date(2021, 7, 1)
#: E11: osa-aikaisuustieto is required for jaksot ending after this day.
OSA_AIKAISUUS_REQUIRED_AFTER = date(2023, 6, 30)
#: E7: study-right states that stop the survey when entered before `loppu`.
PAATTYNEET_TILAT = frozenset(
    {"eronnut", "katsotaaneronneeksi", "mitatoity", "peruutettu", "valiaikaisestikeskeytynyt"}
)
#: E8: opintojenRahoitus codes of education funded from elsewhere.
MUUT_RAHOITUKSET = frozenset({"6", "14", "15"})


@dataclass(frozen=True)
class Eligibility:
    """The result of `evaluate`: which rule applied, the tila and syy, and the jakso's
    niputuspvm whenever its herätepäivä is known."""

    rule: str
    tila: Tila
    syy: Syy
    niputuspvm: date | None = None

    @property
    def state(self) -> JaksoState:
        return JaksoState(self.tila, self.syy)


def evaluate(
    jakso: Jakso,
    hoks: Hoks,
    opiskeluoikeus: Opiskeluoikeus | None,
    today: date,
    policies: PolicySchedule = DEFAULT_POLICIES,
    *,
    jatkumon_niputuspvm: date | None = None,
) -> Eligibility:
    """E1–E15 in the table's order. `today` is the evaluation (or run) date.

    A jakso's herätepäivä is always its current `loppu`, so re-evaluating after an end
    date change applies W4 (see `classify_loppu_change`). `jatkumon_niputuspvm`: an
    earlier jakso of a jatkumo is bundled on the date of the jatkumo's latest jakso (J4),
    so E13 and the result's niputuspvm use that date instead of its own.
    """
    loppu = jakso.loppu
    if loppu is None or loppu > today:
        return Eligibility("E1", Tila.ODOTTAA, Syy.JAKSO_KESKEN)
    if loppu < KAYTTOONOTTO:
        return Eligibility("E2", Tila.EI_LAHETETA, Syy.ENNEN_KAYTTOONOTTOA)
    pvm = jatkumon_niputuspvm or niputuspvm(loppu, policies)

    def result(rule: str, tila: Tila, syy: Syy) -> Eligibility:
        return Eligibility(rule, tila, syy, pvm)

    if opiskeluoikeus is None:
        return result("E3", Tila.ODOTTAA, Syy.OPISKELUOIKEUS_PUUTTUU)
    if hoks.is_tuva or opiskeluoikeus.is_tuva_tai_telma:
        return result("E4", Tila.EI_LAHETETA, Syy.EI_TUTKINTOKOULUTUS)
    if opiskeluoikeus.ammatillinen_suoritus is None:
        return result("E5", Tila.EI_LAHETETA, Syy.EI_AMMATILLINEN_TUTKINTO)
    if opiskeluoikeus.sisaltyy_opiskeluoikeuteen is not None:
        return result("E6", Tila.EI_LAHETETA, Syy.SISALTYY_TOISEEN_OPISKELUOIKEUTEEN)
    if opiskeluoikeus_paattynyt(opiskeluoikeus, loppu):
        return result("E7", Tila.EI_LAHETETA, Syy.OPISKELUOIKEUS_PAATTYNYT)
    if muu_rahoitus(opiskeluoikeus, loppu):
        return result("E8", Tila.EI_LAHETETA, Syy.MUU_RAHOITUS)
    if jakso.is_interrupted_on(loppu):
        return result("E9", Tila.EI_LAHETETA, Syy.KESKEYTYNYT)
    if sopimus_purettu(jakso, opiskeluoikeus):
        return result("E10", Tila.EI_LAHETETA, Syy.SOPIMUS_PURETTU)
    if loppu > OSA_AIKAISUUS_REQUIRED_AFTER and not is_valid_osa_aikaisuus(jakso.osa_aikaisuus):
        return result("E11", Tila.EI_LAHETETA, Syy.OSA_AIKAISUUS_PUUTTUU)
    if tyopaikkatieto_puuttuu(jakso):
        return result("E12", Tila.EI_LAHETETA, Syy.TYOPAIKKATIETO_PUUTTUU)
    if is_answer_window_closed(pvm, today):
        return result("E13", Tila.EI_LAHETETA, Syy.VASTAUSAIKA_UMPEUTUNUT)
    if hoks.poistettu:
        return result("E14", Tila.EI_LAHETETA, Syy.HOKS_POISTETTU)
    if jakso.poistettu:
        return result("E14", Tila.EI_LAHETETA, Syy.JAKSO_POISTETTU)
    return result("E15", Tila.ODOTTAA, Syy.ODOTTAA_NIPUTUSTA)


def opiskeluoikeus_paattynyt(opiskeluoikeus: Opiskeluoikeus, loppu: date) -> bool:
    """E7, E17: on `loppu` the study right is in a stopping state that it entered before
    `loppu`.

    A stopping state that begins on `loppu` itself does not count: the jakso was
    completed. Consecutive stopping states count as one stay, so
    "valiaikaisestikeskeytynyt, then eronnut on `loppu`" still stops the survey.
    """
    stay_start: date | None = None
    for state in opiskeluoikeus.jaksot_in_order:
        if state.alku > loppu:
            break
        if state.tila not in PAATTYNEET_TILAT:
            stay_start = None
        elif stay_start is None:
            stay_start = state.alku
    return stay_start is not None and stay_start < loppu


def muu_rahoitus(opiskeluoikeus: Opiskeluoikeus, loppu: date) -> bool:
    """E8: on `loppu` the studies are funded from elsewhere (opintojenRahoitus 6, 14, 15)."""
    state = opiskeluoikeus.tila_on(loppu)
    return state is not None and state.opintojen_rahoitus in MUUT_RAHOITUKSET


def sopimus_purettu(jakso: Jakso, opiskeluoikeus: Opiskeluoikeus) -> bool:
    """E10, E16: the apprenticeship contract ended before the jakso's `loppu`.

    Only an oppisopimus jakso that had started by the termination day is under that
    contract; a jakso completed on or before the termination day is still surveyed.
    """
    purettu = opiskeluoikeus.oppisopimuksen_purkamispaiva
    return (
        jakso.hankkimistapa is Hankkimistapa.OPPISOPIMUS
        and purettu is not None
        and jakso.loppu is not None
        and jakso.alku <= purettu < jakso.loppu
    )


def is_valid_osa_aikaisuus(osa_aikaisuus: object) -> TypeGuard[int]:
    """E11, K2: an integer percentage 1–100 (a bool is not a percentage)."""
    return type(osa_aikaisuus) is int and 1 <= osa_aikaisuus <= 100


def tyopaikkatieto_puuttuu(jakso: Jakso) -> bool:
    """E12: a bundle needs the instructor's name, the workplace name and its y-tunnus."""
    return (
        not is_present(jakso.ohjaaja.nimi)
        or not is_present(jakso.tyopaikan_nimi)
        or not is_present(jakso.tyopaikan_ytunnus)
    )


@dataclass(frozen=True)
class JaksoState:
    """A jakso's stored tila and syy (syy may be None in the later states)."""

    tila: Tila
    syy: Syy | None = None


_BUNDLED_OR_LATER_TILAT = frozenset(
    {Tila.NIPUTETTU, Tila.LAHETETTY, Tila.VASTATTU, Tila.VASTAUSAIKA_LOPPUNUT}
)
_BUNDLE_OUTCOMES = frozenset({Syy.YHTEYSTIETO_PUUTTUU, Syy.ARVO_EI_KYSELYA})


def is_bundled_or_later(state: JaksoState) -> bool:
    """E18: `niputettu` or a later state, including its bundle's outcomes (C3, Arvo 404)."""
    return state.tila in _BUNDLED_OR_LATER_TILAT or state.syy in _BUNDLE_OUTCOMES


@dataclass(frozen=True)
class Transition:
    """E18: one re-evaluation of a jakso: old → new state, the deciding rule, and what
    changed. `applied` is False when the jakso was already bundled: the change is
    recorded and reported but the stored state stays `old`."""

    jakso_id: JaksoId
    old: JaksoState | None
    new: JaksoState
    rule: str
    changed: tuple[str, ...]
    applied: bool

    @property
    def resulting(self) -> JaksoState:
        """The state to store after this transition."""
        if self.applied or self.old is None:
            return self.new
        return self.old


def reevaluate(
    jakso_id: JaksoId,
    current: JaksoState | None,
    evaluated: Eligibility,
    changed: Sequence[str] = (),
) -> Transition:
    """E18: record a re-evaluation; a jakso in `niputettu` or later is never re-bundled
    or reset, so its new evaluation is recorded without being applied."""
    frozen = current is not None and is_bundled_or_later(current)
    return Transition(
        jakso_id=jakso_id,
        old=current,
        new=evaluated.state,
        rule=evaluated.rule,
        changed=tuple(changed),
        applied=not frozen,
    )


class LoppuMuutos(StrEnum):
    """W4: how a jakso's end date (its herätepäivä) changed."""

    UNCHANGED = "ennallaan"
    SET = "asetettu"
    REMOVED = "poistettu"
    LATER = "myohemmaksi"
    EARLIER_FUTURE = "aiemmaksi_tulevaisuuteen"
    EARLIER_PAST = "aiemmaksi_menneisyyteen"


def classify_loppu_change(old: date | None, new: date | None, today: date) -> LoppuMuutos:
    """W4: in every case the new date is the herätepäivä, so re-running `evaluate`
    decides. Moved earlier to today or before, the jakso is surveyed only if W2 still
    leaves time when the next run evaluates it (W3), else E13 `vastausaika_umpeutunut`;
    a bundled jakso stays as it was sent (E18)."""
    if old == new:
        return LoppuMuutos.UNCHANGED
    if old is None:
        return LoppuMuutos.SET
    if new is None:
        return LoppuMuutos.REMOVED
    if new > old:
        return LoppuMuutos.LATER
    if new > today:
        return LoppuMuutos.EARLIER_FUTURE
    return LoppuMuutos.EARLIER_PAST
