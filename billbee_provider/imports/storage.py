"""The one way the import opens, reads, appends to and replaces a file.

A file is a :data:`Location`: a ``str`` path or URL (``file://``, or any fsspec URL such
as ``s3://...`` or ``memory://...``), an :class:`os.PathLike`, or any object with
``.open(mode)`` (:class:`Openable`) such as Airflow's ``ObjectStoragePath``, ``UPath`` or
:class:`pathlib.Path`.

One rule decides which locations are local files (:func:`local_path`): a plain path
string, a ``file://`` URL (percent-unquoted: ``file:///tmp/a%20b`` is ``/tmp/a b``), a
path-like, or an object whose fsspec ``protocol`` is ``file``/``local``. Local files are
opened with the operating system's calls, so that appends can be ``fsync``-ed and
replacements are atomic renames; everything else goes through fsspec or the object's own
``.open(mode)``.

Web addresses (``http(s)://``) are refused before any request (:func:`check_supported`);
:func:`same_location` tells whether two locations are one file, so that no task writes
the file it reads.

* :func:`open_read` reads (decompressing by the file name if asked, for sources);
* :func:`read_bytes` reads a whole file, ``b""`` if it does not exist;
* :class:`Appender` appends durably (``flush`` + ``fsync`` locally);
* :func:`replace` writes a whole file: locally a temporary file, ``fsync`` and
  :func:`os.replace` (keeping the old file's mode), on an object store a plain put;
  :func:`binary_target` does the same for a target that may also be an open stream.

This module does not import Airflow.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import posixpath
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final, Protocol, TypeAlias, cast, runtime_checkable
from urllib.parse import unquote, urlsplit

import fsspec  # type: ignore[import-untyped, unused-ignore]
from fsspec.compression import compr  # type: ignore[import-untyped, unused-ignore]
from fsspec.utils import infer_compression  # type: ignore[import-untyped, unused-ignore]

#: Protocols of fsspec-style paths that are really local files (fsync is possible).
LOCAL_PROTOCOLS: Final = frozenset({"", "file", "local"})
#: URL schemes refused as import files (see :func:`check_supported`).
REFUSED_SCHEMES: Final = frozenset({"http", "https"})
# ``scheme://user:password@host``: the password must not reach a message.
_URL_PASSWORD: Final = re.compile(r"(?<=://)([^/@:]*):[^/@]*@")

logger = logging.getLogger(__name__)


@runtime_checkable
class Openable(Protocol):
    """Anything with ``.open(mode)``: ``ObjectStoragePath``, ``UPath``, ``pathlib.Path``."""

    def open(self, mode: str, /) -> Any:
        """Open the object in ``mode`` and return a file object (a context manager)."""


#: Where a file is: a URL or path string, a path-like, or an :class:`Openable`.
Location: TypeAlias = str | os.PathLike[str] | Openable


def describe_location(location: Location) -> str:
    """Name a location for messages, with any password in a URL masked.

    :param location: the file's location.
    :return: the URL or path as text.
    """
    if isinstance(location, str):
        text = location
    elif isinstance(location, os.PathLike) and not isinstance(location, Openable):
        text = os.fspath(location)
    else:
        text = str(location)
    return _URL_PASSWORD.sub(r"\1:***@", text)


def local_path(location: Location) -> Path | None:
    """The local file behind ``location``, or ``None`` for a remote one.

    A ``str`` without ``://`` is a path (``~`` expanded); a ``file://`` or ``local://``
    URL is the percent-unquoted path of the URL; a path-like is its path; an object with
    an fsspec ``protocol`` of ``file``/``local`` and a ``path`` (an ``ObjectStoragePath``
    of a local file) is that path.

    :param location: the file's location.
    :return: the local path, or ``None``.
    """
    if isinstance(location, str):
        scheme, sep, _ = location.partition("://")
        if not sep:
            return Path(location).expanduser()
        return Path(unquote(urlsplit(location).path)) if scheme.lower() in LOCAL_PROTOCOLS else None
    if isinstance(location, os.PathLike):
        return Path(os.fspath(location))
    path = getattr(location, "path", None)
    if _protocol(location) in LOCAL_PROTOCOLS and isinstance(path, str) and path:
        return Path(path)
    return None


def _protocol(location: Location) -> str | None:
    """The lower-cased scheme of a URL string, or the fsspec ``protocol`` of an object.

    ``""`` for a string without ``://``; ``None`` for an object without a protocol.
    """
    if isinstance(location, str):
        scheme, sep, _ = location.partition("://")
        return scheme.lower() if sep else ""
    protocol = getattr(location, "protocol", None)
    if isinstance(protocol, tuple | list):  # fsspec lists a file system's protocol aliases
        protocol = protocol[0] if protocol else ""
    return protocol.lower() if isinstance(protocol, str) else None


class UnsupportedLocationError(ValueError):
    """A location the import does not read or write (an ``http(s)://`` URL)."""


def check_supported(location: Location) -> None:
    """Refuse ``http://`` and ``https://`` locations before any request is made.

    Web servers are not a file system: reading a source from one would need connect and
    read timeouts, retries of a half-read body and a way to tell an error page from a
    file, and writing is impossible. Download the file first, or put it into object
    storage (``s3://``, ``gs://``, ...) or a local folder.

    :param location: the file's location.
    :raises UnsupportedLocationError: for a web URL (a string, or an object whose fsspec
        ``protocol`` is ``http``/``https``).
    """
    scheme = _protocol(location)
    if scheme in REFUSED_SCHEMES:
        raise UnsupportedLocationError(
            f"{describe_location(location)}: web addresses ({scheme}://) are not supported as "
            "import files; download the file and give its path, or put it into object storage "
            "(s3://, gs://, ...)"
        )


def same_location(first: Location, second: Location) -> bool:
    """Whether two locations name the same file (so writing one would destroy the other).

    Local files are compared by :func:`os.path.samefile` when both exist (hard and
    symbolic links included), else by their resolved absolute paths; other locations by
    their normalised URLs (scheme and host in lower case, ``.``/``..``/``//`` in the path
    resolved, no trailing ``/``).

    :param first: a location.
    :param second: another location.
    :return: ``True`` if they are the same file.
    """
    paths = local_path(first), local_path(second)
    if paths[0] is not None and paths[1] is not None:
        with contextlib.suppress(OSError):
            if paths[0].exists() and paths[1].exists():
                return os.path.samefile(paths[0], paths[1])
        return paths[0].expanduser().resolve() == paths[1].expanduser().resolve()
    if paths[0] is not None or paths[1] is not None:
        return False
    return _normal_url(first) == _normal_url(second)


def _normal_url(location: Location) -> str:
    text = location if isinstance(location, str) else str(location)
    parts = urlsplit(text)
    path = posixpath.normpath(unquote(parts.path)) if parts.path else ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path.rstrip('/')}?{parts.query}"


def _open_remote(location: Location, mode: str) -> IO[bytes]:
    """Open a location that :func:`local_path` does not resolve, in a binary ``mode``."""
    check_supported(location)
    if isinstance(location, str):
        fs, fs_path = fsspec.core.url_to_fs(location)
        return cast(IO[bytes], fs.open(fs_path, mode))
    return cast(IO[bytes], cast(Openable, location).open(mode))


@contextlib.contextmanager
def open_read(location: Location, *, infer_compression_from_name: bool = False) -> Iterator[IO[bytes]]:
    """Open a location for reading bytes.

    :param location: the file's location.
    :param infer_compression_from_name: decompress a ``str`` location by its name
        (``.gz``, ``.bz2``, ``.xz``, ``.zip``, ...), as the sources do. Other locations
        are read as they are.
    :return: a context manager giving the binary file object.
    :raises FileNotFoundError: if the file does not exist.
    """
    with contextlib.ExitStack() as stack:
        path = local_path(location)
        handle: IO[bytes] = stack.enter_context(
            path.open("rb") if path is not None else _open_remote(location, "rb")
        )
        if infer_compression_from_name and isinstance(location, str):
            codec = infer_compression(location)
            if codec is not None:
                handle = stack.enter_context(compr[codec](handle, mode="rb"))
        yield handle


def read_bytes(location: Location) -> bytes:
    """The whole content of ``location``; ``b""`` when it does not exist.

    :param location: the file's location.
    :return: its bytes.
    """
    try:
        with open_read(location) as handle:
            return handle.read()
    except FileNotFoundError:
        return b""


def read_json_object(location: Location) -> dict[str, Any] | None:
    """The JSON object in ``location``, or ``None`` when there is none to show.

    ``None`` when the file does not exist, and when it is not a JSON object in UTF-8
    (a garbled or half-copied file): a reader polling a running import must not fail on it.

    :param location: the file.
    :return: the JSON object, or ``None``.
    :raises OSError: when the file exists but cannot be read (permissions, network).
    """
    content = read_bytes(location)
    if not content:
        return None
    try:
        value = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def ends_with_newline(location: Location) -> bool:
    """Whether the file is missing, empty, or ends with ``\\n`` (so an append starts a line).

    :param location: the file's location.
    :return: ``False`` only for a non-empty file whose last byte is not a newline.
    """
    path = local_path(location)
    if path is None:
        content = read_bytes(location)
        return not content or content.endswith(b"\n")
    try:
        with path.open("rb") as handle:
            if handle.seek(0, io.SEEK_END) == 0:
                return True
            handle.seek(-1, io.SEEK_END)
            return handle.read(1) == b"\n"
    except FileNotFoundError:
        return True


class Appender:
    """Durable appends to one location; not thread-safe (the caller serialises).

    A local file is opened once (its directory created) and every :meth:`append` is
    flushed and ``fsync``-ed before it returns, so a kill loses at most the data being
    written. An object store is opened with ``"ab"`` per append, durable when the object
    is closed; a store that cannot append gets its whole content rewritten (with
    :func:`replace`) per append: correct, but slow for large files.

    :param location: the file's location; created by the first append.
    """

    def __init__(self, location: Location) -> None:
        self.location = location
        self._local = local_path(location)
        self._handle: IO[bytes] | None = None
        #: Once appending turned out to be unsupported: the whole content to rewrite.
        self._content: bytearray | None = None

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the local file handle, if one is open. Idempotent."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def append(self, data: bytes) -> None:
        """Append ``data`` and make it durable before returning.

        :param data: the bytes to add at the end of the file.
        """
        if self._local is not None:
            if self._handle is None:
                self._local.parent.mkdir(parents=True, exist_ok=True)
                self._handle = self._local.open("ab")
            self._handle.write(data)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            return
        if self._content is None:
            try:
                handle = _open_remote(self.location, "ab")
            except (NotImplementedError, ValueError):  # io.UnsupportedOperation is a ValueError
                logger.warning(
                    "%s cannot be appended to; rewriting it per append (slow for large files)",
                    type(self.location).__name__,
                )
                self._content = bytearray(read_bytes(self.location))
            else:
                with handle:
                    handle.write(data)
                return
        self._content += data
        with replace(self.location) as out:
            out.write(bytes(self._content))


@contextlib.contextmanager
def replace(location: Location) -> Iterator[IO[bytes]]:
    """Write a whole file, replacing what was there, so that a reader never sees half a file.

    Locally: the directory is created, the data goes to a temporary file next to the
    target (mode from the umask, or the old file's mode if there is one), which is
    ``fsync``-ed and renamed over the target with :func:`os.replace`; on an error the
    temporary file is removed and the old file is left as it was. On an object store:
    a plain put (``open("wb")``), which is atomic there.

    :param location: the file's location.
    :return: a context manager giving the binary file object to write to.
    """
    path = local_path(location)
    if path is None:
        with _open_remote(location, "wb") as handle:
            yield handle
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    # os.open with 0o666 lets the umask decide, as for any new file (mkstemp would force 0600).
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as handle:
            if path.exists():  # keep the permissions the file had
                os.fchmod(handle.fileno(), path.stat().st_mode & 0o7777)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def stream_or_location(target: IO[Any] | Location) -> Location | None:
    """A write target as a location, or ``None`` if it is an open stream.

    :param target: a location, or an open stream (written to as it is, not closed).
    :return: the location, or ``None``.
    """
    if isinstance(target, str | os.PathLike | Openable):
        return target
    return None


def target_name(target: IO[Any] | Location) -> str | None:
    """How a location or stream is named in a summary (``None``: an unnamed stream).

    :param target: a location, or an open stream.
    :return: the location's description, or the stream's ``name`` if it is text.
    """
    location = stream_or_location(target)
    if location is not None:
        return describe_location(location)
    name = getattr(target, "name", None)
    return name if isinstance(name, str) else None


@contextlib.contextmanager
def binary_target(target: IO[bytes] | Location) -> Iterator[IO[bytes]]:
    """Yield a stream as it is (not closed here), or replace the location's content.

    :param target: an open binary stream, or a location written with :func:`replace`.
    :return: a context manager giving the binary stream.
    """
    location = stream_or_location(target)
    if location is None:
        yield cast(IO[bytes], target)
        return
    with replace(location) as handle:
        yield handle
