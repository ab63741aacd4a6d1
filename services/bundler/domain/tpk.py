"""TPK, the workplace survey: which jaksot count (T2), the bundle key (T3) and the
run's tiedonkeruukausi (T4)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from services.bundler.domain.eligibility import JaksoState, Syy, Tila
from services.bundler.domain.jakso import Jakso, JaksoId, is_present, normalize_ytunnus
from shared.domain.dates import AnswerWindow, Tiedonkeruukausi
from shared.domain.names import normalize_name

#: T2: `oppisopimuksenperusta_02`, an entrepreneur's own apprenticeship.
YRITTAJAN_OPPISOPIMUS = "02"

_TEP_ELIGIBLE_STATES = frozenset(
    {
        JaksoState(Tila.ODOTTAA, Syy.ODOTTAA_NIPUTUSTA),
        JaksoState(Tila.ODOTTAA, Syy.JATKUU_MYOHEMMIN),
        JaksoState(Tila.EI_LAHETETA, Syy.YHTEYSTIETO_PUUTTUU),
    }
)
_LATER_TILAT = frozenset({Tila.NIPUTETTU, Tila.LAHETETTY, Tila.VASTATTU, Tila.VASTAUSAIKA_LOPPUNUT})


def is_tpk_run_date(day: date) -> bool:
    """T4: the TPK run is due on 1.1 (the autumn's bundles) and 1.7 (the spring's)."""
    return day.day == 1 and day.month in (1, 7)


#: T2: the stored tilat of jaksot that may count (the states are checked exactly by
#: `is_tep_eligible_state`); a store can filter by these first.
TPK_TILAT = frozenset({Tila.ODOTTAA, Tila.EI_LAHETETA, *_LATER_TILAT})


def is_tep_eligible_state(state: JaksoState) -> bool:
    """T2: E15 (or its J4 form, waiting for the jatkumo's latest jakso) or a later state;
    of `ei_laheteta` only the contact outcome (C3) counts."""
    return state in _TEP_ELIGIBLE_STATES or state.tila in _LATER_TILAT


def is_yrittajan_oppisopimus(jakso: Jakso) -> bool:
    """T2: an entrepreneur's own apprenticeship is not asked about their own workplace."""
    return jakso.oppisopimuksen_perusta == YRITTAJAN_OPPISOPIMUS


def is_tpk_jakso(jakso: Jakso, state: JaksoState, kausi: Tiedonkeruukausi) -> bool:
    """T2: a TEP-eligible jakso ending in `kausi`, unless it is an entrepreneur's own."""
    return (
        jakso.loppu is not None
        and kausi.contains(jakso.loppu)
        and is_tep_eligible_state(state)
        and not is_yrittajan_oppisopimus(jakso)
    )


@dataclass(frozen=True, order=True)
class TpkNippuKey:
    """T3: koulutustoimija + y-tunnus + normalised workplace name, within one kausi."""

    koulutustoimija: str
    y_tunnus: str
    tyopaikka_normalisoitu: str
    kausi: Tiedonkeruukausi


def tpk_key(jakso: Jakso, koulutustoimija: str, kausi: Tiedonkeruukausi) -> TpkNippuKey:
    """T3: spellings that normalise differently are different bundles."""
    nimi, y_tunnus = jakso.tyopaikan_nimi, jakso.tyopaikan_ytunnus
    if not is_present(nimi) or not is_present(y_tunnus):
        raise ValueError(f"jakso {jakso.id} has no workplace (E12) and is not in TPK")
    return TpkNippuKey(koulutustoimija, normalize_ytunnus(y_tunnus), normalize_name(nimi), kausi)


@dataclass(frozen=True)
class TpkCandidate:
    jakso: Jakso
    state: JaksoState
    koulutustoimija: str


@dataclass(frozen=True)
class TpkNippu:
    """T5: one Arvo link per TPK bundle."""

    key: TpkNippuKey
    tyopaikka: str
    """The workplace name as written on the bundle's first jakso."""
    jaksot: tuple[JaksoId, ...]

    @property
    def answer_window(self) -> AnswerWindow:
        """T4."""
        return self.key.kausi.answer_window


def tpk_kausi_for_run(run_date: date) -> Tiedonkeruukausi | None:
    """T4: the kausi a TPK run on `run_date` forms bundles for: the one whose answer
    window contains the run date (the run on 1.7 forms the spring's, on 1.1 the
    autumn's; repeating it later in the window adds late jaksot). None outside windows.
    """
    for kausi in (
        Tiedonkeruukausi(date(run_date.year - 1, 7, 1)),
        Tiedonkeruukausi(date(run_date.year, 1, 1)),
    ):
        if kausi.answer_window.contains(run_date):
            return kausi
    return None


def niputa_tpk(candidates: Iterable[TpkCandidate], kausi: Tiedonkeruukausi) -> tuple[TpkNippu, ...]:
    """T2, T3: the TPK bundles of `kausi`, sorted by key, independent of input order.

    A repeated run (T4) gives the same keys, so the caller adds late jaksot to an
    existing bundle without a link or creates a new one.
    """
    by_key: defaultdict[TpkNippuKey, list[Jakso]] = defaultdict(list)
    for c in candidates:
        if is_tpk_jakso(c.jakso, c.state, kausi):
            by_key[tpk_key(c.jakso, c.koulutustoimija, kausi)].append(c.jakso)
    niput = []
    for key in sorted(by_key):
        members = sorted(by_key[key], key=lambda j: j.id)
        nimi = (members[0].tyopaikan_nimi or "").strip()
        niput.append(TpkNippu(key, nimi, tuple(j.id for j in members)))
    return tuple(niput)
