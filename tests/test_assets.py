import dataclasses
import io
import tarfile
import zipfile

import pytest

from zoo import assets


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


@dataclasses.dataclass(frozen=True)
class Failing(assets.Source):
    reason: str = "boom"

    def key(self):
        return "failing"

    def describe(self):
        return f"failing source ({self.reason})"

    def fetch(self, workdir):
        raise ConnectionError(self.reason)


@dataclasses.dataclass(frozen=True)
class MustNotRun(assets.Source):
    def key(self):
        return "must-not-run"

    def describe(self):
        return "network source that must not run"

    def fetch(self, workdir):
        raise AssertionError("a network source ran in offline mode")


def test_falls_back_in_order_and_records_the_source(isolated_cache, tmp_path):
    archive = make_zip(tmp_path / "data.zip", {"d/a.txt": "hello"})
    asset = assets.Asset("demo", (Failing("unreachable"), assets.Url(archive.as_uri()), assets.Local(path="/nope")))
    resolved = asset.resolve()
    assert resolved.source == f"url {archive.as_uri()}"
    assert resolved.kind == "canonical"
    assert (resolved.path / "d" / "a.txt").read_text() == "hello"
    assert resolved.details["sha256"]["data.zip"] == assets.sha256_of(archive)


def test_second_resolve_uses_cache_without_fetching(isolated_cache, tmp_path):
    archive = make_zip(tmp_path / "data.zip", {"a.txt": "x"})
    asset = assets.Asset("demo", (assets.Url(archive.as_uri()),))
    first = asset.resolve()
    archive.unlink()  # The source is gone: only the cache can answer now.
    second = asset.resolve()
    assert not first.from_cache and second.from_cache
    assert second.path == first.path


@dataclasses.dataclass(frozen=True)
class RacedBy(assets.Source):
    """Fetches, but another process fills the same cache entry while it does."""

    def key(self):
        return "raced"

    def describe(self):
        return "raced source"

    def fetch(self, workdir):
        (workdir / "ours.txt").write_text("ours")
        theirs = assets.cache_dir() / self.key()
        theirs.mkdir()
        (theirs / "theirs.txt").write_text("theirs")
        (theirs / assets._COMPLETE).write_text('{"relative_path": "theirs.txt", "source": "raced source"}')
        return workdir / "ours.txt", {}


def test_an_entry_filled_meanwhile_by_another_process_is_kept(isolated_cache):
    resolved = assets.Asset("demo", (RacedBy(),)).resolve()
    assert resolved.path.read_text() == "theirs"  # Theirs may be being read: not replaced under its reader.
    assert sorted(p.name for p in isolated_cache.iterdir()) == ["raced"]  # Our copy is gone, no temporary left.


def test_error_lists_every_source_and_why(isolated_cache, tmp_path):
    asset = assets.Asset("demo", (
        Failing("dns failure"),
        assets.Url((tmp_path / "missing.zip").as_uri()),
        assets.Local(env="TEXTZOO_TEST_UNSET_VARIABLE"),
    ))
    with pytest.raises(assets.AssetError) as error:
        asset.resolve()
    message = str(error.value)
    assert "'demo'" in message
    assert "failing source (dns failure): ConnectionError: dns failure" in message
    assert "missing.zip" in message
    assert "TEXTZOO_TEST_UNSET_VARIABLE" in message
    assert str(isolated_cache) in message


def test_an_unreachable_network_is_one_short_reason_naming_the_host(isolated_cache):
    kaggle = ("HTTPSConnectionPool(host='api.kaggle.com', port=443): Max retries exceeded with url: /v1/models (Caused "
              "by NameResolutionError(\"HTTPSConnection(host='api.kaggle.com', port=443): Failed to resolve "
              "'api.kaggle.com' ([Errno -2] Name or service not known)\"))")
    with pytest.raises(assets.AssetError) as error:
        assets.Asset("demo", (Failing(kaggle), Failing("proxy said: HTTP 407"))).resolve()
    first, second = error.value.failures
    assert first == f"failing source ({kaggle}): unreachable (Failed to resolve 'api.kaggle.com')"
    assert second.endswith("ConnectionError: proxy said: HTTP 407")  # Not a network failure: said as it was.
    assert assets.failure(ConnectionError("[Errno -2] Name or service not known")) == (
        "unreachable (Name or service not known)")


def test_checksum_mismatch_is_refused_and_nothing_is_cached(isolated_cache, tmp_path):
    archive = make_zip(tmp_path / "data.zip", {"a.txt": "x"})
    asset = assets.Asset("demo", (assets.Url(archive.as_uri(), sha256="0" * 64),))
    with pytest.raises(assets.AssetError, match="ChecksumError: Checksum mismatch for data.zip: expected sha256=0+"):
        asset.resolve()
    assert not list(isolated_cache.rglob("a.txt"))
    good = assets.Asset("demo", (assets.Url(archive.as_uri(), sha256=assets.sha256_of(archive)),))
    assert (good.resolve().path / "a.txt").read_text() == "x"


def test_each_file_of_a_url_asset_is_checked_against_its_own_checksum(isolated_cache, tmp_path):
    first = tmp_path / "config.json"
    first.write_text("{}")
    second = tmp_path / "weights.bin"
    second.write_bytes(b"weights")
    pinned = {"config.json": assets.sha256_of(first), "weights.bin": "1" * 64}
    asset = assets.Asset("demo", (assets.Url(first.as_uri(), parts=(second.as_uri(),), sha256=pinned),))
    with pytest.raises(assets.AssetError, match="Checksum mismatch for weights.bin: expected sha256=1+"):
        asset.resolve()
    pinned["weights.bin"] = assets.sha256_of(second)
    resolved = assets.Asset("demo", (assets.Url(first.as_uri(), parts=(second.as_uri(),), sha256=pinned),)).resolve()
    assert (resolved.path / "weights.bin").read_bytes() == b"weights"


def test_an_archive_that_unpacks_past_its_limit_is_refused_before_writing(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"small.txt": "x", "zeros.txt": "0" * 100_000})
    assert archive.stat().st_size < 5_000
    with pytest.raises(assets.AssetError, match=r"its members unpack to 100,001 bytes, more than the 50,000 allowed"):
        assets.safe_extract(archive, tmp_path / "out", max_bytes=50_000)
    assert not (tmp_path / "out" / "small.txt").exists()
    assert (assets.safe_extract(archive, tmp_path / "ok", max_bytes=100_001) / "zeros.txt").stat().st_size == 100_000


def test_path_escaping_zip_member_is_refused(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"ok.txt": "fine", "../escaped.txt": "evil"})
    with pytest.raises(assets.AssetError, match="escaped.txt.*outside"):
        assets.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "ok.txt").exists()  # Checked before anything is written.


def test_path_escaping_and_link_tar_members_are_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tf:
        info = tarfile.TarInfo("/etc/absolute.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(assets.AssetError, match="absolute.txt"):
        assets.safe_extract(evil, tmp_path / "out")
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tf:
        info = tarfile.TarInfo("inside")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(assets.AssetError, match="link member 'inside'"):
        assets.safe_extract(link, tmp_path / "out2")


def test_offline_switch_skips_network_sources_at_once(isolated_cache, tmp_path, monkeypatch):
    local = tmp_path / "local"
    local.mkdir()
    asset = assets.Asset("demo", (MustNotRun(), assets.Local(path=str(local))))
    monkeypatch.setenv("TEXTZOO_OFFLINE", "1")
    assert asset.resolve().path == local
    only_network = assets.Asset("demo", (MustNotRun(),))
    with pytest.raises(assets.AssetError, match="skipped, offline mode"):
        only_network.resolve()
    with pytest.raises(assets.AssetError, match="skipped, offline mode"):
        only_network.resolve(offline=True)


def test_explicit_local_path_must_exist(isolated_cache, tmp_path):
    asset = assets.Asset("demo", (assets.Local(env="X"),))
    with pytest.raises(assets.AssetError, match="path does not exist: .*nowhere"):
        asset.resolve(local_path=tmp_path / "nowhere")


def test_local_path_from_environment_variable(isolated_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTZOO_TEST_DATA", str(tmp_path))
    resolved = assets.Asset("demo", (assets.Local(env="TEXTZOO_TEST_DATA"),)).resolve()
    assert resolved.path == tmp_path and resolved.kind == "local"
