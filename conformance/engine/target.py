"""The target under test: authenticated, bounded, rate-limited HTTP to one SDDC Manager (or mock).

Every request the suite sends goes through `Target.send`, which enforces the request budget and
rate limit, never follows redirects, reads at most `max_body_bytes` of a body, and turns every
transport failure into an `Exchange` with an error instead of an exception.
"""

from __future__ import annotations

import random
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import urllib3

from conformance.engine.deadline import Watchdog, watch_connections
from conformance.engine.urls import url_class
from conformance.errors import (
    AuthenticationFailed,
    Backpressure,
    BudgetExhausted,
    TargetError,
    TargetStoppedAnswering,
    TargetUnreachable,
)
from conformance.model import REDACTED, Exchange, RecordedRequest, RecordedResponse
from conformance.options import DEFAULT_CONCURRENCY
from conformance.spec import Fragment, load_fragment
from conformance.tasks import encode_id

USER_AGENT = "sddc-conformance"
# Tokens expire mid-run (an hour on appliances, sooner where policy says so): the suite logs in
# again whenever one does, for as long as the run lasts. Two things end that: a token refused on
# its first use (logging in again cannot help), and tokens that keep dying young. A token that
# answered fewer than SHORT_LIVED_TOKEN requests is short-lived; SHORT_LIVED_IN_A_ROW of them in
# a row would spend the budget on logins, so the run stops and says so.
SHORT_LIVED_TOKEN = 5
SHORT_LIVED_IN_A_ROW = 3
# A 401 to the one token given with --token: a read-only request tells an expired token from a
# target that answers 401 to some ids though the token works (judged by the checks); a few per run.
MAX_TOKEN_PROBES = 3
# Backpressure (429, or 503 with Retry-After): the same request is re-sent at most this many
# times, each after the wait the target asked for (capped), before the run ends with no verdict.
MAX_BACKPRESSURE_RETRIES = 5
MAX_RETRY_AFTER = 30.0
# A 429/503 without a usable Retry-After still gets a pause: retrying at once would only add load.
DEFAULT_RETRY_AFTER = 1.0
# After each backpressure answer the run slows down: at least this many seconds between
# requests, doubling per answer up to the cap (requests a second = 1 / interval).
BACKPRESSURE_MIN_INTERVAL = 0.02
BACKPRESSURE_MAX_INTERVAL = 1.0
# Each answer that is no backpressure shortens the pause by this factor (down to none).
BACKPRESSURE_EASE = 0.9


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP-date), or None if unusable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def is_backpressure(status: int, headers: dict[str, str]) -> bool:
    """429 always; 503 only with Retry-After (a 503 without it is the server failing, judged by checks)."""
    if status == 429:
        return True
    return status == 503 and any(k.lower() == "retry-after" for k in headers)


@dataclass(frozen=True)
class TargetConfig:
    base_url: str
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # True, False (--insecure) or the path of a CA bundle (--ca-bundle).
    verify: bool | str = True
    # Seconds for a whole request: connect, send, headers and body (--timeout; engine.deadline).
    timeout: float = 10.0
    rate_limit: float | None = None
    max_requests: int | None = None
    # Requests in flight at once, across threads (--concurrency).
    concurrency: int = DEFAULT_CONCURRENCY
    # 16 MiB: well above any real Error body, small enough that a hostile body cannot exhaust memory.
    max_body_bytes: int = 16 * 1024 * 1024
    # A dead target ends the run after this many transport failures in a row, not after minutes.
    max_consecutive_failures: int = 3

    @property
    def has_credentials(self) -> bool:
        return bool(self.token or (self.username and self.password))


def given_token_expired(answered: int, flag_prefix: str = "--") -> str:
    """The one line for a token given with --token that stopped working mid-run."""
    return (f"the token given with {flag_prefix}token expired after {answered} request{'s' if answered != 1 else ''}; "
            f"give {flag_prefix}username and SDDC_PASSWORD so the suite can log in again")


def describe_transport_error(exc: BaseException, timeout: float) -> str:
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS failure: {_first_line(text)}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection closed in the middle of the body"
    if "BadStatusLine" in text:
        return "the answer is not HTTP"
    if "RemoteDisconnected" in text:
        return "the connection closed without an answer"
    if "Connection refused" in text:
        return "connection refused"
    if "reset" in text.lower():
        return "the connection was reset"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed: {_first_line(text)}"
    return f"{type(exc).__name__}: {_first_line(text)}"


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:200]


class Target:
    def __init__(
        self,
        config: TargetConfig,
        *,
        contract: Fragment | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        # Injectable so tests count waits instead of waiting.
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        # Backpressure answers that were waited out and re-sent (reported as information).
        self.backpressure_retries = 0
        # DELETEs sent and the distinct paths they named (the coverage report).
        self.deletes_sent = 0
        self._delete_paths: set[str] = set()
        self.on_backpressure: Callable[[int], None] | None = None
        # Sees every exchange `send` returns, in the order answers came back (the behaviour profile).
        self.on_exchange: Callable[[Exchange], None] | None = None
        # Seconds each token from POST /v1/tokens lasted before a 401 asked for a fresh one (the
        # behaviour profile; token_lifetimes below counts the requests it answered).
        self.token_seconds: list[float] = []
        self._logged_in_at: float | None = None
        self._backpressure_interval = 0.0
        # When the pace last slowed down: a 429 to a request sent before then answers the old
        # pace, so it does not slow the run down again (one slowdown per busy moment).
        self._slowed_at: float | None = None
        self.base_url = config.base_url.rstrip("/")
        # The operation's method and path come from the run's contract (--spec), else the fragment.
        self._fragment = contract or load_fragment()
        self._lock = threading.Lock()
        self._sent = 0
        # Counted per method: a target whose GETs answer while every DELETE hangs has stopped
        # answering the operation under test, and fast GETs between the DELETEs must not hide that.
        self._consecutive_failures: dict[str, int] = {}
        # When each method last got an answer (monotonic): see _failed.
        self._last_answer: dict[str, float] = {}
        # When each request now in flight was sent, by method: see _failed.
        self._flying: dict[str, list[float]] = {}
        # Once the run is declared dead every later send fails at once (Hypothesis replays the
        # failing example, teardown code may send): each would otherwise wait out another timeout.
        self._stopped: TargetStoppedAnswering | None = None
        self._next_slot = 0.0
        self._token = config.token
        self._refresh_token: str | None = None
        # Every token the run holds is one generation: 0 is the token given with --token (or
        # none), each login mints the next. A request that meets a 401 logs in only if the token
        # it carried is still the current one; the others wait on _login_lock and re-send with
        # the new token, so one expiry costs one login however many requests were in flight.
        self._generation = 0
        # Requests answered (anything but 401) with each recent generation's token.
        self._answered: dict[int, int] = {0: 0}
        # Logins that minted a token (POST /v1/tokens answered one); each also spent a request.
        self.logins = 0
        # How many requests each expired token answered, oldest first (the reports, the budget).
        self.token_lifetimes: list[int] = []
        # Requests that met an expired token (401) and were sent again: budget spent on expiry,
        # besides the logins (up to --concurrency per expiry).
        self.expired_requests = 0
        self._short_lived = 0
        # The generation the last re-login minted (-1: none yet).
        self._renewed = -1
        self.on_login: Callable[[int], None] | None = None
        # How the options are spelled where the user typed them ("--sddc-" under pytest).
        self.flag_prefix = "--"
        self._token_probes = 0
        self._login_lock = threading.Lock()
        self._local = threading.local()
        # --concurrency caps the requests in flight across every thread that sends (the schema
        # phase's pool and the scenario lane); BEH-RACE's cancels go past it on purpose.
        self._in_flight = _Slots(config.concurrency)
        # Cuts a request still under way --timeout seconds after it started (engine.deadline).
        self._deadlines = Watchdog()
        # Set when the run ends while a background lane still sends: its next request raises it.
        self._halted: BaseException | None = None
        if config.verify is False:
            # The user asked for it and is warned once by the CLI; one line per request is noise.
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)

    # -- accounting -----------------------------------------------------------------------
    @property
    def requests_sent(self) -> int:
        return self._sent

    @property
    def distinct_delete_paths(self) -> int:
        return len(self._delete_paths)

    def remaining(self) -> int | None:
        if self.config.max_requests is None:
            return None
        return max(self.config.max_requests - self._sent, 0)

    def _take_slot(self) -> None:
        with self._lock:
            if self.config.max_requests is not None and self._sent >= self.config.max_requests:
                raise BudgetExhausted(f"the request budget of {self.config.max_requests} is spent")
            self._sent += 1
            wait = 0.0
            interval = max(1.0 / self.config.rate_limit if self.config.rate_limit else 0.0,
                           self._backpressure_interval)
            if interval:
                now = self._clock()
                slot = max(now, self._next_slot)
                self._next_slot = slot + interval
                wait = slot - now
        if wait > 0:
            self._sleep(wait)

    def _back_off(self, headers: dict[str, str], sent_at: float | None = None) -> None:
        """Wait out one backpressure answer (Retry-After, capped, with jitter) and slow the run down.

        Requests in flight side by side all meet the same busy moment: only a request sent after
        the last slowdown slows the run down again; otherwise --concurrency answers of 429 at
        once would double the pause --concurrency times and crawl at the slowest pace.
        """
        with self._lock:
            self.backpressure_retries += 1
            if sent_at is None or self._slowed_at is None or sent_at >= self._slowed_at:
                self._backpressure_interval = min(
                    max(self._backpressure_interval * 2, BACKPRESSURE_MIN_INTERVAL), BACKPRESSURE_MAX_INTERVAL
                )
                self._slowed_at = self._clock()
        header = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        asked = retry_after_seconds(header)
        wait = min(asked if asked is not None else DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER)
        # Jitter: parallel clients (fleet runs) must not all come back in the same instant.
        self._sleep(wait + 0.1 * self._jitter() * max(wait, 1.0))
        with self._lock:
            # The wait is its own pause: the next request need not wait for an older slot.
            self._next_slot = max(self._next_slot, self._clock())
        if self.on_backpressure is not None:
            self.on_backpressure(self.backpressure_retries)

    def _ease_off(self) -> None:
        """An answer that was no backpressure: speed back up a little (additive increase of the rate).

        Slowing down on every 429 and never speeding up again would leave a run that met one busy
        moment crawling at the slowest pace for the rest of it.
        """
        with self._lock:
            if self._backpressure_interval:
                eased = self._backpressure_interval * BACKPRESSURE_EASE
                self._backpressure_interval = eased if eased >= BACKPRESSURE_MIN_INTERVAL / 2 else 0.0

    def _give_up(self, status: int, what: str) -> Backpressure:
        return Backpressure(
            f"{self.base_url} kept answering {status} (slow down) to {what} after "
            f"{MAX_BACKPRESSURE_RETRIES} retries"
        )

    # -- sessions -------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        # requests.Session is not safe to share across threads; concurrent scenarios get one each.
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Proxies and netrc from the environment could send traffic (and tokens) elsewhere.
            session.trust_env = False
            session.verify = self.config.verify
            session.headers["User-Agent"] = USER_AGENT
            session.headers["Accept"] = "application/json, */*;q=0.5"
            watch_connections(session)
            self._local.session = session
        return session

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()

    # -- authentication ------------------------------------------------------------------------
    @property
    def can_login(self) -> bool:
        """A username and a password: the suite can get tokens of its own, as often as needed."""
        return bool(self.config.username and self.config.password)

    @property
    def generation(self) -> int:
        """The current token's generation (0: the token given with --token, or none yet)."""
        return self._generation

    @property
    def given_token_answered(self) -> int:
        """Requests answered with the token given with --token (generation 0)."""
        return self._answered.get(0, 0)

    def login(self) -> None:
        """Get an access token through POST /v1/tokens when a username was given."""
        if self.config.token or not self.can_login:
            return
        with self._login_lock:
            self._mint(first=True)

    def _mint(self, *, first: bool) -> None:
        """POST /v1/tokens and make its token the next generation (called under _login_lock)."""
        url = f"{self.base_url}/v1/tokens"
        body = {"username": self.config.username, "password": self.config.password}
        attempt = 0
        while True:
            try:
                self._take_slot()
                response = self._post_in_time(url, body)
            except BudgetExhausted as exc:
                if not first:
                    raise  # mid-run: the budget is spent, as for any other request
                raise TargetError(str(exc)) from None
            except requests.RequestException as exc:
                raise TargetUnreachable(
                    f"cannot reach {self.base_url}: {describe_transport_error(exc, self.config.timeout)}"
                ) from None
            if not is_backpressure(response.status_code, dict(response.headers)):
                break
            if attempt >= MAX_BACKPRESSURE_RETRIES:
                raise self._give_up(response.status_code, "POST /v1/tokens")
            attempt += 1
            self._back_off(dict(response.headers))
        if response.status_code in (401, 403):
            raise AuthenticationFailed(
                f"authentication failed for user {self.config.username!r} at {url} "
                f"({response.status_code})"
            )
        if not 200 <= response.status_code < 300:
            raise AuthenticationFailed(
                f"POST {url} for user {self.config.username!r} answered {response.status_code}, "
                "not a token pair"
            )
        try:
            pair = response.json()
            token = str(pair["accessToken"])
            refresh = pair.get("refreshToken")
            self._refresh_token = refresh.get("id") if isinstance(refresh, dict) else None
            self._logged_in_at = self._clock()
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AuthenticationFailed(
                f"POST {url} answered {response.status_code} without an accessToken"
            ) from None
        with self._lock:
            self._generation += 1
            self._answered[self._generation] = 0
            # Only the current generation and the one before can still be answered or judged.
            for old in [g for g in self._answered if g < self._generation - 1]:
                del self._answered[old]
            self._token = token
            self.logins += 1
            logins = self.logins
        if self.on_login is not None and not first:
            self.on_login(logins)

    def _post_in_time(self, url: str, body: dict[str, Any]) -> requests.Response:
        """POST within the whole-request deadline; a cut shows as requests' Timeout."""
        with self._deadlines.watching(self.config.timeout) as watch:
            try:
                response = self._session().post(url, json=body, timeout=self.config.timeout, allow_redirects=False)
            except requests.RequestException:
                if not watch.fired:
                    raise
        if watch.fired:
            raise requests.Timeout()
        return response

    def _renew(self, generation: int) -> None:
        """A request carrying `generation`'s token met a 401: log in again, once per expiry.

        Returns when a newer token is current (this call's login or another thread's); raises
        AuthenticationFailed when logging in again cannot help.
        """
        with self._login_lock:
            with self._lock:
                if self._generation != generation:
                    return  # another request logged in meanwhile: re-send with its token
                lifetime = self._answered.get(generation, 0)
            # A token minted because the one before expired is used at once, by the request that
            # met the expiry: refused then, the next login's would be too. (The first login's may
            # have waited, and expired, before its first use: that one gets a second login.)
            if generation == self._renewed and lifetime == 0:
                raise AuthenticationFailed(
                    f"{self.base_url} refused the token it had just issued to user {self.config.username!r} "
                    "(401 on its first use): logging in again cannot help; check the user's role"
                )
            self.token_lifetimes.append(lifetime)
            if self._logged_in_at is not None:
                self.token_seconds.append(self._clock() - self._logged_in_at)
            self._short_lived = self._short_lived + 1 if lifetime < SHORT_LIVED_TOKEN else 0
            if self._short_lived >= SHORT_LIVED_IN_A_ROW:
                recent = ", ".join(str(n) for n in self.token_lifetimes[-SHORT_LIVED_IN_A_ROW:])
                raise AuthenticationFailed(
                    f"{self.base_url}'s tokens keep expiring after fewer than {SHORT_LIVED_TOKEN} requests "
                    f"(the last {SHORT_LIVED_IN_A_ROW} answered {recent}): the run would spend its budget on "
                    "logins; make tokens last longer for this user"
                )
            self._mint(first=False)
            self._renewed = self._generation

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    # -- requests -------------------------------------------------------------------------
    def task_path(self, encoded_id: str) -> str:
        return self._fragment.path_template.replace("{id}", encoded_id)

    def cancel(self, encoded_id: str, *, purpose: str, task_id: str | None = None, auth: bool = True,
               token: str | None = None) -> Exchange:
        raw = task_id if task_id is not None else unquote(encoded_id)
        return self.send(self._fragment.method, self.task_path(encoded_id), purpose=purpose,
                         task_id=task_id, auth=auth, token=token, id_class=url_class(raw, encoded_id))

    def get_task(self, task_id: str, *, purpose: str) -> Exchange:
        return self.send("GET", f"/v1/tasks/{encode_id(task_id)}", purpose=purpose, task_id=task_id)

    def send(
        self,
        method: str,
        path: str,
        *,
        purpose: str,
        task_id: str | None = None,
        auth: bool = True,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        id_class: str | None = None,
    ) -> Exchange:
        if not auth or token is not None:
            # No credentials, or a token the caller chose (a forged one): the answer stands.
            return self._observed(self._send_patiently(method, path, purpose, task_id, auth, token, params, id_class))
        while True:
            with self._lock:
                generation, own = self._generation, self._token
            exchange = self._send_patiently(method, path, purpose, task_id, auth, own, params, id_class)
            if exchange.response is None or exchange.response.status != 401:
                if exchange.response is not None:
                    with self._lock:
                        if generation in self._answered:
                            self._answered[generation] += 1
                return self._observed(exchange)
            if not self.can_login:
                # One token (--token, or a username without a password), no way to get another. One
                # never accepted is the preflight's to report (a refused token, not an expired one).
                if self.config.token and self.given_token_answered and self._token_gone():
                    raise AuthenticationFailed(given_token_expired(self.given_token_answered, self.flag_prefix))
                return self._observed(exchange)  # the token still gets in: the 401 is the target's answer, judged
            with self._lock:
                self.expired_requests += 1
            self._renew(generation)

    def _observed(self, exchange: Exchange) -> Exchange:
        if self.on_exchange is not None:
            self.on_exchange(exchange)
        return exchange

    def secrets(self) -> tuple[str | None, ...]:
        """Every credential of the run as it stands now (tokens change on re-login): for redaction."""
        return (self.config.token, self.config.password, self._token, self._refresh_token)

    def _token_gone(self) -> bool:
        """Does a read-only request get 401 with the given token too? (at most MAX_TOKEN_PROBES a run)"""
        with self._lock:
            if self._token_probes >= MAX_TOKEN_PROBES:
                return False
            self._token_probes += 1
        probe = self._send_patiently("GET", "/v1/tasks", "token still accepted?", None, True, self._token,
                                     {"pageSize": 1}, None)
        return probe.response is not None and probe.response.status == 401

    def _send_patiently(
        self,
        method: str,
        path: str,
        purpose: str,
        task_id: str | None,
        auth: bool,
        token: str | None,
        params: dict[str, Any] | None,
        id_class: str | None,
    ) -> Exchange:
        """One request, re-sent after each backpressure answer; the checks never see a 429.

        Every re-send is a request and counts against --max-requests.
        """
        attempt = 0
        while True:
            sent_at = self._clock()
            exchange = self._send_once(method, path, purpose, task_id, auth, token, params, id_class)
            response = exchange.response
            if response is None or not is_backpressure(response.status, response.headers):
                if response is not None:
                    self._ease_off()
                return exchange
            if attempt >= MAX_BACKPRESSURE_RETRIES:
                raise self._give_up(response.status, f"{method} {path}")
            attempt += 1
            self._back_off(response.headers, sent_at)

    def _send_once(
        self,
        method: str,
        path: str,
        purpose: str,
        task_id: str | None,
        auth: bool,
        token: str | None,
        params: dict[str, Any] | None,
        id_class: str | None = None,
    ) -> Exchange:
        url = self.base_url + path
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        elif auth:
            headers.update(self._auth_headers())
        session = self._session()
        prepared = session.prepare_request(requests.Request(method, url, headers=headers, params=params))
        # requests re-quotes URLs and would turn an encoded dot segment (%2E%2E) back into "..",
        # which servers resolve to another path: the path goes out exactly as the suite built it.
        # The query is requests' (a query already in `path` merged with `params`), kept once.
        query = urlsplit(prepared.url or "").query
        prepared.url = url.split("?", 1)[0] + (f"?{query}" if query else "")
        recorded = RecordedRequest(
            method=method,
            url=prepared.url,
            headers={k: (f"Bearer {REDACTED}" if k == "Authorization" else v) for k, v in headers.items()},
            id_class=id_class,
        )
        if self._stopped is not None:
            raise TargetStoppedAnswering(str(self._stopped), self._stopped.exchange)
        halted = self._halted
        if halted is not None:
            raise halted
        self._take_slot()
        if method == "DELETE":
            with self._lock:
                self.deletes_sent += 1
                self._delete_paths.add(path)
        metered = not getattr(self._local, "racing", False)
        if metered:
            self._in_flight.acquire(urgent=self.is_urgent())
        started = time.monotonic()
        with self._lock:
            self._flying.setdefault(method, []).append(started)
        error: str | None = None
        try:
            with self._deadlines.watching(self.config.timeout) as watch:
                try:
                    response = session.send(prepared, timeout=self.config.timeout, allow_redirects=False,
                                            stream=True)
                    watch.answered = True
                    with response:
                        body, truncated = self._read_body(response, started)
                except requests.RequestException as exc:
                    error = describe_transport_error(exc, self.config.timeout)
                except _SlowBody as exc:
                    error = str(exc)
            if watch.fired:
                # Cut at the deadline: whatever urllib3 made of the cut (an error, or a body that
                # merely looks complete), the answer did not come in time.
                error = (f"the body did not arrive within {self.config.timeout:g} s" if watch.fired_in_body
                         else f"no answer within {self.config.timeout:g} s")
        finally:
            with self._lock:
                self._flying[method].remove(started)
            if metered:
                self._in_flight.release()
        if error is not None:
            return self._failed(recorded, error, purpose, task_id, started)
        with self._lock:
            self._consecutive_failures[method] = 0
            self._last_answer[method] = time.monotonic()
        return Exchange(
            request=recorded,
            response=RecordedResponse(
                status=response.status_code,
                reason=response.reason or "",
                headers=dict(response.headers),
                body=body,
                elapsed=time.monotonic() - started,
                truncated=truncated,
            ),
            purpose=purpose,
            task_id=task_id,
        )

    def _read_body(self, response: requests.Response, started: float) -> tuple[bytes, bool]:
        cap = self.config.max_body_bytes
        # The whole request's deadline; the watchdog enforces it while a read blocks, this check
        # between the pieces that do arrive.
        deadline = started + self.config.timeout
        chunks: list[bytes] = []
        size = 0
        for chunk in _arriving_chunks(response):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                chunks[-1] = chunk[: len(chunk) - (size - cap)]
                return b"".join(chunks), True
            if time.monotonic() > deadline:
                raise _SlowBody(f"the body did not arrive within {self.config.timeout:g} s")
        return b"".join(chunks), False

    def _failed(self, recorded: RecordedRequest, error: str, purpose: str, task_id: str | None,
                started: float) -> Exchange:
        stopped = self._stopped
        if stopped is not None:
            # Cut when the run stopped (see below), or failed after: the first reason stands.
            raise TargetStoppedAnswering(str(stopped), stopped.exchange)
        with self._lock:
            failures = self._consecutive_failures.get(recorded.method, 0)
            # "In a row" means: sent after the last answer came back. With requests in flight side
            # by side, a failure that was already under way when another request got its answer
            # does not show that the target went away.
            if started >= self._last_answer.get(recorded.method, float("-inf")):
                failures += 1
            self._consecutive_failures[recorded.method] = failures
            # Nor is the streak complete while a request of the same method sent *before* this one
            # is still under way: its answer may yet come (quick failures, a reset say, can
            # overtake slow good answers). The oldest of a streak of failures decides.
            undecided = any(other < started for other in self._flying.get(recorded.method, ()))
        exchange = Exchange(request=recorded, response=None, error=error, purpose=purpose, task_id=task_id)
        if failures >= self.config.max_consecutive_failures and not undecided:
            self._stopped = TargetStoppedAnswering(
                f"{self.base_url} stopped answering: {failures} requests in a row failed "
                f"({recorded.method}; last: {error})",
                exchange,
            )
            # The requests still under way would each wait out their deadline for an answer
            # that no longer counts: cut them, so the run ends now.
            self._deadlines.cut_all()
            raise self._stopped
        return exchange

    def urgent(self) -> None:
        """This thread's requests take the next free slot before the background probes' do."""
        self._local.urgent = True

    def is_urgent(self) -> bool:
        return bool(getattr(self._local, "urgent", False))

    def halt(self, reason: BaseException | None) -> None:
        """From now on every request raises `reason` instead of going out (None: send again)."""
        self._halted = reason

    def run_concurrently(self, calls: list[Callable[[], Exchange]]) -> list[Exchange]:
        """Run calls at the same moment from separate threads (and connections)."""
        barrier = threading.Barrier(len(calls))
        results: list[Exchange | BaseException | None] = [None] * len(calls)

        def worker(i: int) -> None:
            # Deliberate concurrency: these cancels must arrive together, not queue for a slot.
            self._local.racing = True
            try:
                barrier.wait(timeout=self.config.timeout)
                results[i] = calls[i]()
            except BaseException as exc:  # re-raised in the caller's thread below
                results[i] = exc
            finally:
                self.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(calls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [r for r in results if isinstance(r, Exchange)]

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc


class _SlowBody(Exception):
    pass


_CHUNK = 64 * 1024


class _Slots:
    """At most `n` requests in flight; urgent ones (a scenario's next step, which the rest of the
    scenario waits for) take a freed slot before the independent probes queued behind them."""

    def __init__(self, n: int) -> None:
        self._free = max(1, n)
        self._urgent_waiting = 0
        self._changed = threading.Condition()

    def acquire(self, *, urgent: bool) -> None:
        with self._changed:
            if urgent:
                self._urgent_waiting += 1
            try:
                self._changed.wait_for(lambda: self._free > 0 and (urgent or not self._urgent_waiting))
            finally:
                if urgent:
                    self._urgent_waiting -= 1
            self._free -= 1

    def release(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify_all()


def _arriving_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body in pieces as they arrive, with requests' mapping of urllib3's errors.

    `iter_content` blocks until a whole chunk (or the end) is in, so a server sending one byte
    every few hundred milliseconds -- each well within the read timeout -- would hold a 64 KB read
    for hours; `read1` returns whatever has arrived, so the caller's deadline is checked often.
    """
    raw = response.raw
    try:
        while chunk := raw.read1(_CHUNK, decode_content=True):
            yield chunk
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc) from None
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from None
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from None
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from None
