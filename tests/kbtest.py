"""Constants and helpers shared by the tests."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from kbuild_py.fsutil import _PARTIAL

REPO = Path(__file__).resolve().parent.parent
TARBALL_612 = Path("/usr/src/linux-source-6.12.tar.xz")
TARBALL_61 = Path("/usr/src/linux-source-6.1.tar.xz")
TARBALL_73 = Path("/usr/src/linux-source-7.3.tar.xz")
TEST_OUT = REPO / "out" / ".test"
TINY = REPO / "tests" / "profiles"  # test-only profiles: small real kernels
VENDOR_KEY = TEST_OUT / "keys" / "vendor.pem"
VENDOR_KEY_NAME = "kbuild-py test vendor key"


def vendor_key() -> Path:
    """The tests' module-signing key, as a vendor gives it (KBUILD_PY_MODULE_SIG_KEY): a PEM
    file with the private key and its certificate, made once by openssl and kept in out/.test
    like the trees (the key is an input of every build, so a new one rebuilds them all)."""
    if not VENDOR_KEY.is_file():
        VENDOR_KEY.parent.mkdir(parents=True, exist_ok=True)
        part = VENDOR_KEY.with_name(f".{VENDOR_KEY.name}.{os.getpid()}.part")
        subprocess.run(["openssl", "req", "-new", "-nodes", "-utf8", "-sha512", "-days", "36500",
                        "-batch", "-x509", "-subj", f"/CN={VENDOR_KEY_NAME}", "-newkey",
                        "rsa:2048", "-outform", "PEM", "-out", str(part), "-keyout", str(part)],
                       check=True, capture_output=True)
        os.replace(part, VENDOR_KEY)
    return VENDOR_KEY


def processes_in(folder: Path) -> list[str]:
    """Processes (other than this one) whose command line or working directory is in
    ``folder``: what a case left running."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(folder) in cmdline or cwd.startswith(str(folder)):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def kbuild_py(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line (`kbuild-py ARGS`) from the checkout, output captured."""
    return subprocess.run([sys.executable, "-m", "kbuild_py.cli", *args], cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=1200,
                          env={**os.environ, **(env or {})})


def serve(root: Path, delay: float = 0.0):  # type: ignore[no-untyped-def]
    """Serve `root` over HTTP on 127.0.0.1 (optionally throttled); a context manager → base URL."""
    import contextlib
    import http.server
    import threading
    import time

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(root), **k)

        def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
            while chunk := source.read(64 * 1024):
                outputfile.write(chunk)
                time.sleep(delay)

        def log_message(self, *args: object) -> None:
            pass

    @contextlib.contextmanager
    def running():  # type: ignore[no-untyped-def]
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join()

    return running()


def shared_out(out: Path, trees) -> Path:  # type: ignore[no-untyped-def]
    """A new out/ folder whose src/ links to already extracted trees (used read-only) and whose
    hash cache is the session's, so nothing is extracted or hashed again."""
    (out / "src").mkdir(parents=True)
    for tree in trees:
        (out / "src" / tree.name).symlink_to(tree)
    (out / "cache").mkdir()
    hashes = TEST_OUT / "cache" / "hashes.json"
    if hashes.is_file():
        (out / "cache" / "hashes.json").write_bytes(hashes.read_bytes())
    return out


def scons_build(profile: str, out: Path, *variables: str) -> Path:
    """`scons profile=P out=O [variables]` from the checkout, which must succeed → out/<name>."""
    r = subprocess.run(["scons", "-Q", f"profile={profile}", f"out={out}", *variables],
                       cwd=REPO, capture_output=True, text=True, check=False, timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out / Path(profile).stem


def partials(folder: Path) -> list[Path]:
    """Our temp names (.<name>.<pid>[.<rand>].part|tmp|old); Kbuild's .config.old is its own."""
    return [p for p in folder.rglob(".*") if _PARTIAL.match(p.name)] if folder.exists() else []


def run_and_kill(argv: list[str], after: float, cwd: Path = REPO) -> int | None:
    """Start argv, SIGKILL it (and its children) after `after` s; None if it finished first."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        return proc.wait(timeout=after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def manifest_errors(path: Path) -> list[str]:
    """Where dist/manifest.json departs from kbuild_py/schema/manifest.schema.json."""
    import json

    import jsonschema

    from kbuild_py.catalog import schema

    validator = jsonschema.Draft202012Validator(schema("manifest"))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(json.loads(path.read_text()))]
