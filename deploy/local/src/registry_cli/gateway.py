"""The local stack's entry point: nginx with deploy/gateway/registry.conf.template, over TLS.

The template is the one Compose serves; here its placeholders get the local services' ports and
a certificate for 127.0.0.1 and localhost signed by the data directory's own CA
(:mod:`registry_cli.certificates`). nginx runs from a prefix under the data directory (its pid,
logs and buffers there), in the foreground, under the stack's supervision.
"""

from __future__ import annotations

import os
from pathlib import Path
from string import Template

from registry_cli.certificates import Leaf, leaf
from registry_cli.config import StackSettings
from registry_cli.processes import installed

GATEWAY_DIR = Path(__file__).resolve().parents[3] / "gateway"
TEMPLATE = GATEWAY_DIR / "registry.conf.template"
DEBIAN_NGINX = "/usr/sbin/nginx"  # outside a non-root user's PATH


def nginx_binary(settings: StackSettings) -> str:
    """The nginx to run: the setting's, else Debian's."""
    return installed([settings.nginx_bin], "nginx", StackSettings.env_name("nginx_bin"), also=(DEBIAN_NGINX,))


def render(values: dict[str, str]) -> str:
    """The template with its ``${NAME}`` placeholders filled; nginx's own ``$variables`` untouched."""
    text = TEMPLATE.read_text()
    rendered = Template(text).safe_substitute(values)
    missing = sorted(name for name in Template(text).get_identifiers() if name.isupper() and name not in values)
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")
    return rendered


def gateway_tls(settings: StackSettings) -> Leaf:
    """The gateway's certificate (127.0.0.1, localhost) and the CA that signed it."""
    return leaf(settings.data_dir / "tls", "gateway", [settings.host, "localhost"])


def write_config(settings: StackSettings, upstreams: dict[str, int] | None = None) -> Path:
    """Write the local nginx configuration under the data directory; return its main file.

    ``upstreams`` (service → port on the stack's host) default to the stack's services.
    """
    home = (settings.data_dir / "gateway").resolve()
    for sub in ("logs", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    tls = gateway_tls(settings)
    ports = upstreams or settings.service_ports()
    values = {
        "GATEWAY_LISTEN": f"{settings.host}:{settings.gateway_port}",
        "GATEWAY_TLS_CERT_FILE": str(tls.cert.resolve()),
        "GATEWAY_TLS_KEY_FILE": str(tls.key.resolve()),
        **{f"{name.upper().replace('-', '_')}_UPSTREAM": f"{settings.host}:{port}" for name, port in ports.items()},
        "UPSTREAM_SCHEME": settings.scheme,
        # With --tls the services serve HTTPS themselves: the gateway verifies them against the stack's CA.
        "UPSTREAM_TLS": (
            f"proxy_ssl_trusted_certificate {tls.ca.resolve()}; proxy_ssl_verify on; "
            "proxy_ssl_server_name on; proxy_ssl_name localhost;"
            if settings.tls
            else ""
        ),
    }
    (home / "registry.conf").write_text(render(values))
    # As root, nginx's workers would otherwise switch to `nobody`, which cannot write the buffers here.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {home / 'tmp' / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = home / "nginx.conf"
    main.write_text(
        f"""# Written by registry up --with-gateway; the routes are in registry.conf (the shared template).
{user}daemon off;
worker_processes 1;
pid {home / "nginx.pid"};
error_log {home / "logs" / "error.log"} warn;
events {{ worker_connections 512; }}
http {{
    access_log {home / "logs" / "access.log"};
    server_tokens off;
{temp}
    include {home / "registry.conf"};
}}
"""
    )
    return main


def nginx_argv(settings: StackSettings, config: Path, *, test: bool = False) -> list[str]:
    """The command serving (or with ``test``, checking) ``config``."""
    return [nginx_binary(settings), *(["-t"] if test else []), "-p", str(config.parent), "-c", str(config)]
