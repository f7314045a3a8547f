"""Run the viewer with uvicorn: loopback by default, a warning for any other address."""

from __future__ import annotations

import logging
import sys

from petcad.web.app import ServeConfig, create_app
from petcad.web.security import is_loopback

WARNING = ("petcad serve: warning: listening on {host}, not on this machine only: anyone who can reach "
           "port {port} can read these studies (no authentication); use --host 127.0.0.1 unless you mean it")


def bind_warning(host: str, port: int) -> str | None:
    """The warning to print for ``host`` (None for a loopback address)."""
    return None if is_loopback(host) else WARNING.format(host=host, port=port)


def serve(config: ServeConfig, log_level: str = "info") -> None:
    """Build the app (loading catalog and model first: bad input fails before listening) and serve it."""
    import uvicorn

    msg = bind_warning(config.host, config.port)
    if msg:
        print(msg, file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    app = create_app(config)
    print(f"petcad viewer on http://{config.host}:{config.port}/  (Ctrl-C to stop)", file=sys.stderr)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, server_header=False)
