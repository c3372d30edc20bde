"""The hand-written SQL helpers load rows exactly as the ORM does."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.db import by_pk, int_rows, one_of
from dispatch.models import Responder
from dispatch.tests.factories import responder
from incidents.models import Incident


def _fields(instance: object, model: type[Model]) -> dict[str, object]:
    return {f.attname: getattr(instance, f.attname) for f in model._meta.concrete_fields}


@pytest.mark.django_db
def test_whole_rows_load_as_in_bulk_loads_them() -> None:
    people = [responder(at=(37.77, -122.22), name=f"Ana {i}") for i in range(3)]
    Responder.objects.filter(pk=people[1].pk).update(off_until=timezone.now())
    wanted = [p.pk for p in people]
    loaded, expected = by_pk(Responder, wanted), Responder.objects.in_bulk(wanted)
    assert loaded.keys() == expected.keys()
    for pk, person in loaded.items():
        # Encrypted fields decrypt on access, as the ORM's instances do.
        assert _fields(person, Responder) == _fields(expected[pk], Responder)
        assert person.name == expected[pk].name and person.phone == expected[pk].phone
        assert not person._state.adding and person._state.db == "default"
    assert timezone.is_aware(loaded[people[1].pk].off_until)


@pytest.mark.django_db
def test_uuids_and_timestamps_convert_on_both_databases() -> None:
    now = timezone.now()
    incident = Incident.objects.create(
        lat=37.77, lng=-122.22, h3_cell=1, first_seen=now, last_seen=now
    )
    (loaded,) = by_pk(Incident, [incident.pk]).values()
    assert _fields(loaded, Incident) == _fields(Incident.objects.get(pk=incident.pk), Incident)


@pytest.mark.django_db
def test_missing_keys_are_absent_and_no_keys_ask_nothing() -> None:
    person = responder()
    assert by_pk(Responder, [person.pk, person.pk + 1000]).keys() == {person.pk}
    with CaptureQueriesContext(connection) as ctx:
        assert by_pk(Responder, []) == {}
    assert len(ctx) == 0


@pytest.mark.django_db
def test_the_statement_does_not_grow_with_the_values_on_postgresql() -> None:
    few, few_params = one_of("h3_cell", [1, 2, 3])
    many, many_params = one_of("h3_cell", list(range(300)))
    if connection.vendor == "postgresql":
        assert few == many and len(many_params) == 1
    else:
        assert len(many_params) == 300
    with connection.cursor() as cursor:
        # Both forms select exactly the listed values.
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT 5 AS h3_cell UNION SELECT 500) t WHERE "  # noqa: S608
            + many,
            many_params,
        )
        assert cursor.fetchone() == (1,)
        sql = "SELECT COUNT(*) FROM (SELECT 2 AS h3_cell) t WHERE " + few  # noqa: S608
        cursor.execute(sql, few_params)
        assert cursor.fetchone() == (1,)


def test_only_integers_reach_the_statement() -> None:
    with pytest.raises(ValueError):
        one_of("id", ["1}, {2"])  # type: ignore[list-item]  # what a caller must not pass


@pytest.mark.django_db
def test_rows_of_integers_join_as_a_table_of_any_size() -> None:
    # Large values (H3 cells use all 63 bits) come back exactly, in every column.
    rows = [(631_210_968_840_516_095 + i, i % 7) for i in range(2000)]
    relation, params = int_rows("d", ("cell", "cell_rank"), rows)
    small, small_params = int_rows("d", ("cell", "cell_rank"), rows[:3])
    if connection.vendor == "postgresql":
        assert relation == small and len(params) == len(small_params) == 2
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT d.cell, d.cell_rank FROM {relation}", params)  # noqa: S608
        assert sorted(cursor.fetchall()) == rows
        cursor.execute(f"SELECT COUNT(*) FROM {small}", small_params)  # noqa: S608
        assert cursor.fetchone() == (3,)
        empty, empty_params = int_rows("d", ("cell",), [])
        cursor.execute(f"SELECT COUNT(*) FROM {empty}", empty_params)  # noqa: S608
        assert cursor.fetchone() == (0,)


def test_rows_of_integers_refuse_anything_else() -> None:
    with pytest.raises(ValueError):
        int_rows("d", ("cell",), [("1], [2",)])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        int_rows("d", ("cell", "rank"), [(1,)])  # a value missing
    with pytest.raises(ValueError):
        int_rows("d; DROP TABLE x", ("cell",), [(1,)])  # names are identifiers
