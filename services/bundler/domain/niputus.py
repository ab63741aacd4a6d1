"""TEP bundles: the bundle key (N1), grouping due jaksot (J4, N3, D3, W3) and the
identifier sent to Arvo (N2)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from services.bundler.domain.jakso import (
    Jakso,
    JaksoId,
    Opiskeluoikeus,
    is_present,
    normalize_ytunnus,
)
from shared.domain.dates import is_answer_window_closed
from shared.domain.koodisto import Hankkimistapa
from shared.domain.names import nippu_tunniste, normalize_name
from shared.events import NippuJaksoPayload

#: D1, D2: every niputuspvm is the 1st or the 16th of a month, so TEP runs then (D3).
TEP_RUN_DAYS = frozenset({1, 16})


def is_tep_run_date(day: date) -> bool:
    """D3: the TEP run is due on bundling dates (with D2 alone the 16th finds nothing
    new but late jaksot, which it bundles as the first run after they became eligible)."""
    return day.day in TEP_RUN_DAYS


@dataclass(frozen=True, order=True)
class NippuKey:
    """N1: jaksot with equal keys that are due on a run form one bundle."""

    ohjaaja: str
    """The instructor's name, normalised (N4)."""
    y_tunnus: str
    koulutustoimija: str
    tutkinto: str
    niputuspvm: date


def nippu_key(jakso: Jakso, opiskeluoikeus: Opiskeluoikeus, niputuspvm: date) -> NippuKey:
    """N1: normalised instructor name + y-tunnus + koulutustoimija + tutkinto + niputuspvm.

    Only for jaksot that passed E5 and E12; anything else is a programming error. A
    study right without koulutustoimija or tutkinto (the payload allows both to be
    missing) has no key either: the caller must not pass it as eligible.
    """
    suoritus = opiskeluoikeus.ammatillinen_suoritus
    ohjaaja = jakso.ohjaaja.nimi
    y_tunnus = jakso.tyopaikan_ytunnus
    if suoritus is None or not is_present(ohjaaja) or not is_present(y_tunnus):
        raise ValueError(f"jakso {jakso.id} cannot be bundled: it fails E5 or E12")
    koulutustoimija, tutkinto = opiskeluoikeus.koulutustoimija_oid, suoritus.tutkinto
    if koulutustoimija is None or tutkinto is None:
        raise ValueError(f"jakso {jakso.id} cannot be bundled: no koulutustoimija or tutkinto")
    return NippuKey(
        ohjaaja=normalize_name(ohjaaja),
        y_tunnus=normalize_ytunnus(y_tunnus),
        koulutustoimija=koulutustoimija,
        tutkinto=tutkinto,
        niputuspvm=niputuspvm,
    )


@dataclass(frozen=True)
class NiputusCandidate:
    """An eligible jakso (E15) waiting for a run, with its key and workplace name."""

    jakso_id: JaksoId
    key: NippuKey
    tyopaikan_nimi: str


def candidate(jakso: Jakso, opiskeluoikeus: Opiskeluoikeus, niputuspvm: date) -> NiputusCandidate:
    """The candidate of an eligible jakso; `niputuspvm` comes from its evaluation (D1/D2)."""
    return NiputusCandidate(
        jakso_id=jakso.id,
        key=nippu_key(jakso, opiskeluoikeus, niputuspvm),
        tyopaikan_nimi=(jakso.tyopaikan_nimi or "").strip(),
    )


@dataclass(frozen=True)
class Nippu:
    """A TEP bundle: one link, one message for its jaksot (N1)."""

    key: NippuKey
    tyopaikka: str
    jaksot: tuple[JaksoId, ...]

    def tunniste(self, suffix: str) -> str:
        """N2: the identifier sent to Arvo; `suffix` is the caller's randomness."""
        return nippu_tunniste(self.tyopaikka, self.key.niputuspvm, suffix)


@dataclass(frozen=True)
class NiputusResult:
    """What a TEP run does with its candidates."""

    niput: tuple[Nippu, ...]
    """New bundles, sorted by key (N1, J4)."""
    not_due: tuple[JaksoId, ...]
    """Still waiting for their niputuspvm (N3)."""
    window_closed: tuple[JaksoId, ...]
    """Due, but W2 closed before the run: `vastausaika_umpeutunut` (W3, E13)."""


def is_due(niputuspvm: date, run_date: date) -> bool:
    """N3, D3: a jakso is bundled by the run of its niputuspvm or, if late, the first
    run after that."""
    return niputuspvm <= run_date


def niputa(candidates: Iterable[NiputusCandidate], run_date: date) -> NiputusResult:
    """N1, N3, D3, W3: group the due candidates of the run of `run_date` into bundles.

    The earlier jaksot of a jatkumo come with its latest jakso's niputuspvm (J4,
    `jatkumo.evaluate_hoks`), so they share its key and its bundle.

    A late jakso keeps its own niputuspvm in its key (D3), so it never joins a bundle
    of a later date. The result does not depend on the order of `candidates`: bundles
    are sorted by key, jaksot by id, and a bundle's workplace name is that of its
    first jakso.
    """
    by_key: defaultdict[NippuKey, list[NiputusCandidate]] = defaultdict(list)
    not_due: list[JaksoId] = []
    window_closed: list[JaksoId] = []
    seen: set[JaksoId] = set()
    for c in candidates:
        if c.jakso_id in seen:
            raise ValueError(f"jakso {c.jakso_id} is a candidate twice")
        seen.add(c.jakso_id)
        if not is_due(c.key.niputuspvm, run_date):
            not_due.append(c.jakso_id)
        elif is_answer_window_closed(c.key.niputuspvm, run_date):
            window_closed.append(c.jakso_id)
        else:
            by_key[c.key].append(c)
    niput = []
    for key in sorted(by_key):
        members = sorted(by_key[key], key=lambda c: c.jakso_id)
        niput.append(Nippu(key, members[0].tyopaikan_nimi, tuple(c.jakso_id for c in members)))
    return NiputusResult(tuple(niput), tuple(sorted(not_due)), tuple(sorted(window_closed)))


def nippu_jakso(
    jakso_id: int, jakso: Jakso, opiskeluoikeus: Opiskeluoikeus, key: NippuKey, kesto: int
) -> NippuJaksoPayload:
    """One jakso of a bundle as Arvo's POST vastaajatunnus needs it (arvo-api.md), with
    its kesto (K2). `jakso_id` is the bundler's row id; the jakso is one `niputa` bundled
    (it passed E5, E12 and has a `loppu`)."""
    suoritus = opiskeluoikeus.ammatillinen_suoritus
    if suoritus is None or jakso.loppu is None:
        raise ValueError(f"jakso {jakso.id} cannot be bundled: no suoritus or loppu")
    osa = jakso.tutkinnon_osa
    paikallinen = osa.kind == "paikallinen"
    tyopaikka = (jakso.tyopaikan_nimi or "").strip()
    return NippuJaksoPayload(
        jakso_id=jakso_id,
        koulutustoimija_oid=key.koulutustoimija,
        oppilaitos_oid=opiskeluoikeus.oppilaitos_oid,
        toimipiste_oid=suoritus.toimipiste_oid,
        tyonantaja=key.y_tunnus,
        tyopaikka=tyopaikka,
        tyopaikka_normalisoitu=normalize_name(tyopaikka),
        tutkintotunnus=key.tutkinto,
        tutkinnon_osa=None if paikallinen else osa.koodi,
        paikallinen_tutkinnon_osa=osa.nimi if paikallinen else None,
        tutkintonimike=list(suoritus.tutkintonimikkeet),
        osaamisala=list(suoritus.osaamisalat),
        tyopaikkajakson_alkupvm=jakso.alku,
        tyopaikkajakson_loppupvm=jakso.loppu,
        rahoituskausi_pvm=jakso.loppu,
        osa_aikaisuus=jakso.osa_aikaisuus,
        sopimustyyppi=(
            "oppisopimus" if jakso.hankkimistapa is Hankkimistapa.OPPISOPIMUS else "koulutussopimus"
        ),
        oppisopimuksen_perusta=jakso.oppisopimuksen_perusta,
        kesto=kesto,
    )
