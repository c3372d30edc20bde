"""The spool: texts that arrive while the database is unreachable are answered, kept on
disk (encrypted, fsync'd, in arrival order) and stored exactly once when it is back."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, OperationalError, ProgrammingError
from django.test import Client

from conftest import post_twilio, sms_params
from core import phones
from intake.models import Report
from intake.tests.test_web_form import form
from messaging import actions, spool
from messaging.models import (
    InboundKind,
    InboundMessage,
    OptOut,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
)
from messaging.tests.test_twilio_webhook import reply_of

PATH = "/hooks/twilio/sms"
SENDER = "+15105550123"


@pytest.fixture(autouse=True)
def _no_background_replay(request: Any) -> Any:
    """The web process's replay thread would write beside the test's transaction; only
    the test about that thread lets it run."""
    if "on_its_own" in request.node.name:
        yield
        return
    with mock.patch("messaging.spool.start_replayer"):
        yield


class Outage:
    """Makes every store fail as a database that is down does, until ended."""

    def __init__(self) -> None:
        self.patch = mock.patch(
            "messaging.spool.receive_sms",
            side_effect=OperationalError("connection refused"),
        )

    def __enter__(self) -> Outage:
        self.patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.patch.stop()


def files() -> list[Path]:
    return spool._files()


def sids_in_order() -> list[str]:
    return list(InboundMessage.objects.order_by("pk").values_list("provider_sid", flat=True))


@pytest.mark.django_db
class TestWebhookDuringAnOutage:
    def test_a_report_is_answered_and_kept_encrypted_on_disk(self, client: Client) -> None:
        body = "Agents at the Fruitvale BART station right now"
        with Outage():
            response = post_twilio(client, PATH, sms_params("SMout1", body))
        assert response.status_code == 200
        assert "received your report" in reply_of(response)
        assert not InboundMessage.objects.exists()
        (path,) = files()
        raw = path.read_bytes()
        for secret in (body, "Fruitvale", SENDER, "5105550123"):
            assert secret.encode() not in raw
        assert path.stat().st_mode & 0o777 == 0o600
        assert spool.read(path).body == body

    def test_spanish_is_acknowledged_in_spanish_without_the_database(self, client: Client) -> None:
        with Outage():
            response = post_twilio(
                client, PATH, sms_params("SMout2", "Hay agentes de inmigración en la esquina")
            )
        assert "recibió su reporte" in reply_of(response)

    def test_a_keyword_gets_no_answer_until_it_is_stored(self, client: Client) -> None:
        with Outage():
            response = post_twilio(client, PATH, sms_params("SMhelp", "HELP"))
        assert response.status_code == 200
        assert reply_of(response) == ""
        assert spool.replay() is not None
        # Stored now: its answer goes out through the outbox, on its own.
        reply = OutboxMessage.objects.get(kind=OutboxKind.REPLY)
        assert "STOP" in reply.body
        assert reply.status == OutboxStatus.QUEUED
        assert reply.in_reply_to is None

    def test_a_stop_during_the_outage_holds_once_stored(self, client: Client) -> None:
        with Outage():
            response = post_twilio(client, PATH, sms_params("SMstop", "STOP"))
        assert reply_of(response) == ""
        spool.replay()
        assert OptOut.objects.filter(phone_hash=phones.phone_hash(SENDER)).exists()
        # Nothing more is texted to a number that stopped (the carrier confirms STOP).
        assert not OutboxMessage.objects.exclude(status=OutboxStatus.SKIPPED).exists()

    def test_a_replayed_report_records_the_answer_given_and_sends_nothing_more(
        self, client: Client
    ) -> None:
        with Outage():
            answer = reply_of(post_twilio(client, PATH, sms_params("SMrep", "ICE on 35th Ave")))
        spool.replay()
        message = InboundMessage.objects.get()
        assert message.kind == InboundKind.REPORT
        (reply,) = OutboxMessage.objects.all()
        assert (reply.body, reply.status, reply.in_reply_to) == (answer, OutboxStatus.SENT, message)

    def test_the_original_arrival_time_is_kept(self, client: Client) -> None:
        with Outage():
            post_twilio(client, PATH, sms_params("SMtime", "agents on 35th"))
        arrived = spool.read(files()[0]).received_at
        time.sleep(0.05)
        spool.replay()
        assert InboundMessage.objects.get().received_at == arrived

    def test_a_full_spool_answers_503_so_the_provider_retries(
        self, client: Client, settings: Any
    ) -> None:
        settings.RR_SPOOL_MAX_MESSAGES = 2
        with Outage():
            statuses = [
                post_twilio(client, PATH, sms_params(f"SMfull{i}", "agents here")).status_code
                for i in range(3)
            ]
        assert statuses == [200, 200, 503]
        assert len(files()) == 2

    def test_an_unwritable_spool_answers_503(self, client: Client, settings: Any) -> None:
        blocker = Path(settings.RR_SPOOL_DIR)
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("not a directory")
        with Outage():
            response = post_twilio(client, PATH, sms_params("SMnodir", "agents here"))
        assert response.status_code == 503
        assert response["Retry-After"]


@pytest.mark.django_db
class TestReplay:
    def test_messages_are_stored_in_arrival_order_and_the_files_removed(
        self, client: Client
    ) -> None:
        sids = [f"SMorder{i:02d}" for i in range(12)]
        with Outage():
            for sid in sids:
                post_twilio(client, PATH, sms_params(sid, f"agents at corner {sid}"))
        assert [spool.read(p).provider_sid for p in files()] == sids
        result = spool.replay()
        assert result is not None
        assert (result.stored, result.duplicates, result.remaining) == (12, 0, 0)
        assert sids_in_order() == sids
        assert files() == []

    def test_while_messages_wait_new_ones_queue_behind_them(self, client: Client) -> None:
        with Outage():
            post_twilio(client, PATH, sms_params("SMfirst", "STOP"))
        # The database is back, but STOP has not been stored yet: START must follow it.
        response = post_twilio(client, PATH, sms_params("SMsecond", "START"))
        assert response.status_code == 200
        assert not InboundMessage.objects.exists()
        spool.replay()
        assert sids_in_order() == ["SMfirst", "SMsecond"]
        assert not OptOut.objects.exists()

    def test_a_number_that_stopped_gets_no_answer_while_the_spool_drains(
        self, client: Client
    ) -> None:
        OptOut.objects.create(phone_hash=phones.phone_hash(SENDER))
        with Outage():
            post_twilio(client, PATH, sms_params("SMother", "agents", sender="+15105550199"))
        # The database has answered for a while, so the opt-out is known: as when
        # nothing waits, the report reaches the hotline and the number hears nothing.
        with mock.patch.object(spool, "_last_outage", -math.inf):
            response = post_twilio(client, PATH, sms_params("SMstopped", "agents on 35th"))
        assert response.status_code == 200
        assert reply_of(response) == ""
        spool.replay()
        assert sids_in_order() == ["SMother", "SMstopped"]
        stopped = InboundMessage.objects.get(provider_sid="SMstopped")
        assert not OutboxMessage.objects.filter(in_reply_to=stopped).exists()

    def test_texts_behind_the_spool_during_the_outage_do_not_wait_for_the_database(
        self, client: Client
    ) -> None:
        with Outage():
            post_twilio(client, PATH, sms_params("SMa", "agents on 35th"))
            with mock.patch("messaging.spool.is_opted_out") as asked:
                response = post_twilio(client, PATH, sms_params("SMb", "agents on 36th"))
        assert response.status_code == 200 and reply_of(response) != ""
        asked.assert_not_called()  # each try would wait for the pool's timeout

    def test_a_provider_retry_of_a_spooled_message_is_stored_once(self, client: Client) -> None:
        with Outage():
            post_twilio(client, PATH, sms_params("SMdup", "agents on 35th"))
            post_twilio(client, PATH, sms_params("SMdup", "agents on 35th"))
        result = spool.replay()
        assert result is not None
        assert (result.stored, result.duplicates) == (1, 1)
        assert InboundMessage.objects.filter(provider_sid="SMdup").count() == 1

    def test_a_message_stored_before_the_failure_is_not_stored_again(self, client: Client) -> None:
        # The commit went through but the answer did not come back (the connection died).
        post_twilio(client, PATH, sms_params("SMboth", "agents on 35th"))
        spool.append(
            provider="twilio",
            provider_sid="SMboth",
            sender=SENDER,
            recipient="+15105550000",
            body="agents on 35th",
            media_urls=[],
            answered="",
        )
        spool.replay()
        assert InboundMessage.objects.filter(provider_sid="SMboth").count() == 1
        assert Report.objects.count() <= 1

    def test_a_replay_that_dies_after_a_commit_stores_each_message_once(
        self, client: Client
    ) -> None:
        sids = [f"SMcrash{i}" for i in range(5)]
        with Outage():
            for sid in sids:
                post_twilio(client, PATH, sms_params(sid, "agents at the corner"))
        real_remove = spool._remove
        removed = 0

        def die_on_the_third(path: Path) -> None:
            nonlocal removed
            if removed == 2:
                raise SystemExit("killed between the commit and the delete")
            removed += 1
            real_remove(path)

        with mock.patch("messaging.spool._remove", die_on_the_third), pytest.raises(SystemExit):
            spool.replay()
        assert len(files()) == 3
        result = spool.replay()
        assert result is not None
        assert (result.stored, result.duplicates) == (2, 1)
        assert sids_in_order() == sids
        assert files() == []

    def test_a_database_still_down_stops_the_replay_and_keeps_the_order(
        self, client: Client
    ) -> None:
        with Outage():
            for i in range(3):
                post_twilio(client, PATH, sms_params(f"SMwait{i}", "agents here"))
            result = spool.replay()
        assert result is not None
        assert (result.stored, result.remaining) == (0, 3)
        assert len(files()) == 3
        spool.replay()
        assert sids_in_order() == ["SMwait0", "SMwait1", "SMwait2"]

    def test_damaged_and_renamed_files_are_set_aside_and_the_rest_stored(
        self, client: Client
    ) -> None:
        with Outage():
            for i in range(4):
                post_twilio(client, PATH, sms_params(f"SMbad{i}", "agents here"))
        paths = files()
        paths[1].write_bytes(paths[1].read_bytes()[:-5] + b"xxxxx")  # tampered ciphertext
        # Swapping two files' names (reordering the queue) breaks both: names are bound.
        swap = paths[2].with_name(".swap")
        os.rename(paths[2], swap)
        os.rename(paths[3], paths[2])
        os.rename(swap, paths[3])
        (spool.directory() / f"{'9' * 20}-garbage{spool.SUFFIX}").write_bytes(b"not ours")
        result = spool.replay()
        assert result is not None
        assert (result.stored, result.corrupt) == (1, 4)
        assert sids_in_order() == ["SMbad0"]
        quarantined = list((spool.directory() / spool.CORRUPT_DIR).iterdir())
        assert len(quarantined) == 4
        assert files() == []

    def test_a_message_the_normal_path_refuses_does_not_block_the_rest(
        self, client: Client
    ) -> None:
        with Outage():
            for i in range(3):
                post_twilio(client, PATH, sms_params(f"SMrefused{i}", "agents here"))
        real = actions.receive_sms
        calls = 0

        def refuse_the_first(**kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a bug")
            return real(**kwargs)

        with mock.patch("messaging.spool.receive_sms", refuse_the_first):
            result = spool.replay()
        assert result is not None
        assert (result.stored, result.corrupt) == (2, 1)
        assert spool.release_quarantined() == 1
        spool.replay()
        assert sorted(sids_in_order()) == ["SMrefused0", "SMrefused1", "SMrefused2"]

    def test_one_replayer_at_a_time(self, client: Client) -> None:
        with spool._replay_lock() as first:
            assert first
            assert spool.replay() is None

    def test_the_command_reports_and_fails_while_the_database_is_down(
        self, client: Client, capsys: Any
    ) -> None:
        with Outage():
            post_twilio(client, PATH, sms_params("SMcmd", "agents here"))
            with pytest.raises(CommandError):
                call_command("replay_spool")
        call_command("replay_spool")
        assert "1 stored" in capsys.readouterr().out
        assert sids_in_order() == ["SMcmd"]


@pytest.mark.django_db
def test_each_message_is_fsynced_then_renamed_into_place(client: Client) -> None:
    events: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    def rename(src: Any, dst: Any) -> None:
        events.append("rename")
        real_rename(src, dst)

    spool.directory().mkdir()  # an existing spool (a new one: the test below)
    with Outage(), mock.patch("os.fsync", fsync), mock.patch("os.rename", rename):
        post_twilio(client, PATH, sms_params("SMsync", "agents here"))
    assert events == ["fsync-file", "rename", "fsync-dir"]


@pytest.mark.django_db
def test_a_new_spool_directory_is_itself_made_durable(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.RR_SPOOL_DIR = tmp_path / "var" / "spool"
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    with Outage(), mock.patch("os.fsync", fsync):
        assert post_twilio(client, PATH, sms_params("SMdir", "agents here")).status_code == 200
    # Each directory made for the first message is recorded in its parent.
    assert str(tmp_path) in synced
    assert str(tmp_path / "var") in synced


@pytest.mark.django_db
def test_a_crash_before_the_rename_leaves_no_half_message(client: Client) -> None:
    with (
        Outage(),
        mock.patch("os.rename", side_effect=OSError("power cut")),
    ):
        response = post_twilio(client, PATH, sms_params("SMhalf", "agents here"))
    assert response.status_code == 503  # not kept: the provider delivers it again
    assert files() == []
    assert not spool.pending()


@pytest.mark.django_db(transaction=True)
def test_the_web_process_replays_on_its_own_once_the_database_is_back(client: Client) -> None:
    with Outage():
        for i in range(3):
            post_twilio(client, PATH, sms_params(f"SMauto{i}", "agents at the corner"))
        time.sleep(spool.RETRY_SECONDS * 1.5)  # the replayer meets the outage and waits
        assert spool.pending()
    deadline = time.monotonic() + 10
    while spool.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sids_in_order() == ["SMauto0", "SMauto1", "SMauto2"]


@pytest.mark.django_db
class TestWebForm:
    def test_an_outage_is_a_clear_503_that_saves_nothing(self, client: Client) -> None:
        with mock.patch(
            "intake.views.submit_web_report", side_effect=OperationalError("connection refused")
        ):
            response = client.post("/report/", form(), REMOTE_ADDR="203.0.113.9")
        assert response.status_code == 503
        assert response["Retry-After"]
        assert "no-store" in response["Cache-Control"]
        assert b"was not saved" in response.content
        assert not Report.objects.exists()


@pytest.mark.django_db
def test_a_real_failure_after_the_insert_leaves_nothing_behind_and_is_spooled(
    client: Client,
) -> None:
    with mock.patch.object(
        OutboxMessage.objects, "create", side_effect=OperationalError("server closed")
    ):
        response = post_twilio(client, PATH, sms_params("SMmid", "agents on 5th street"))
    assert response.status_code == 200
    assert not InboundMessage.objects.exists()  # the insert was rolled back
    result = spool.replay()
    assert result is not None and result.stored == 1
    assert sids_in_order() == ["SMmid"]
    assert files() == []


@pytest.mark.django_db
@pytest.mark.parametrize("error", [ProgrammingError("no such column"), IntegrityError("check")])
def test_a_bug_is_not_mistaken_for_an_outage(client: Client, error: Exception) -> None:
    with mock.patch.object(OutboxMessage.objects, "create", side_effect=error):
        response = post_twilio(client, PATH, sms_params("SMbug", "agents on 5th street"))
    assert response.status_code == 503  # the provider retries; nothing answered 200
    assert files() == []


class Backlog:
    """``waiting`` requests on the SMS webhook in this process, as core.asgi counts
    them under an ASGI server."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting

    def __enter__(self) -> Backlog:
        from core import asgi

        self.before = asgi._in_flight[spool.WEBHOOK_PATH]
        asgi._in_flight[spool.WEBHOOK_PATH] = self.waiting
        return self

    def __exit__(self, *exc: object) -> None:
        from core import asgi

        asgi._in_flight[spool.WEBHOOK_PATH] = self.before


def test_the_counted_path_is_the_webhooks() -> None:
    from django.urls import reverse

    assert reverse("messaging:twilio-sms") == spool.WEBHOOK_PATH == PATH


@pytest.mark.django_db
class TestSurgeBacklog:
    def test_past_the_backlog_texts_are_answered_from_the_spool_and_stored_behind_it(
        self, client: Client, settings: Any
    ) -> None:
        settings.RR_SMS_WEBHOOK_BACKLOG = 16
        with Backlog(16 + 1):  # this request and 16 more: at the limit, stored
            post_twilio(client, PATH, sms_params("SMq0", "agents at the corner of 35th"))
        assert not files() and sids_in_order() == ["SMq0"]
        with Backlog(16 + 2):
            response = post_twilio(client, PATH, sms_params("SMq1", "agents at the corner"))
            assert "received your report" in reply_of(response)
            assert len(files()) == 1 and sids_in_order() == ["SMq0"]
        # The backlog is gone, but later texts queue behind the spooled one (order).
        post_twilio(client, PATH, sms_params("SMq2", "STOP"))
        assert len(files()) == 2
        assert spool.replay() == spool.ReplayResult(stored=2)
        assert sids_in_order() == ["SMq0", "SMq1", "SMq2"]
        kinds = dict(InboundMessage.objects.values_list("provider_sid", "kind"))
        assert kinds == {
            "SMq0": InboundKind.REPORT,
            "SMq1": InboundKind.REPORT,
            "SMq2": InboundKind.KEYWORD,
        }
        assert OptOut.objects.count() == 1

    def test_a_sender_past_the_limit_is_still_spooled_when_the_database_is_down(
        self, client: Client, settings: Any
    ) -> None:
        """Past the count, the trusted-phone check needs the database; during an outage
        the text is still kept and answered, never refused."""
        settings.RR_SMS_REPORTS_PER_SENDER = 2
        with (
            Outage(),
            mock.patch(
                "intake.throttle.is_trusted", side_effect=OperationalError("connection refused")
            ),
        ):
            statuses = [
                post_twilio(client, PATH, sms_params(f"SMo{i}", "agents at the corner"))
                for i in range(4)
            ]
        assert [r.status_code for r in statuses] == [200] * 4
        assert len(files()) == 4

    def test_zero_turns_it_off(self, client: Client, settings: Any) -> None:
        settings.RR_SMS_WEBHOOK_BACKLOG = 0
        with Backlog(1000):
            post_twilio(client, PATH, sms_params("SMq3", "agents at the corner"))
        assert not files() and sids_in_order() == ["SMq3"]

    def test_the_replayer_gives_way_between_passes_while_the_webhook_is_backlogged(
        self, monkeypatch: pytest.MonkeyPatch, settings: Any
    ) -> None:
        settings.RR_SMS_WEBHOOK_BACKLOG = 16
        monkeypatch.setattr(spool, "GIVE_WAY_AT_MOST", 0.3)
        started = time.monotonic()
        with Backlog(17):
            spool._give_way_to_the_webhook()
        # It waits, but never longer than its bound: a steady surge must not stall
        # the backlog for good.
        assert 0.3 <= time.monotonic() - started < 1.0
        started = time.monotonic()
        with Backlog(16):  # busy, not backlogged: no wait
            spool._give_way_to_the_webhook()
        assert time.monotonic() - started < 0.05

    def test_a_reserved_place_keeps_later_texts_behind_it(self, client: Client) -> None:
        """The place is taken before the spooled text's slower work, so a text that
        arrives meanwhile (here a STOP, with no backlog any more) cannot overtake it."""
        place = spool.reserve()
        post_twilio(client, PATH, sms_params("SMr2", "STOP"))
        assert not InboundMessage.objects.exists()
        result = spool.replay()
        assert result is not None and result.reserved and result.stored == 0
        spool.append(
            provider="twilio",
            provider_sid="SMr1",
            sender=SENDER,
            recipient="",
            body="START",
            media_urls=[],
            answered="",
            reserved=place,
        )
        spool.replay()
        assert sids_in_order() == ["SMr1", "SMr2"]
        assert OptOut.objects.count() == 1  # the STOP came last and holds

    def test_an_abandoned_reservation_is_removed_and_the_rest_stored(self, client: Client) -> None:
        place = spool.reserve()
        with Outage():
            post_twilio(client, PATH, sms_params("SMr3", "agents at the corner"))
        old = time.time() - spool.RESERVATION_SECONDS - 1
        os.utime(place, (old, old))
        assert spool.replay() == spool.ReplayResult(stored=1)
        assert not place.exists() and sids_in_order() == ["SMr3"]

    def test_spooled_texts_keep_the_per_sender_limit_on_replies(
        self, client: Client, settings: Any
    ) -> None:
        settings.RR_SMS_REPORTS_PER_SENDER = 5
        with Backlog(100):
            replies = [
                reply_of(post_twilio(client, PATH, sms_params(f"SMt{i}", f"agents {i} here")))
                for i in range(8)
            ]
        assert sum("received your report" in r for r in replies) == 5
        assert sum("we have your reports" in r for r in replies) == 1
        assert replies[-1] == ""
        assert spool.replay() == spool.ReplayResult(stored=8)
        # Counted once each, when spooled: the replay did not count them again.
        from django.core.cache import cache

        from intake import throttle

        key = throttle._counter_key(phones.phone_hash(SENDER), "reports")
        assert cache.get(f"ratelimit:{key}") == 8


def test_the_spool_limit_holds_between_counts(settings: Any) -> None:
    """The file count is refreshed once a second; appends in between are added to it."""
    settings.RR_SPOOL_MAX_MESSAGES = 3
    spool._estimate = (-math.inf, 0)
    for i in range(3):
        spool.append(
            provider="twilio",
            provider_sid=f"SMl{i}",
            sender=SENDER,
            recipient="",
            body="agents",
            media_urls=[],
            answered="",
        )
    with pytest.raises(spool.SpoolFull):
        spool.append(
            provider="twilio",
            provider_sid="SMl3",
            sender=SENDER,
            recipient="",
            body="agents",
            media_urls=[],
            answered="",
        )
    spool._remove(files()[0])
    spool.append(  # a recount at the limit sees the room
        provider="twilio",
        provider_sid="SMl4",
        sender=SENDER,
        recipient="",
        body="agents",
        media_urls=[],
        answered="",
    )
    assert len(files()) == 3
