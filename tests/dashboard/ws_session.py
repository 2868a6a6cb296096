"""A dashboard session without a browser: Streamlit's own protocol (protobuf messages over its websocket).

The load check drives the server with these so that the time it reports is the server's (from asking
for a page to the page's last element arriving), not that of eight Chromium instances rendering charts
on the same two cores. What a browser does besides is left out: drawing, fetching images from the media
endpoint, and the periodic reruns of polling fragments while a user stays on a page.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import aiohttp
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

XSRF_COOKIE = "_streamlit_xsrf"


@dataclass
class PageResult:
    """What one page run sent: its texts (markdown, headings, captions, alerts) and exceptions."""

    seconds: float
    texts: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    uploaders: dict[str, str] = field(default_factory=dict)  # label -> widget id
    status: int = 0  # ForwardMsg.ScriptFinishedStatus

    def shows(self, text: str) -> bool:
        return any(text in t for t in self.texts)


class ProtocolSession:
    """One user's session: ``await visit("train")`` runs a page as a click in the sidebar would."""

    def __init__(self, url: str, timeout_s: float = 180.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.pages: dict[str, str] = {}  # url pathname ("" for the default page) -> page script hash
        self.session_id = ""
        self._xsrf = ""
        self._ws = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ProtocolSession:
        self._http = aiohttp.ClientSession()
        async with self._http.get(self.url + "/_stcore/health") as response:  # the health check sets the XSRF cookie
            morsel = SimpleCookie(response.headers.get("Set-Cookie", "")).get(XSRF_COOKIE)
            self._xsrf = morsel.value if morsel else ""
        ws_url = self.url.replace("http", "ws", 1) + "/_stcore/stream"
        self._ws = await websockets.connect(
            ws_url, subprotocols=["streamlit", self._xsrf] if self._xsrf else ["streamlit"],
            additional_headers={"Origin": self.url, "Cookie": f"{XSRF_COOKIE}={self._xsrf}"},
            max_size=None, open_timeout=self.timeout_s)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._ws.close()
        await self._http.close()

    async def visit(self, page: str = "", widgets: list | None = None) -> PageResult:
        """Run ``page`` (its url pathname, "" for the default) with these widget states; wait for its end."""
        msg = BackMsg()
        state = msg.rerun_script
        state.page_name = page
        if page in self.pages:
            state.page_script_hash = self.pages[page]
        for widget in widgets or []:
            state.widget_states.widgets.append(widget)
        start = time.perf_counter()
        await self._ws.send(msg.SerializeToString())
        result = PageResult(0.0)
        async with asyncio.timeout(self.timeout_s):
            while True:
                fwd = ForwardMsg.FromString(await self._ws.recv())
                kind = fwd.WhichOneof("type")
                if kind == "new_session":
                    self.session_id = fwd.new_session.initialize.session_id
                elif kind == "navigation":
                    self.pages = {p.url_pathname: p.page_script_hash for p in fwd.navigation.app_pages}
                elif kind == "delta":
                    self._read_element(fwd, result)
                elif kind == "script_finished" and fwd.script_finished in (
                        ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR):
                    result.status = fwd.script_finished
                    break
        result.seconds = time.perf_counter() - start
        return result

    async def upload(self, page: str, uploader_id: str, name: str, data: bytes, mime: str) -> PageResult:
        """Put a file into an uploader as the browser does (ask for its URL, PUT it), then rerun the page."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        request = BackMsg()
        request.file_urls_request.request_id = uuid.uuid4().hex
        request.file_urls_request.file_names.append(name)
        request.file_urls_request.session_id = self.session_id
        await self._ws.send(request.SerializeToString())
        async with asyncio.timeout(self.timeout_s):
            while True:
                fwd = ForwardMsg.FromString(await self._ws.recv())
                if fwd.WhichOneof("type") == "file_urls_response":
                    break
        urls = fwd.file_urls_response.file_urls[0]
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type=mime)
        put = self.url + urls.upload_url if urls.upload_url.startswith("/") else urls.upload_url
        async with self._http.put(put, data=form, headers={"X-Xsrftoken": self._xsrf},
                                  cookies={XSRF_COOKIE: self._xsrf}) as response:
            response.raise_for_status()
        widget = WidgetState(id=uploader_id)
        info = widget.file_uploader_state_value.uploaded_file_info.add()
        info.name, info.size, info.file_id = name, len(data), urls.file_id
        info.file_urls.CopyFrom(urls)
        return await self.visit(page, [widget])

    @staticmethod
    def _read_element(fwd: ForwardMsg, result: PageResult) -> None:
        if fwd.delta.WhichOneof("type") != "new_element":
            return
        element = fwd.delta.new_element
        kind = element.WhichOneof("type")
        if kind == "exception":
            result.exceptions.append(f"{element.exception.type}: {element.exception.message}".splitlines()[0])
        elif kind == "file_uploader":
            result.uploaders[element.file_uploader.label] = element.file_uploader.id
        elif kind in ("markdown", "heading", "alert", "text"):
            result.texts.append(getattr(element, kind).body)
