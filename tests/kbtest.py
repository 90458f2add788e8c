"""Constants shared by the tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARBALL_612 = Path("/usr/src/linux-source-6.12.tar.xz")
TARBALL_61 = Path("/usr/src/linux-source-6.1.tar.xz")
TEST_OUT = REPO / "out" / ".test"


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
