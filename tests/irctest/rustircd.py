"""irctest controller for rustircd.

Install by copying this file to  <irctest checkout>/irctest/controllers/rustircd.py
and run with                     pytest --controller irctest.controllers.rustircd

It starts the binary named by $IRCTEST_RUSTIRCD_BIN with a TOML config that it
writes into a fresh temporary directory for every test.  The config format
of our server does not exist yet: everything that depends on it is in the
marked TEMPLATE section below -- edit only that section when the real format
lands.

Environment variables (all optional except IRCTEST_RUSTIRCD_BIN):

  IRCTEST_RUSTIRCD_BIN       path to the server binary (required; a relative path is
                         taken from pytest's working directory, run.sh makes it absolute)
  IRCTEST_RUSTIRCD_ARGS      argument template, default "--config {config}";
                         {config} = config path, {dir} = temp dir
  IRCTEST_RUSTIRCD_CAPS      space-separated IRCv3 caps the server CLAIMS
                         (default DEFAULT_CAPS below: what rustircd offers).  A
                         claimed cap that gets NAKed makes the test FAIL instead
                         of SKIP.
  IRCTEST_RUSTIRCD_BEHAVIORS space-separated OptionalBehaviors member names the
                         server claims (e.g. "MULTI_JOIN MULTI_PRIVMSG");
                         claimed behaviours turn "skip" into "fail".
  IRCTEST_RUSTIRCD_SASL_MECHS  default "PLAIN": rustircd relays SASL to services,
                         so this is what the services offer (irctest's Atheme
                         config loads PLAIN, EXTERNAL, ECDSA-NIST256P-CHALLENGE,
                         not SCRAM); "" skips every SASL mechanism test
  IRCTEST_RUSTIRCD_REGISTER  how registerUser() creates accounts (tests marked
                         `services`: SASL, account-tag, extended-join, ...):
                           services (default) - through the services package
                                     irctest was given with --services-controller
                                     (run.sh: IRCTEST_SERVICES=atheme, i.e.
                                     irctest.controllers.atheme_services, which
                                     links Atheme to us as My.Little.Services;
                                     see SERVICES_TEMPLATE).  Without one: skip.
                           register - IRCv3 draft/account-registration
                                     "REGISTER * * <password>"
                           none    - raise NotImplementedByController (skip)
                         rustircd keeps no accounts itself: they live in services.
  IRCTEST_RUSTIRCD_FAKETIME  "0" disables running under faketime(1) (default on
                         when the faketime binary exists and a test asks)
  IRCTEST_RUSTIRCD_WEBSOCKET "0" to skip the websocket tests instead of adding
                         a `websocket = true` listener when they ask (default "1")
  IRCTEST_RUSTIRCD_LOG_DIR   if set, server stdout+stderr go to
                         $IRCTEST_RUSTIRCD_LOG_DIR/rustircd-<port>.log
  IRCTEST_DEBUG_LOGS=1   (irctest's own) stream server output into pytest
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import shlex
import shutil
import string
from typing import Dict, FrozenSet, List, Optional, Set, Type, Union

from irctest import patma
from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities, OptionalBehaviors

# ============================================================================
# TEMPLATE SECTION -- the only part that knows our config file format.
# Python string.Template syntax: $name or ${name}; write $$ for a literal "$".
# (TOML braces {} need no escaping.)  Placeholders:
#   ${bind_host} ${port} ${tls} ${tls_files} ${extra_listeners}
#   ${password_line} ${motd_path} ${history_enabled} ${dir}
#   ${registration_before_connect} ${registration_requires_email}
#   ${services_list} ${services_link}
# ${password} in PASSWORD_TEMPLATE arrives
# already quoted and escaped as TOML basic strings (tests use non-ASCII
# passwords and passwords with NUL), so write them WITHOUT quotes.
# ============================================================================
CONFIG_TEMPLATE = """\
# Written by the irctest controller (tests/irctest/rustircd.py).

[server]
name = "My.Little.Server"      # irctest asserts this exact name (002, TIME, WHO, ...)
sid = "0IT"
network = "IrcTest"
description = "test server"
motd_file = "${motd_path}"
${password_line}
${services_list}

[[listen]]
address = "${bind_host}:${port}"
${extra_listeners}

[limits]
nicklen = 32                   # irctest uses nicks longer than 9 chars
channellen = 64
topiclen = 390
kicklen = 390
awaylen = 200

[[classes]]
name = "irctest"
hosts = ["*"]
sendq = "4MiB"
recvq = "64KiB"
connection_timeout = "60s"
ping_frequency = "120s"
max_clients = 100000
exempt = true                  # irctest connects fast and sends in bursts

# irctest opers up as operuser/operpassword (KILL, WALLOPS, REHASH tests).
[[opers]]
name = "operuser"
password = "operpassword"
allow_plaintext = true
privileges = ["all"]
${services_link}
"""

# With --services-controller (tests marked `services`): irctest's services
# controllers (atheme_services.py) configure themselves as server
# "My.Little.Services", SID 00A, uplink "My.Little.Server", both passwords
# "password", and connect to the host and port run() gives them: a second
# loopback listener here, as irctest's charybdis.py does.
SERVICES_NAME = "My.Little.Services"
SERVICES_LIST_TEMPLATE = 'services = ["${services_name}"]   # SVS*/SU/SASL honoured from it'
SERVICES_TEMPLATE = """
[[listen]]
address = "${bind_host}:${services_port}"

[[links]]
name = "${services_name}"
sid = "00A"
send_password = "password"
accept_password = "password"
"""

# Lines added inside the main [[listeners]] table when a test wants TLS.
TLS_FILES_TEMPLATE = """\
cert = "${cert_path}"
key = "${key_path}"
"""

# Extra listener added when a test asks for websockets (websocket.py; irctest connects
# to it as ws://, so tls is false there).
WEBSOCKET_LISTENER_TEMPLATE = """
[[listen]]
address = "${ws_host}:${ws_port}"
websocket = true
tls = ${tls}
${tls_files}
"""

# Connection password (PASS) -- only for tests that set one.
PASSWORD_TEMPLATE = "password = ${password}"
NO_PASSWORD_LINE = "# no connection password"

MOTD_TEXT = "irctest MOTD\n"
# ============================================================================
# END OF TEMPLATE SECTION
# ============================================================================


# Seconds irctest waits before reading a client in the websocket tests (see run()).
WEBSOCKET_SYNC_SLEEP = 0.01


def _toml_str(value: str) -> str:
    """A TOML basic string: JSON string escapes are a subset of TOML's."""
    return json.dumps(value, ensure_ascii=False)


def _toml_bool(value: bool) -> str:
    return "true" if value else "false"


def _env_set(name: str, default: str = "") -> List[str]:
    return os.environ.get(name, default).split()


# What rustircd offers in CAP LS (src/commands/capabilities.rs) and irctest
# knows (specifications.Capabilities); sts is offered only with a TLS
# listener and never requested by the server tests.
DEFAULT_CAPS = (
    "account-notify account-tag away-notify batch echo-message extended-join "
    "extended-monitor labeled-response message-tags multi-prefix server-time setname "
    "draft/message-redaction draft/multiline draft/read-marker"
)


def _resolve_binary(binary: str) -> str:
    """The server binary as an absolute path: the server starts in a temporary directory, where
    a relative path (run.sh makes it absolute; pytest run by hand may not) would name nothing.
    Relative to pytest's working directory, as given; a bare name is looked up on PATH."""
    if os.sep not in binary:
        found = shutil.which(binary)
        if found is None:
            raise RuntimeError(f"IRCTEST_RUSTIRCD_BIN={binary!r}: not found on PATH")
        binary = found
    return os.path.abspath(binary)


def _claimed_caps() -> FrozenSet[Capabilities]:
    caps = set()
    for name in _env_set("IRCTEST_RUSTIRCD_CAPS", DEFAULT_CAPS):
        caps.add(Capabilities.from_name(name))  # ValueError on typos: intended
    return frozenset(caps)


def _claimed_behaviors() -> FrozenSet[OptionalBehaviors]:
    return frozenset(OptionalBehaviors[n] for n in _env_set("IRCTEST_RUSTIRCD_BEHAVIORS"))


class RustircdController(BaseServerController, DirectoryBasedController):
    software_name = "rustircd"
    # rustircd offers sts (with a TLS listener); irctest reads this only in
    # its client tests.
    supports_sts = True
    # the TS6 dialect services are configured for (Atheme: protocol/charybdis)
    services_protocol = "charybdis"
    supported_sasl_mechanisms: Set[str] = set(
        _env_set("IRCTEST_RUSTIRCD_SASL_MECHS", "PLAIN")
    )
    capabilities = _claimed_caps()
    optional_behaviors = _claimed_behaviors()
    # the mute extban: `$m:<mask>` (irctest puts the prefix of 005 EXTBAN=$,am before it)
    extban_mute_char: Optional[str] = "m"
    nickserv = "NickServ"
    _port_wait_interval = 0.02
    sync_sleep_time = 0.0  # server must answer commands of one client in order (see run())

    # ISUPPORT tokens the server promises (checked by isupport.py::testValues;
    # empty dict = that test is skipped).  Example once implemented:
    #   {"CASEMAPPING": "ascii", "PREFIX": "(ov)@+", "WHOX": None,
    #    "TARGMAX": patma.ANYSTR}
    isupport: Dict[str, Union[str, patma.Operator, None]] = {
        "CASEMAPPING": "ascii",
        "CHANTYPES": "#",
        "ELIST": "CMNTU",
        "MONITOR": patma.ANYSTR,
        "NETWORK": "IrcTest",
        "PREFIX": "(ov)@+",
        "STATUSMSG": "@+",
        "TARGMAX": patma.ANYSTR,
        "UTF8ONLY": None,
        "WHOX": None,
    }

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._template_vars: Dict[str, str] = {}
        self._binary = ""
        self._log_file = None

    # -- config ------------------------------------------------------------
    def create_config(self) -> None:
        super().create_config()
        with self.open_file("server.toml"):
            pass

    def _render_config(self) -> None:
        assert self.directory
        text = string.Template(CONFIG_TEMPLATE).substitute(self._template_vars)
        (self.directory / "server.toml").write_text(text)

    # -- process -----------------------------------------------------------
    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str] = None,
        websocket_port: Optional[int] = None,
    ) -> None:
        binary = os.environ.get("IRCTEST_RUSTIRCD_BIN")
        if not binary:
            raise RuntimeError("Set IRCTEST_RUSTIRCD_BIN to the server binary")
        self._binary = _resolve_binary(binary)
        ws_wanted = websocket_hostname is not None or websocket_port is not None
        if ws_wanted and os.environ.get("IRCTEST_RUSTIRCD_WEBSOCKET", "1") != "1":
            raise NotImplementedByController("Websocket")
        # websocket.py reads a client right after another client's line without syncing the
        # sender first (the other files do: getMessages(sender), then getMessage(receiver)).
        # On two shards the receiver's PING can then be read before the other shard has read
        # the sender's line -- plain TCP clients race the same way -- so give the server the
        # moment a multi-process server gets (irctest's sable.py: 0.1 s). Other files: none.
        self.sync_sleep_time = WEBSOCKET_SYNC_SLEEP if ws_wanted else 0.0

        assert self.proc is None
        self.port = port
        # irctest hands out "0.0.0.0"; never listen beyond loopback.
        self.hostname = hostname
        bind_host = "127.0.0.1"
        self.create_config()
        assert self.directory

        tls_files = ""
        if ssl:
            self.gen_ssl()
            tls_files = string.Template(TLS_FILES_TEMPLATE).substitute(
                cert_path=self.pem_path, key_path=self.key_path
            )
        extra_listeners = ""
        if ws_wanted:
            extra_listeners = string.Template(WEBSOCKET_LISTENER_TEMPLATE).substitute(
                ws_host="127.0.0.1",
                ws_port=websocket_port,
                tls="true" if ssl else "false",
                tls_files=tls_files,
            )
        motd_path = self.directory / "motd.txt"
        motd_path.write_text(MOTD_TEXT)

        self._template_vars = dict(
            bind_host=bind_host,
            port=str(port),
            tls="true" if ssl else "false",
            tls_files=tls_files,
            extra_listeners=extra_listeners,
            password_line=(
                string.Template(PASSWORD_TEMPLATE).substitute(
                    password=_toml_str(password)
                )
                if password
                else NO_PASSWORD_LINE
            ),
            motd_path=str(motd_path),
            history_enabled=_toml_bool(self.test_config.chathistory),
            registration_before_connect=_toml_bool(
                self.test_config.account_registration_before_connect
            ),
            registration_requires_email=_toml_bool(
                self.test_config.account_registration_requires_email
            ),
            dir=str(self.directory),
        )
        services_port: Optional[int] = None
        if run_services and self._services_wanted():
            (_, services_port) = self.get_hostname_and_port()
            self._template_vars.update(
                services_list=string.Template(SERVICES_LIST_TEMPLATE).substitute(
                    services_name=SERVICES_NAME
                ),
                services_link=string.Template(SERVICES_TEMPLATE).substitute(
                    bind_host=bind_host,
                    services_port=services_port,
                    services_name=SERVICES_NAME,
                ),
            )
        else:
            self._template_vars.update(
                services_list="# no services", services_link=""
            )
        self._render_config()

        self._faketime_cmd: List[str] = []
        if (
            faketime
            and os.environ.get("IRCTEST_RUSTIRCD_FAKETIME", "1") != "0"
            and shutil.which("faketime")
        ):
            self._faketime_cmd = ["faketime", "-f", faketime]
            self.faketime_enabled = True
        self._start()

        if services_port is not None:
            # as irctest's base_hybrid.py / inspircd.py: services dial us once
            # we listen.  protocol "charybdis": rustircd speaks charybdis' TS6
            # dialect to services (3-parameter SERVER, EUID, ENCAP SU/SASL,
            # SVSLOGIN, MECHLIST).  Loopback, whatever irctest's hostname.
            self.wait_for_port()
            self.services_controller = self.services_controller_class(
                self.test_config, self
            )
            self.services_controller.run(
                protocol=self.services_protocol,
                server_hostname=bind_host,
                server_port=services_port,
            )

    def _services_wanted(self) -> bool:
        mode = os.environ.get("IRCTEST_RUSTIRCD_REGISTER", "services")
        return mode == "services" and hasattr(self, "services_controller_class")

    def _command(self) -> List[str]:
        assert self.directory
        args_tpl = os.environ.get("IRCTEST_RUSTIRCD_ARGS", "--config {config}")
        args = [
            a.replace("{config}", str(self.directory / "server.toml")).replace(
                "{dir}", str(self.directory)
            )
            for a in shlex.split(args_tpl)
        ]
        return [*self._faketime_cmd, self._binary, *args]

    def _start(self) -> None:
        kwargs = {}
        log_dir = os.environ.get("IRCTEST_RUSTIRCD_LOG_DIR")
        if log_dir and not self.debug_mode:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            self._log_file = open(Path(log_dir) / f"rustircd-{self.port}.log", "ab")
            kwargs = dict(stdout=self._log_file, stderr=self._log_file)
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = self.execute(
            self._command(), proc_name="rustircd", cwd=self.directory, env=env, **kwargs
        )

    def kill_proc(self) -> None:
        super().kill_proc()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def wait_for_services(self) -> None:
        if self.services_controller is not None:
            # connects, PRIVMSGs NickServ until it answers (Atheme links and
            # introduces NickServ within a second or two)
            super().wait_for_services()

    # -- accounts (SASL, account-tag, extended-join, ... tests) --------------
    def registerUser(self, case, username: str, password: Optional[str] = None) -> None:  # type: ignore[no-untyped-def]
        if not case.run_services:
            # same contract as the other controllers: only @mark_services tests
            raise ValueError("registerUser() called but run_services is not True")
        assert password
        mode = os.environ.get("IRCTEST_RUSTIRCD_REGISTER", "services")
        if mode == "register":
            self._register_via_command(case, username, password)
        elif mode == "services":
            if self.services_controller is None:
                raise NotImplementedByController(
                    "account registration (no --services-controller)"
                )
            # NickServ REGISTER through services (atheme_services.py refuses
            # passwords over 288 bytes: NotImplementedByController)
            self.services_controller.registerUser(case, username, password)
        elif mode == "none":
            raise NotImplementedByController("account registration")
        else:
            raise ValueError(f"bad IRCTEST_RUSTIRCD_REGISTER={mode!r}")

    def _register_via_command(self, case, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
        client = case.addClient(show_io=False)
        case.sendLine(client, "CAP LS 302")
        case.getCapLs(client)
        case.sendLine(client, "CAP REQ draft/account-registration")
        case.getRegistrationMessage(client)
        case.sendLine(client, "NICK " + username)
        case.sendLine(client, "USER r e g :user")
        case.sendLine(client, "CAP END")
        while case.getRegistrationMessage(client).command != "001":
            pass
        case.getMessages(client)
        case.sendLine(client, f"REGISTER * * {password}")
        msgs = case.getMessages(client)
        assert any(
            m.command == "REGISTER" and m.params[:1] == ["SUCCESS"] for m in msgs
        ), msgs
        case.sendLine(client, "QUIT")
        case.assertDisconnected(client)


def get_irctest_controller_class() -> Type[RustircdController]:
    return RustircdController
