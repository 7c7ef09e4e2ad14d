"""Synthetic corporate park: the reference lists (58 wilayas, customer segments, offers, company
names), a reproducible row generator, and the batched raw insert behind `seed_corporate_park`."""

import random
import time
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, islice
from typing import NamedTuple

from django.core.management.color import no_style
from django.db import connection, transaction

from .models import DATE_COLUMN, EXPORT_FIELDS, CorporateParkRecord

DEFAULT_SEED = 42
BATCH_ROWS = 10_000
PROGRESS_EVERY = 100_000
SQLITE_CACHE_KIB = 256_000

# (French name, weight) in the official order, so position + 1 is the wilaya number used in
# actel codes. Weights follow population, raised where corporate lines concentrate (Alger, Oran,
# Constantine, Sétif, Annaba, Ouargla's oil fields) and floored so every wilaya appears.
# fmt: off
WILAYAS: tuple[tuple[str, int], ...] = (
    ("Adrar", 300), ("Chlef", 900), ("Laghouat", 450), ("Oum El Bouaghi", 550),
    ("Batna", 1100), ("Béjaïa", 1150), ("Biskra", 600), ("Béchar", 250), ("Blida", 1300),
    ("Bouira", 650), ("Tamanrasset", 150), ("Tébessa", 600), ("Tlemcen", 1000),
    ("Tiaret", 750), ("Tizi Ouzou", 1200), ("Alger", 9000), ("Djelfa", 900), ("Jijel", 550),
    ("Sétif", 2200), ("Saïda", 300), ("Skikda", 900), ("Sidi Bel Abbès", 700),
    ("Annaba", 1300), ("Guelma", 450), ("Constantine", 2400), ("Médéa", 700),
    ("Mostaganem", 700), ("M'Sila", 850), ("Mascara", 650), ("Ouargla", 800), ("Oran", 3600),
    ("El Bayadh", 220), ("Illizi", 60), ("Bordj Bou Arréridj", 700), ("Boumerdès", 950),
    ("El Tarf", 380), ("Tindouf", 60), ("Tissemsilt", 280), ("El Oued", 500),
    ("Khenchela", 360), ("Souk Ahras", 400), ("Tipaza", 650), ("Mila", 650),
    ("Aïn Defla", 650), ("Naâma", 200), ("Aïn Témouchent", 380), ("Ghardaïa", 400),
    ("Relizane", 620), ("Timimoun", 120), ("Bordj Badji Mokhtar", 50), ("Ouled Djellal", 170),
    ("Béni Abbès", 60), ("In Salah", 70), ("In Guezzam", 50), ("Touggourt", 250),
    ("Djanet", 50), ("El M'Ghair", 150), ("El Meniaa", 70),
)
WILAYA_NAMES: tuple[str, ...] = tuple(name for name, _ in WILAYAS)

# (L1 code, description, weight, L2s); an L2 is (code, description, L3 descriptions, customer
# name templates). Empty templates mean a generated company name; "{dot}" is the wilaya and
# "{de_dot}" the wilaya after "de", elided before a vowel ("d'Alger", "de Batna").
SEGMENTS = (
    ("01", "Grands Comptes", 10, (
        ("0101", "Énergie et mines", ("Hydrocarbures", "Électricité et gaz", "Mines"), (
            "Sonatrach - Direction régionale {dot}", "شركة سوناطراك", "Naftal, District {dot}",
            "Sonelgaz Distribution {dot}", "الشركة الوطنية للكهرباء والغاز")),
        ("0102", "Banques et assurances", ("Banques publiques", "Banques privées", "Assurances"), (
            "Banque Extérieure d'Algérie, Agence {dot}", "BNA - Agence {dot}", "CPA {dot}",
            "Société Algérienne d'Assurances (SAA)", "بنك الفلاحة والتنمية الريفية")),
        ("0103", "Transport et télécommunications", ("Aérien", "Ferroviaire", "Postes"), (
            "Air Algérie", "SNTF - Gare {de_dot}", "Algérie Poste, Unité {de_dot}",
            "مؤسسة الجزائر للاتصالات", "Entreprise Portuaire d'Annaba")),
    )),
    ("02", "Administration publique", 25, (
        ("0201", "Ministères et institutions", ("Ministères", "Institutions nationales"), (
            "Ministère de l'Intérieur, des Collectivités locales et de l'Aménagement du territoire",
            "Ministère de la Santé", "وزارة التربية الوطنية", "Cour {de_dot}")),
        ("0202", "Collectivités locales", ("Wilayas", "Daïras", "Communes (APC)"), (
            "Wilaya {de_dot}", "APC {de_dot}", "Daïra {de_dot}", "المجلس الشعبي البلدي")),
        ("0203", "Santé publique", ("CHU", "EPH", "EPSP"), (
            "EPH {de_dot}", "EPSP {de_dot}", "Direction de la santé {de_dot}",
            "المؤسسة العمومية الاستشفائية")),
        ("0204", "Éducation et formation",
         ("Universités", "Lycées et CEM", "Formation professionnelle"), (
            "Université {de_dot}", "Direction de l'éducation {de_dot}", "CFPA {de_dot}",
            "جامعة التكوين المتواصل")),
    )),
    ("03", "Entreprises", 30, (
        ("0301", "Industrie", ("Agroalimentaire", "BTP", "Pharmaceutique"), ()),
        ("0302", "Commerce et distribution",
         ("Grande distribution", "Import-export", "Concessionnaires"), ()),
        ("0303", "Services",
         ("Transport et logistique", "Hôtellerie et tourisme", "Cliniques privées"), ()),
    )),
    ("04", "PME", 35, (
        ("0401", "PME industrie", ("Ateliers", "Menuiserie et métallurgie"), ()),
        ("0402", "PME commerce", ("Commerce de gros", "Commerce de détail"), ()),
        ("0403", "PME services", ("Bureaux d'études", "Professions libérales", "Cybercafés"), ()),
    )),
)

# (telecom type, weight, ((offer type, offer names), ...)); some names hold commas, quotes
# or a leading "+" on purpose, since exports must carry them unchanged.
OFFERS = (
    ("Fixe", 30, (
        ("Voix fixe", ("Ligne professionnelle", "Forfait Entreprise 2000 min, national",
                       "Standard téléphonique IP")),
        ("Numéro vert", ("Numéro Vert 3000", "Numéro Azur")),
    )),
    ("Internet", 35, (
        ("ADSL", ("Idoom ADSL Pro 8 Mbps", "Idoom ADSL Pro 20 Mbps")),
        ("Fibre optique", ("Idoom Fibre Pro 100 Mbps", "Idoom Fibre 300 Mbps, IP fixe")),
        ("4G LTE", ("Idoom 4G LTE Pro 60 Go", "+50 Go Data Pro")),
    )),
    ("Data", 15, (
        ("Liaison spécialisée", ("LS Nationale 2 Mbps", "LS Internationale 10 Mbps")),
        ("VPN IP/MPLS", ("VPN IP/MPLS 4 Mbps", "VPN IP/MPLS 20 Mbps, secours 4G")),
        ("Hébergement", ("Hébergement Cloud « Pro »", "Colocation Datacenter 1U")),
    )),
    ("Mobile", 20, (
        ("Forfait postpayé", ("Flotte Entreprise 1500 DA", "Flotte Pro Illimité",
                              'Forfait "Business" 4G')),
        ("M2M", ("M2M Suivi de flotte", "Carte SIM IoT 500 Mo")),
    )),
)

# (subscriber status, weight, ((state, weight), ...)): the line state follows the status.
STATUSES = (
    ("Actif", 70, (("En service", 92), ("En dérangement", 8))),
    ("Suspendu", 10, (("Hors service", 80), ("En dérangement", 20))),
    ("Résilié", 12, (("Clôturé", 100),)),
    ("En cours d'activation", 5, (("En attente", 100),)),
    ("Bloqué", 3, (("Hors service", 100),)),
)

COMPANY_FORMS = ("SARL", "Sarl", "EURL", "SPA", "SNC", "ETS", "Groupe")
COMPANY_STEMS = ("L'Étoile", "El Amel", "Tassili", "Djurdjura", "Hoggar", "Es-Salam", "El Baraka",
                 "Ennour", "Numidia", "Atlas", "Cirta", "Titteri", "Zianides", "Sahel", "Médina")
COMPANY_TRADES = ("Services", "Distribution", "Négoce", "BTP", "Import-Export", "Informatique",
                  "Agroalimentaire", "Transport & Logistique", "Travaux publics", "Pharmacie")
COMPANY_PATTERNS = ("{form} {stem} {trade}", "{form} {stem}, {trade}",
                    "{form} {stem} {trade} {dot}", '{form} "{stem}" {trade}',
                    "{form} {stem} {trade} ({dot})")
ARABIC_SHARE = 0.15  # of generated company names, written in Arabic
ARABIC_FORMS = ("شركة", "مؤسسة", "مجمع")
ARABIC_STEMS = ("الأمل", "النور", "البركة", "السلام", "الهضاب", "الساحل", "الواحات")
ARABIC_TRADES = ("للتوزيع", "للخدمات", "للأشغال العمومية", "للاستيراد والتصدير", "للنقل")
# fmt: on

# Creation dates run from 2010 to late 2026, denser in recent years as the park grew; a fixed
# end (not "now") keeps a seed's rows the same whatever the day it runs.
DATE_START = datetime(2010, 1, 1, tzinfo=UTC)
DATE_SPAN_SECONDS = int((datetime(2026, 12, 1, tzinfo=UTC) - DATE_START).total_seconds())


class _Table(NamedTuple):
    """Items with cumulative weights, for weighted picks by bisection."""

    items: tuple
    cum: tuple[float, ...]


def _table(pairs: Iterable[tuple[object, float]]) -> _Table:
    items, weights = zip(*pairs)
    return _Table(tuple(items), tuple(accumulate(weights)))


def _pick(table: _Table, rng: random.Random):
    # Same arithmetic as random.choices(cum_weights=...), without its per-call overhead.
    return table.items[bisect(table.cum, rng.random() * table.cum[-1], 0, len(table.cum) - 1)]


def _one(items: Sequence, rng: random.Random):
    return items[int(rng.random() * len(items))]


def _de(name: str) -> str:
    return f"d'{name}" if name[0] in "AEIOUÂÉÈÎ" else f"de {name}"


def _wilaya_table() -> _Table:
    # Bigger wilayas have more actels (commercial agencies): one per ~100 weight, 2 to 40.
    return _table(
        ((number, name, _de(name), max(2, min(40, weight // 100))), weight)
        for number, (name, weight) in enumerate(WILAYAS, start=1)
    )


def _segment_table() -> _Table:
    leaves = []
    for l1_code, l1_desc, l1_weight, l2s in SEGMENTS:
        for l2_code, l2_desc, l3_descs, templates in l2s:
            for index, l3_desc in enumerate(l3_descs, start=1):
                codes = (l1_code, l1_desc, l2_code, l2_desc, f"{l2_code}{index:03d}", l3_desc)
                leaves.append(((codes, templates), l1_weight / len(l2s) / len(l3_descs)))
    return _table(leaves)


def _offer_table() -> _Table:
    return _table(
        ((telecom, offer_type, name), weight / len(types) / len(names))
        for telecom, weight, types in OFFERS
        for offer_type, names in types
        for name in names
    )


def _status_table() -> _Table:
    return _table(((status, _table(states)), weight) for status, weight, states in STATUSES)


_WILAYA_TABLE = _wilaya_table()
_SEGMENT_TABLE = _segment_table()
_OFFER_TABLE = _offer_table()
_STATUS_TABLE = _status_table()


def _company_name(rng: random.Random, dot: str) -> str:
    if rng.random() < ARABIC_SHARE:
        return f"{_one(ARABIC_FORMS, rng)} {_one(ARABIC_STEMS, rng)} {_one(ARABIC_TRADES, rng)}"
    return _one(COMPANY_PATTERNS, rng).format(
        form=_one(COMPANY_FORMS, rng),
        stem=_one(COMPANY_STEMS, rng),
        trade=_one(COMPANY_TRADES, rng),
        dot=dot,
    )


def _row(rng: random.Random) -> tuple:
    number, dot, de_dot, actels = _pick(_WILAYA_TABLE, rng)
    actel_code = f"{number:02d}{int(rng.random() * actels) + 1:03d}"
    segment, templates = _pick(_SEGMENT_TABLE, rng)
    offer = _pick(_OFFER_TABLE, rng)
    status, states = _pick(_STATUS_TABLE, rng)
    state = _pick(states, rng)
    # sqrt skews the draw toward recent years: the park grows over time.
    seconds = int(DATE_SPAN_SECONDS * rng.random() ** 0.5)
    created = DATE_START + timedelta(seconds=seconds)
    if templates:
        name = _one(templates, rng).format(dot=dot, de_dot=de_dot)
    else:
        name = _company_name(rng, dot)
    return (dot, actel_code, *segment, *offer, status, created, state, name)


def iter_rows(*, seed: int = DEFAULT_SEED, count: int) -> Iterator[tuple]:
    """Yield `count` rows as tuples in EXPORT_FIELDS order, creation dates aware UTC.

    Rows depend on the seed alone, and each row only on those before it, so a smaller run
    is a prefix of a larger one with the same seed."""
    rng = random.Random(seed)
    for _ in range(count):
        yield _row(rng)


@dataclass(frozen=True)
class SeedOutcome:
    """What records_seed did: rows inserted and the seconds it took, or the rows it left."""

    inserted: int
    elapsed: float
    existing: int = 0  # rows found when if_empty left the table alone

    @property
    def skipped(self) -> bool:
        return self.existing > 0


def records_seed(
    *,
    rows: int,
    seed: int = DEFAULT_SEED,
    replace: bool = False,
    if_empty: bool = False,
    batch_rows: int | None = None,
    on_progress: Callable[[int, float], None] | None = None,
) -> SeedOutcome:
    """Insert `rows` generated records, in batches of one transaction each.

    With if_empty, a table that already holds rows is left alone. With replace, the table is
    emptied (ids restart at 1) first. on_progress(done, elapsed) runs every PROGRESS_EVERY rows."""
    if if_empty and (existing := CorporateParkRecord.objects.count()):
        return SeedOutcome(inserted=0, elapsed=0.0, existing=existing)
    if replace:
        _records_delete_all()
    started = time.monotonic()
    done = 0
    with _large_page_cache():
        for batch in _batches(iter_rows(seed=seed, count=rows), batch_rows or BATCH_ROWS):
            _insert_batch(batch)
            before, done = done, done + len(batch)
            if on_progress and done // PROGRESS_EVERY > before // PROGRESS_EVERY:
                on_progress(done, time.monotonic() - started)
    return SeedOutcome(inserted=done, elapsed=time.monotonic() - started)


def _batches(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    while batch := list(islice(rows, size)):
        yield batch


@contextmanager
def _large_page_cache() -> Iterator[None]:
    """On SQLite, a page cache that holds the table's nine indexes while they grow.

    With the default 2 MB, index pages are evicted and read back for every batch: about a
    third of the time of a million-row seed. The connection's own size is restored after."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        previous = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {previous:d}")


def _records_delete_all() -> None:
    # The backend's flush SQL: TRUNCATE ... RESTART IDENTITY on PostgreSQL, DELETE plus a
    # sqlite_sequence reset on SQLite, so a reseed gives the same ids as well as the same rows.
    table = CorporateParkRecord._meta.db_table
    sql = connection.ops.sql_flush(no_style(), [table], reset_sequences=True)
    with transaction.atomic():
        connection.ops.execute_sql_flush(sql)


def _insert_sql() -> str:
    quote, meta = connection.ops.quote_name, CorporateParkRecord._meta
    columns = ", ".join(quote(meta.get_field(field).column) for field in EXPORT_FIELDS)
    placeholders = ", ".join(["%s"] * len(EXPORT_FIELDS))
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"


def _insert_batch(batch: list[tuple]) -> None:
    # A raw cursor skips the ORM's per-object work, so the datetime must be adapted here exactly
    # as the ORM would: SQLite's own adapter would keep "+00:00", which the ORM never writes, and
    # exact lookups on creation_date would then miss.
    adapt = connection.ops.adapt_datetimefield_value
    params = [
        (*row[:DATE_COLUMN], adapt(row[DATE_COLUMN]), *row[DATE_COLUMN + 1 :]) for row in batch
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(_insert_sql(), params)
