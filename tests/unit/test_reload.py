"""The announcement file behind a reload that reaches every worker (service.reload)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from service.reload import Announcement, ReloadAnnouncements


def test_concurrent_announcements_each_get_their_own_generation(tmp_path):
    path = tmp_path / "reload.json"
    ReloadAnnouncements.create(path, "models:/tijdig-risk@champion")
    workers = [ReloadAnnouncements(path) for _ in range(4)]  # one per worker process
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: workers[i % 4].announce(f"bundle-{i}"), range(200)))
    assert sorted(got) == list(range(1, 201))  # none lost, none twice
    last = ReloadAnnouncements(path).read()
    assert last is not None and last.generation == 200
    assert last.model_uri == f"bundle-{got.index(200)}"


def test_changed_says_so_once_per_replacement_and_again_when_asked(tmp_path):
    path = tmp_path / "reload.json"
    follower = ReloadAnnouncements(path)
    assert not follower.changed()  # no file yet
    ReloadAnnouncements.create(path, "a")
    assert follower.changed() and not follower.changed()
    ReloadAnnouncements(path).announce("b")
    assert follower.changed() and follower.read() == Announcement(1, "b")
    assert not follower.changed()
    follower.look_again()  # a failed reload is retried at the next look
    assert follower.changed()


def test_an_unreadable_file_is_no_announcement(tmp_path):
    path = tmp_path / "reload.json"
    path.write_text("{not json")
    assert ReloadAnnouncements(path).read() is None
    ReloadAnnouncements.create(path, "a").remove()
    assert not path.exists() and not path.with_suffix(".lock").exists()
